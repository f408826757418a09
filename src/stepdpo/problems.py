"""Problem sources: registered tasks (the embedded synthetic task), GSM8K, MATH (MATH500), project
files, the hub.

``load_problems(spec)`` takes a registered task's name (:mod:`stepdpo.tasks`: ``synthetic``,
``synthetic-long``), ``gsm8k``,
``math500`` or ``math`` (from the Hugging Face hub), a ``hub:ORG/NAME[:CONFIG]`` id, or a local
file (JSONL, JSON or Parquet) in GSM8K format (question, answer ending ``#### N``), MATH format
(problem, solution with ``\\boxed{}``, optional answer) or the project's problem records
(problem, answer). Every row is validated; a bad row is an error naming the file and line, or
(``skip_invalid``) is counted and reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stepdpo.progress import log
from stepdpo.recordio import DataError, ReadReport, read_records
from stepdpo.records import Problem, RecordError, content_id
from stepdpo.text.grading import reference_answer

HUB_SOURCES = {
    "gsm8k": ("openai/gsm8k", "main", {"train": "train", "test": "test"}),
    "math500": ("HuggingFaceH4/MATH-500", None, {"train": "test", "test": "test"}),
    "math": ("EleutherAI/hendrycks_math", None, {"train": "train", "test": "test"}),
}
HUB_LICENSES = {"gsm8k": "mit", "math500": "mit", "math": "mit"}
_CALC = re.compile(r"<<[^>]*>>")


def problems_license(spec: str) -> str | None:
    """The licence of the problems ``spec`` names, where known: the embedded tasks are this
    project's (Apache-2.0), the named hub sets MIT; a file's is its owner's (None)."""
    from stepdpo.tasks import TASKS

    if spec in TASKS:
        return "apache-2.0"
    return HUB_LICENSES.get(spec)


def gsm8k_solution_to_steps(solution: str) -> tuple[str, str]:
    """``(steps, answer)`` from a GSM8K solution: one "Step i:" per line, calculator notes removed,
    ending with "The answer is \\boxed{N}."."""
    if "####" not in solution:
        raise RecordError("unparsable_answer", "GSM8K answer has no '#### N' line")
    body, answer = solution.rsplit("####", 1)
    answer = answer.strip().replace(",", "")
    if not answer:
        raise RecordError("unparsable_answer", "GSM8K '####' line is empty")
    lines = [_CALC.sub("", ln).strip() for ln in body.strip().splitlines() if ln.strip()]
    steps = "".join(f"Step {i}: {ln}\n" for i, ln in enumerate(lines, 1))
    return steps + f"The answer is \\boxed{{{answer}}}.", answer


def _from_row(row: dict[str, Any], source: str) -> dict[str, Any]:
    """Map a GSM8K, MATH or problem-record row to the fields of :class:`Problem`."""
    if "question" in row and "problem" not in row:  # GSM8K
        if not isinstance(row.get("answer"), str):
            raise RecordError("missing_field", "missing field 'answer'")
        solution, answer = gsm8k_solution_to_steps(row["answer"])
        pid = row.get("id") or f"gsm8k-{content_id(row['question'])}"
        return {
            "id": pid,
            "problem": row["question"],
            "answer": answer,
            "solution": solution,
            "source": source or "gsm8k",
        }
    # MATH; a problem record (which carries its source or meta) may hold a solution too
    if "problem" in row and "solution" in row and "source" not in row and "meta" not in row:
        if not isinstance(row["solution"], str):
            raise RecordError("wrong_type", "field 'solution' must be a string")
        answer = row.get("answer") or reference_answer(row["solution"])
        if "\\boxed" not in row["solution"] and not row.get("answer"):
            raise RecordError("unparsable_answer", "MATH solution has no \\boxed{} answer and no 'answer' field")
        meta = {k: row[k] for k in ("subject", "level", "type") if k in row}
        pid = row.get("unique_id") or row.get("id") or f"math-{content_id(row['problem'])}"
        return {
            "id": pid,
            "problem": row["problem"],
            "answer": answer,
            "solution": row["solution"],
            "source": source or "math",
            "meta": meta,
        }
    return row


def load_problem_file(
    path: str | Path, *, skip_invalid: bool = False, source: str = ""
) -> tuple[list[Problem], ReadReport]:
    """Problems from a local file in GSM8K, MATH or problem-record format."""
    src = source or Path(path).stem
    return read_records(path, "problem", skip_invalid=skip_invalid, convert=lambda r: _from_row(r, src))


def load_hub_problems(name: str, config: str | None, split: str, source: str) -> list[Problem]:
    """Problems from a Hugging Face hub dataset (needs the network or a local hub cache)."""
    from datasets import load_dataset

    try:
        ds = load_dataset(name, config, split=split)
    except Exception as e:  # no network, no cache, a name the hub does not have: datasets raises many types
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise DataError(
            f"hub:{name}",
            None,
            f"loads from the Hugging Face Hub, which did not answer ({e.__class__.__name__}: {first}). "
            "Download it where there is a network (it is then cached), or pass a local file: "
            "--data problems.jsonl (JSONL, JSON or Parquet with problem and answer fields)",
            "hub_unreachable",
        ) from None
    out = []
    for i, row in enumerate(ds, 1):
        try:
            out.append(Problem.from_dict(_from_row(dict(row), source)))
        except RecordError as e:
            raise DataError(f"hub:{name}[{split}]", i, str(e), e.reason) from e
    return out


def load_problems(
    spec: str, *, split: str = "test", limit: int | None = None, seed: int | None = None, skip_invalid: bool = False
) -> list[Problem]:
    """Problems named by ``spec`` (see the module docstring); ``limit`` keeps the first N."""
    from stepdpo.tasks import TASKS

    if spec in TASKS:
        return TASKS[spec].problems(split, limit or 500, seed)
    path = Path(spec)
    if path.exists():
        problems, report = load_problem_file(path, skip_invalid=skip_invalid)
        if report.skipped:
            log.warning(report.summary())
        if not problems:
            raise DataError(path, None, "no problems in the file", "empty")
    elif spec in HUB_SOURCES:
        name, config, splits = HUB_SOURCES[spec]
        problems = load_hub_problems(name, config, splits[split], spec)
    elif spec.startswith("hub:"):
        parts = spec[4:].split(":")
        problems = load_hub_problems(parts[0], parts[1] if len(parts) > 1 else None, split, parts[0].split("/")[-1])
    else:
        raise DataError(
            spec,
            None,
            "no such file, and not one of synthetic, synthetic-long, synthetic-short, gsm8k, math500, math, hub:ORG/NAME",
            "missing_file",
        )
    return problems[:limit] if limit else problems
