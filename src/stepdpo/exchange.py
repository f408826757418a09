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

Step labels (one labelled solution: its steps and its earliest wrong step): ``located``,
``processbench`` and ``trl-stepwise``, read and written by :mod:`stepdpo.step_labels`.

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

from stepdpo.cards import is_our_card
from stepdpo.recordio import DataError, iter_raw_rows, write_records
from stepdpo.records import RecordError, StepPair
from stepdpo.step_labels import (  # noqa: F401  (the label formats, read and written here)
    Case,
    case_from_located,
    case_from_row,
    case_to_located,
    case_to_processbench,
    case_to_trl,
)
from stepdpo.text.prompts import build_prompt, ends_with_marker

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


def to_preference(pair: StepPair, prompt_format: str = "base", tokenizer: Any = None) -> dict[str, Any]:
    """``prompt`` (problem and prior steps, as training reads them), ``chosen``, ``rejected``;
    ``tokenizer`` renders the ``chat`` format (the model's own chat template)."""
    return {
        "prompt": build_prompt(
            pair.prompt, pair.initial_reason_steps, tokenizer=tokenizer, prompt_format=prompt_format
        ),
        "chosen": pair.chosen,
        "rejected": pair.rejected,
    }


# ---- files ---------------------------------------------------------------------------------


@dataclass
class ConvertReport:
    source: str
    target: str
    rows_in: int = 0
    rows_out: int = 0
    skipped: Counter = field(default_factory=Counter)
    made: Counter = field(default_factory=Counter)  # the models, judges and data sets the rows name
    relabelled: int = 0  # true step labels after a row's first false one, read as false
    relabelled_rows: int = 0

    def text(self) -> str:
        skipped = ", ".join(f"{k}: {v}" for k, v in self.skipped.items()) or "none"
        line = f"{self.rows_in} {self.source} rows -> {self.rows_out} {self.target} rows; skipped {skipped}"
        if self.relabelled:
            line += (
                f"; {self.relabelled} true step labels in {self.relabelled_rows} rows came after the row's first "
                "false one and were read as false (the first wrong step is what a label marks)"
            )
        return line


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
    ids: dict[Any, int] = {}  # an id as written -> the line it first appeared on
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
            provenance(row, report.made)
            converted = _convert_row(row, fmt, to, prompt_format, report)
            rid = row.get("id")
            if fmt in ("processbench", "trl-stepwise") and isinstance(rid, (str, int)) and rid != "":
                if rid in ids:  # a labelled case's id names it: two cases under one id would merge downstream
                    raise RecordError("duplicate_id", f"id {rid!r} is used again (first on line {ids[rid]})")
                ids[rid] = line
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


def _convert_row(
    row: dict[str, Any], fmt: str, to: str, prompt_format: str, report: ConvertReport
) -> dict[str, Any] | None:
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
    if case.relabelled:
        report.relabelled += case.relabelled
        report.relabelled_rows += 1
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
        ours = (path / "dataset_info.json").exists() and is_our_card(card)
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


def provenance(row: dict[str, Any], made: Counter) -> None:
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
