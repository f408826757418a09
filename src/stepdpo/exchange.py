"""The field's exchange formats, read and written, both ways where they carry the information.

Step pairs:

- ``step-pair``: this project's :class:`~stepdpo.records.StepPair` (``chosen`` starts with its
  "Step k:" marker, ``initial_reason_steps`` ends after step k-1, ``full_*`` whole solutions).
- ``step-dpo``: the released Math-Step-DPO-10K layout (dvlab-research/Step-DPO): the marker ends
  ``initial_reason_steps``, ``chosen``/``rejected`` are the step's body after it, ``full_*`` the
  continuation only. Both layouts train on the same tokens.
- ``preference``: ``prompt`` (the problem and the prior steps folded in, as the model reads them
  under ``prompt_format``), ``chosen``, ``rejected``: what TRL's DPOTrainer and LLaMA-Factory read.
  Written only: the fold loses where the prior steps begin. ``prompt + chosen`` is the text
  ``stepdpo train`` trains on. Those trainers append EOS to each completion (see docs).

Step labels (one labelled solution: its steps and its earliest wrong step):

- ``located``: this project's :class:`~stepdpo.records.LocatedError` (D2).
- ``processbench``: ``id``, ``problem``, ``steps`` (bodies, no markers), ``label`` (0-based
  earliest wrong step, -1 when every step is right), ``final_answer_correct`` (ProcessBench).
- ``trl-stepwise``: ``prompt``, ``completions`` (the steps), ``labels`` (one bool per step), the
  stepwise-supervision format TRL's PRMTrainer reads. Steps before k are true; step k and every
  step after it are false (a step after a wrong one builds on it), so k is the first false label.

Located errors that a judge could not locate carry no label and are skipped (counted). Both label
formats keep ``answer`` as an extra field when it is known; reading them into located errors
needs it (rectification samples towards the gold answer).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepdpo.recordio import DataError, iter_raw_rows, write_records
from stepdpo.records import NO_WRONG_STEP, LocatedError, RecordError, Solution, StepPair, content_id
from stepdpo.text.prompts import build_prompt, ends_with_marker
from stepdpo.text.steps import step_marker, strip_marker

_MARKER_HEAD = re.compile(r"[ \t]*(?:\*\*)?Step[ \t]+\d+[ \t]*[:.](?:\*\*)?")
PAIR_FORMATS = ("step-pair", "step-dpo", "preference")
LABEL_FORMATS = ("located", "processbench", "trl-stepwise")
FORMATS = PAIR_FORMATS + LABEL_FORMATS
WRITE_ONLY = ("preference",)


def detect_format(row: dict[str, Any]) -> str:
    """The format of a row, from its fields."""
    if "completions" in row and "labels" in row:
        return "trl-stepwise"
    if "steps" in row and "label" in row:
        return "processbench"
    if "first_error_step" in row or ("solution" in row and "judge" in row):
        return "located"
    if "chosen" in row and "initial_reason_steps" in row:
        return "step-dpo" if ends_with_marker(row["initial_reason_steps"] or "") else "step-pair"
    if "chosen" in row and "rejected" in row:
        return "preference"
    raise RecordError("unknown_format", f"no known format has these fields: {', '.join(sorted(row))}")


# ---- step pairs ----------------------------------------------------------------------------


def _split_marker(text: str) -> tuple[str, str]:
    """``"Step k: body"`` (or ``"Step k. body"``, ``"**Step k:** body"``) -> ``("Step k:", " body")``."""
    m = _MARKER_HEAD.match(text)
    return (text[: m.end()], text[m.end() :]) if m else ("", text)


def to_released(pair: StepPair) -> dict[str, Any]:
    """A step pair in the released layout (the marker moved to the end of the prior steps)."""
    prior = pair.initial_reason_steps
    if ends_with_marker(prior) or not prior.strip():  # the released data keeps k = 1's marker on the step
        chosen, rejected = pair.chosen, pair.rejected
        full = (pair.full_chosen, pair.full_rejected)
    else:
        marker, chosen = _split_marker(pair.chosen)
        marker_r, rejected = _split_marker(pair.rejected)
        if marker != marker_r or not marker:
            raise RecordError("no_step_marker", "'chosen' and 'rejected' must open with the same 'Step k:' marker")
        whole = prior + marker
        full = tuple(
            t[len(whole) :] if t is not None and t.startswith(whole) else t
            for t in (pair.full_chosen, pair.full_rejected)
        )
        prior = whole
    return {
        "dataset": pair.dataset or "",
        "prompt": pair.prompt,
        "initial_reason_steps": prior,
        "chosen": chosen,
        "rejected": rejected,
        "full_chosen": full[0],
        "full_rejected": full[1],
        "answer": pair.answer,
        "meta": pair.meta,
    }


def from_released(row: dict[str, Any]) -> StepPair:
    """A released-layout row as this project's step pair (the marker moved back to the step)."""
    prior = row.get("initial_reason_steps") or ""
    if not ends_with_marker(prior):
        return StepPair.from_dict(row)
    cut = prior.rfind("Step")
    head, marker = prior[:cut], prior[cut:]
    full = [row.get("full_chosen"), row.get("full_rejected")]
    return StepPair.from_dict(
        {
            **row,
            "initial_reason_steps": head,
            "chosen": marker + row["chosen"],
            "rejected": marker + row["rejected"],
            "full_chosen": None if full[0] is None else prior + full[0],
            "full_rejected": None if full[1] is None else prior + full[1],
        }
    )


