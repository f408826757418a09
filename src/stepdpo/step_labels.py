"""Step labels: one labelled solution (its steps and its earliest wrong step) in the field's
label formats, read and written both ways (``stepdpo convert``, ``stepdpo eval-judge``).

- ``located``: this project's :class:`~stepdpo.records.LocatedError` (D2).
- ``processbench``: ``id``, ``problem``, ``steps`` (bodies, no markers), ``label`` (0-based
  earliest wrong step, -1 when every step is right), ``final_answer_correct`` (ProcessBench).
- ``trl-stepwise``: ``prompt``, ``completions`` (the steps), ``labels`` (one bool per step), the
  stepwise-supervision format TRL's PRMTrainer reads. Steps before k are true; step k and every
  step after it are false (a step after a wrong one builds on it), so k is the first false label.

Step texts are kept byte for byte through every format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stepdpo.records import NO_WRONG_STEP, LocatedError, RecordError, Solution, content_id
from stepdpo.text.steps import step_marker, strip_marker


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
    relabelled: int = 0  # true labels after the first false one, read as false (trl-stepwise)

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
    if final is not None and not isinstance(final, bool):
        raise RecordError("bad_field", f"'final_answer_correct' must be true, false or null, got {final!r}")
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
    case = Case(cid, row["prompt"], steps, first_false, final, answer, id_value=raw)
    # a step after the first wrong one builds on it: read as wrong whatever its label (counted)
    case.relabelled = sum(1 for ok in labels[first_false + 1 :] if ok) if first_false >= 0 else 0
    return case