def to_preference(pair: StepPair, prompt_format: str = "base") -> dict[str, Any]:
    """``prompt`` (problem and prior steps, as training reads them), ``chosen``, ``rejected``."""
    return {
        "prompt": build_prompt(pair.prompt, pair.initial_reason_steps, prompt_format=prompt_format),
        "chosen": pair.chosen,
        "rejected": pair.rejected,
    }


# ---- step labels ---------------------------------------------------------------------------


@dataclass
class Case:
    """One labelled solution: ``label`` is the 0-based earliest wrong step, -1 for none.

    ``steps`` are the source's step texts as they are. ``marked``: they are a located error's steps
    ("Step i: " opening each, newline-separated); otherwise they are bare step texts (ProcessBench's
    ``steps``, TRL's ``completions``), kept byte for byte whatever they begin with. ``id_value`` is
    the source's id as written (an integer id stays one).
    """

    id: str
    problem: str
    steps: list[str]
    label: int
    final_answer_correct: bool | None = None
    answer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    marked: bool = False
    id_value: Any = None

    @property
    def bodies(self) -> list[str]:
        """The step texts without our markers: the inverse of :meth:`located_steps`."""
        if not self.marked:
            return list(self.steps)
        n = len(self.steps)
        return [_unwrap(s, i, last=i == n) for i, s in enumerate(self.steps, 1)]

    def located_steps(self) -> list[str]:
        """The steps as a located error holds them: "Step i: " before each text, a newline after
        each but the last. A text that itself opens with "Step 1:" keeps it (it is the model's)."""
        if self.marked:
            return list(self.steps)
        n = len(self.steps)
        return [f"{step_marker(i)} {t}" + ("\n" if i < n else "") for i, t in enumerate(self.steps, 1)]


def _unwrap(step: str, i: int, last: bool) -> str:
    """A located step's text: its own "Step i: " (or any marker form) and one closing newline removed."""
    ours = f"{step_marker(i)} "
    body = step[len(ours) :] if step.startswith(ours) else strip_marker(step)
    return body if last or not body.endswith("\n") else body[:-1]


_UNKNOWN = "final_answer_correct_unknown"  # a located solution's meta key: the source did not say


def case_from_located(err: LocatedError) -> Case | None:
    """The label a located error holds, or None when its judge abstained."""
    k = err.first_error_step
    if k is None and err.reason != NO_WRONG_STEP:
        return None
    sol = err.solution
    meta = dict(sol.meta)
    final = None if meta.pop(_UNKNOWN, False) else sol.correct
    extra = {"judge": err.judge, "dataset": sol.dataset, "meta": meta}
    label = -1 if k is None else k - 1
    return Case(sol.id, sol.problem, list(sol.steps), label, final, sol.answer, extra, marked=True, id_value=sol.id)


def case_to_located(case: Case, judge: str = "label", correct: bool | None = None) -> LocatedError:
    """The case as a located error (D2). ``correct``: the solution's grade as a judge would see it
    (its final answer against the gold answer); by default what the source says, else whether
    the label finds no wrong step (kept as unknown in ``meta`` so that it reads back as unknown)."""
    if not case.answer:
        raise RecordError("missing_field", "a located error needs the gold answer: add an 'answer' field to this row")
    steps = case.located_steps()
    meta = dict(case.extra.get("meta") or {})
    if correct is None:
        correct = case.final_answer_correct
        if correct is None:
            correct, meta[_UNKNOWN] = case.label < 0, True
    sol = Solution(
        id=case.id,
        problem_id=content_id(case.problem, case.answer),
        problem=case.problem,
        answer=case.answer,
        completion="".join(steps),
        steps=steps,
        correct=correct,
        dataset=case.extra.get("dataset", ""),
        meta=meta,
    )
    k = None if case.label < 0 else case.label + 1
    return LocatedError(sol, k, case.extra.get("judge") or judge, reason=NO_WRONG_STEP if k is None else None)


def _id_of(case: Case) -> Any:
    return case.id if case.id_value is None else case.id_value


def case_to_processbench(case: Case) -> dict[str, Any]:
    row = {
        "id": _id_of(case),
        "problem": case.problem,
        "steps": case.bodies,
        "label": case.label,
        "final_answer_correct": case.final_answer_correct,
    }
    return {**row, "answer": case.answer} if case.answer is not None else row


def case_to_trl(case: Case) -> dict[str, Any]:
    labels = [case.label < 0 or i < case.label for i in range(len(case.steps))]
    row = {"id": _id_of(case), "prompt": case.problem, "completions": case.bodies, "labels": labels}
    if case.final_answer_correct is not None:  # not TRL's, kept so that a round trip loses nothing
        row["final_answer_correct"] = case.final_answer_correct
    return {**row, "answer": case.answer} if case.answer is not None else row


def _steps_field(row: dict[str, Any], name: str) -> list[str]:
    steps = row.get(name)
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise RecordError("empty_steps", f"field '{name}' must be a non-empty list of non-empty strings")
    return steps


def _row_id(row: dict[str, Any], *content: Any) -> tuple[str, Any]:
    """The row's id as text and as written; a content hash when it has none."""
    raw = row.get("id")
    if raw is None or raw == "":
        return content_id(*content), None
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        raise RecordError("bad_id", f"'id' must be a string or an integer, got {raw!r}")
    return str(raw), raw


def case_from_row(row: dict[str, Any], fmt: str) -> Case | None:
    """A labelled solution from a row of a label format (None: an unlabelled located error)."""
    if fmt == "located":
        return case_from_located(LocatedError.from_dict(row))
    if not isinstance(row.get("problem" if fmt == "processbench" else "prompt"), str):
        raise RecordError(
            "missing_field", "missing field 'problem'" if fmt == "processbench" else "missing field 'prompt'"
        )
    answer = row.get("answer")
    answer = None if answer is None else str(answer)
    final = row.get("final_answer_correct")
    final = final if isinstance(final, bool) else None
    if fmt == "processbench":
        steps = _steps_field(row, "steps")
        label = row.get("label")
        if not isinstance(label, int) or isinstance(label, bool) or not -1 <= label < len(steps):
            raise RecordError("bad_label", f"label {label!r} is not -1 or a step index 0..{len(steps) - 1}")
        cid, raw = _row_id(row, row["problem"], steps)
        return Case(cid, row["problem"], steps, label, final, answer, id_value=raw)
    steps = _steps_field(row, "completions")
    labels = row.get("labels")
    if not isinstance(labels, list) or len(labels) != len(steps) or not all(isinstance(x, bool) for x in labels):
        raise RecordError("bad_label", "field 'labels' must hold one true/false per completion")
    first_false = next((i for i, ok in enumerate(labels) if not ok), -1)
    cid, raw = _row_id(row, row["prompt"], steps)
    return Case(cid, row["prompt"], steps, first_false, final, answer, id_value=raw)


# ---- files ---------------------------------------------------------------------------------


@dataclass
class ConvertReport:
    source: str
    target: str
    rows_in: int = 0
    rows_out: int = 0
    skipped: Counter = field(default_factory=Counter)
    made: Counter = field(default_factory=Counter)  # the models, judges and data sets the rows name

    def text(self) -> str:
        skipped = ", ".join(f"{k}: {v}" for k, v in self.skipped.items()) or "none"
        return f"{self.rows_in} {self.source} rows -> {self.rows_out} {self.target} rows; skipped {skipped}"


def read_rows(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a JSONL, JSON or Parquet file or of a Hugging Face dataset folder, each with its
    line (or row) number; unparsable rows raise :class:`DataError` naming the file and line."""
    path = Path(path)
    if path.is_dir() and (path / "dataset_info.json").exists():
        from datasets import load_from_disk

        for i, row in enumerate(load_from_disk(str(path)), 1):
            yield i, dict(row)
        return
    for line, row in iter_raw_rows(path):
        if isinstance(row, DataError):
            raise row
        if not isinstance(row, dict):
            raise DataError(path, line, "a row must be a JSON object")
        yield line, row


def convert(
    inp: str | os.PathLike, out: str | os.PathLike, to: str, source: str = "auto", prompt_format: str = "base"
) -> ConvertReport:
    """Convert the file ``inp`` into ``to``, written to ``out`` (JSONL, JSON, Parquet by suffix;
    any other name is a Hugging Face dataset folder with a dataset card)."""
    if to not in FORMATS:
        raise ValueError(f"--to must be one of {', '.join(FORMATS)}")
    check_dataset_output(out)
    rows_out: list[dict[str, Any]] = []
    report = ConvertReport(source, to)
    for line, row in read_rows(inp):
        try:
            fmt = detect_format(row) if source == "auto" else source
            if report.source in ("auto", "step-pair") and fmt in ("step-pair", "step-dpo"):
                report.source = fmt  # one family: a released file's k = 1 rows look like this project's
            elif report.source == "auto":
                report.source = fmt
            if fmt != report.source and {fmt, report.source} != {"step-pair", "step-dpo"}:
                raise RecordError("mixed_formats", f"a {fmt} row in a file of {report.source} rows")
            report.rows_in += 1
            _provenance(row, report.made)
            converted = _convert_row(row, fmt, to, prompt_format)
        except RecordError as e:
            raise DataError(inp, line, str(e), e.reason) from None
        if converted is None:
            report.skipped["unlocated (no label)"] += 1
            continue
        rows_out.append(converted)
    if report.rows_in == 0:
        raise DataError(inp, None, "no rows", "empty")
    report.rows_out = len(rows_out)
    write_dataset(out, rows_out, card=None if is_file_output(out) else dataset_card(inp, report))
    return report


def _convert_row(row: dict[str, Any], fmt: str, to: str, prompt_format: str) -> dict[str, Any] | None:
    if fmt in WRITE_ONLY:
        raise RecordError("write_only", f"{fmt} rows cannot be read back (the prompt folds the prior steps in)")
    pair_in, pair_out = fmt in PAIR_FORMATS, to in PAIR_FORMATS
    if pair_in != pair_out:
        kinds = "step pairs" if pair_in else "step labels"
        raise RecordError(
            "wrong_target",
            f"{fmt} rows are {kinds}; convert them to one of {', '.join(PAIR_FORMATS if pair_in else LABEL_FORMATS)}",
        )
    if pair_in:
        pair = from_released(row) if fmt == "step-dpo" else StepPair.from_dict(row)
        if to == "step-dpo":
            return to_released(pair)
        if to == "preference":
            return to_preference(pair, prompt_format)
        return pair.to_dict()
    case = case_from_row(row, fmt)
    if case is None:
        return None
    if to == "processbench":
        return case_to_processbench(case)
    if to == "trl-stepwise":
        return case_to_trl(case)
    return case_to_located(case).to_dict()


FILE_SUFFIXES = (".jsonl", ".json", ".parquet")
CARD_TAG = "tags: [step-dpo, stepdpo]"


def is_file_output(out: str | os.PathLike) -> bool:
    """A .jsonl, .json or .parquet file; a name without a suffix is a dataset folder."""
    return Path(out).suffix.lower() in FILE_SUFFIXES


def check_dataset_output(out: str | os.PathLike) -> None:
    """Refuse an output that is neither a data file name nor a folder this project may write: a
    name with another suffix (``x.txt``), or a folder that holds something other than one of our
    dataset folders (its files would be overwritten)."""
    path = Path(out)
    if is_file_output(path):
        return
    if path.suffix and not path.is_dir():
        raise ValueError(
            f"{out}: unknown output suffix {path.suffix!r}; give a {', '.join(FILE_SUFFIXES)} file, "
            "or a folder name without a suffix for a Hugging Face dataset folder"
        )
    if path.is_dir() and any(path.iterdir()):
        card = path / "README.md"
        ours = (path / "dataset_info.json").exists() and card.exists() and CARD_TAG in card.read_text(errors="replace")
        if not ours:
            raise ValueError(
                f"{out}: a folder that is not empty and is not a dataset folder written by stepdpo; "
                "give a new folder or a file name"
            )


def write_dataset(out: str | os.PathLike, rows: list[dict[str, Any]], card: str | None = None) -> Path:
    """Rows to JSONL / JSON / Parquet by suffix, or to a Hugging Face dataset folder
    (``save_to_disk``) with ``card`` as its README.md."""
    out = Path(out)
    if is_file_output(out):
        write_records(out, rows)
        return out
    from datasets import Dataset

    Dataset.from_list(rows).save_to_disk(str(out))
    if card:
        (out / "README.md").write_text(card, encoding="utf-8")
    return out


def _provenance(row: dict[str, Any], made: Counter) -> None:
    """Count what a row says about how it was made: sampling model and settings, judge, data set."""
    for src in (row.get("solution"), row):
        gen = src.get("generator") if isinstance(src, dict) else None
        if isinstance(gen, dict) and gen.get("model"):
            made[f"sampled by {gen['model']} ({json.dumps(gen.get('sampling', {}), sort_keys=True)})"] += 1
    if isinstance(row.get("judge"), str):
        made[f"located by the {row['judge']} judge"] += 1
    if isinstance(row.get("dataset"), str) and row["dataset"]:
        made[f"problems from {row['dataset']}"] += 1


def dataset_card(inp: str | os.PathLike, report: ConvertReport) -> str:
    """How the data was made: the models, judges and settings its records name, and the counts."""
    lines = [
        "---",
        CARD_TAG,
        "---",
        f"# {Path(inp).stem} as {report.target}",
        "",
        f"Converted by `stepdpo convert` from `{Path(inp).name}` ({report.source}).",
        "",
        f"- rows: {report.rows_out} of {report.rows_in}; skipped: "
        + (", ".join(f"{k} {v}" for k, v in report.skipped.items()) or "none"),
    ]
    lines += [f"- {what}: {n} rows" for what, n in report.made.most_common()]
    if report.target in ("preference", "step-dpo", "step-pair"):
        lines += [
            "",
            "A step completion must not end with EOS: the solution goes on after it. TRL's DPOTrainer and "
            "LLaMA-Factory append one to every completion; see the stepdpo docs (data formats).",
        ]
    return "\n".join(lines) + "\n"
