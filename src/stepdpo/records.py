"""The data contract: every record a Step-DPO stage reads or writes.

The pipeline of Sec. 3.2 moves four kinds of record:

- :class:`Problem`: a problem x with its gold answer (and, where known, a reference solution).
- :class:`Solution`: a step-by-step solution sampled from a model, graded (error collection, D1).
- :class:`LocatedError`: a wrong solution with its first wrong step k (step localization, D2).
- :class:`Rectification`: the model's own correct continuations after s1..s(k-1) (eq. 3).
- :class:`StepPair`: the preference pair of eq. 2 -- x and the correct prior steps s1..s(k-1)
  (``prompt`` and ``initial_reason_steps``), the preferred next step s_win (``chosen``) and the
  rejected one s_lose (``rejected``). Field names are exactly those of the released
  Math-Step-DPO-10K data, so that file loads as is.

Each record validates itself in ``from_dict``: a missing field, a wrong type, an empty step or
``chosen == rejected`` raise :class:`RecordError` with a reason code, which the readers in
:mod:`stepdpo.recordio` turn into an error naming the file and line (or a skip count per reason).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar


class RecordError(ValueError):
    """A record that breaks the contract; ``reason`` is a short code used in skip reports."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def content_id(*parts: Any) -> str:
    """A stable 16-hex-digit id from the content of a record (used to resume stages)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _check_str(d: dict, name: str, *, required: bool = True, nonempty: bool = False) -> str | None:
    if name not in d or d[name] is None:
        if required:
            raise RecordError("missing_field", f"missing field '{name}'")
        return None
    value = d[name]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and name in ("answer", "id"):
        value = str(value)  # gold answers and ids are often numbers in the wild
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"field '{name}' must be a string, got {type(value).__name__}")
    if nonempty and not value.strip():
        raise RecordError(f"empty_{name}", f"field '{name}' is empty")
    return value


def _check_map(d: dict, name: str) -> dict[str, Any]:
    """An optional mapping field (``meta``, ``evidence``, ``generator``), or a RecordError naming it."""
    value = d.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError("bad_field", f"field '{name}' must be a mapping (a JSON object), got {value!r:.60}")
    return dict(value)


class _Record:
    """Shared behaviour: dict conversion that drops unset optional fields."""

    KIND: ClassVar[str] = "record"

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None or (f.name == "meta" and not value):
                continue
            out[f.name] = value
        return out


@dataclass
class Problem(_Record):
    """A math problem x with its gold answer; ``solution`` is a reference solution if known."""

    KIND: ClassVar[str] = "problem"
    id: str
    problem: str
    answer: str
    source: str = ""
    solution: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        problem = _check_str(d, "problem", nonempty=True)
        answer = _check_str(d, "answer", nonempty=True)
        pid = _check_str(d, "id", required=False) or content_id(problem, answer)
        return cls(
            id=pid,
            problem=problem,  # type: ignore[arg-type]
            answer=answer,  # type: ignore[arg-type]
            source=_check_str(d, "source", required=False) or "",
            solution=_check_str(d, "solution", required=False),
            meta=_check_map(d, "meta"),
        )


@dataclass
class Solution(_Record):
    """One sampled step-by-step solution of a problem, graded against the gold answer.

    ``steps`` are the solution's steps verbatim (each starting with its "Step i:" marker), so that
    ``"".join(steps) == completion``. ``generator`` records the model, prompt format and sampling
    settings that produced it.
    """

    KIND: ClassVar[str] = "solution"
    id: str
    problem_id: str
    problem: str
    answer: str
    completion: str
    steps: list[str]
    correct: bool
    predicted: str | None = None
    dataset: str = ""
    reference: str | None = None
    generator: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Solution:
        steps = d.get("steps")
        if not isinstance(steps, list) or not steps:
            raise RecordError("empty_steps", "field 'steps' must be a non-empty list")
        for i, s in enumerate(steps, 1):
            if not isinstance(s, str) or not s.strip():
                raise RecordError("empty_step", f"step {i} is empty")
        if not isinstance(d.get("correct"), bool):
            raise RecordError("missing_field", "field 'correct' must be true or false")
        return cls(
            id=_check_str(d, "id"),  # type: ignore[arg-type]
            problem_id=_check_str(d, "problem_id"),  # type: ignore[arg-type]
            problem=_check_str(d, "problem", nonempty=True),  # type: ignore[arg-type]
            answer=_check_str(d, "answer", nonempty=True),  # type: ignore[arg-type]
            completion=_check_str(d, "completion", nonempty=True),  # type: ignore[arg-type]
            steps=list(steps),
            correct=d["correct"],
            predicted=_check_str(d, "predicted", required=False),
            dataset=_check_str(d, "dataset", required=False) or "",
            reference=_check_str(d, "reference", required=False),
            generator=_check_map(d, "generator"),
            meta=_check_map(d, "meta"),
        )


NO_WRONG_STEP = "no_wrong_step"
"""The ``reason`` of a located error whose judge found every step right."""


@dataclass
class LocatedError(_Record):
    """A wrong solution and its first wrong step k (1-based), as found by a judge.

    ``first_error_step`` is None when the judge could not locate an error; ``reason`` then says
    why: :data:`NO_WRONG_STEP` when the judge finds every step right (ProcessBench's label -1),
    anything else when it abstained. ``evidence`` is judge-specific (per-step verdicts, rollouts
    spent, checker message, the annotator).
    """

    KIND: ClassVar[str] = "located_error"
    solution: Solution
    first_error_step: int | None
    judge: str
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @property
    def id(self) -> str:
        return self.solution.id

    @property
    def prior_steps(self) -> list[str]:
        """The correct steps s1..s(k-1) before the first error."""
        k = self.first_error_step or 1
        return self.solution.steps[: k - 1]

    @property
    def rejected_step(self) -> str | None:
        """The first wrong step s_k (s_lose), or None if unlocated."""
        if self.first_error_step is None:
            return None
        return self.solution.steps[self.first_error_step - 1]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["solution"] = self.solution.to_dict()
        out["first_error_step"] = self.first_error_step
        out["id"] = self.solution.id
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LocatedError:
        if not isinstance(d.get("solution"), dict):
            raise RecordError("missing_field", "missing field 'solution'")
        sol = Solution.from_dict(d["solution"])
        k = d.get("first_error_step")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= len(sol.steps)):
            raise RecordError("bad_step_index", f"first_error_step {k!r} is not in 1..{len(sol.steps)}")
        return cls(
            solution=sol,
            first_error_step=k,
            judge=_check_str(d, "judge"),  # type: ignore[arg-type]
            evidence=_check_map(d, "evidence"),
            reason=_check_str(d, "reason", required=False),
        )


@dataclass
class Rectification(_Record):
    """Rectification (eq. 3) of one located error: continuations sampled from the model after
    s1..s(k-1) that reach the gold answer. The first step of each is a candidate s_win.

    ``candidates`` holds ``{"step": s_win, "continuation": whole continuation text}``;
    ``sampled`` is how many continuations were drawn; ``rule`` which rule accepted them
    (``answer``: the continuation reached the gold answer; ``step``: the exact checker passed the
    sampled step); ``rejected_candidates`` the distinct sampled steps the checker failed,
    ``{"step", "why"}``, further s_lose after the same prior steps.
    """

    KIND: ClassVar[str] = "rectification"
    error: LocatedError
    candidates: list[dict[str, str]]
    sampled: int
    generator: dict[str, Any] = field(default_factory=dict)
    rule: str = "answer"
    rejected_candidates: list[dict[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.error.solution.id

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["error"] = self.error.to_dict()
        out["id"] = self.id
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rectification:
        if not isinstance(d.get("error"), dict):
            raise RecordError("missing_field", "missing field 'error'")
        cands = d.get("candidates")
        if not isinstance(cands, list) or not all(
            isinstance(c, dict) and isinstance(c.get("step"), str) for c in cands
        ):
            raise RecordError("wrong_type", "field 'candidates' must be a list of {step, continuation}")
        rejects = d.get("rejected_candidates", [])
        if not isinstance(rejects, list) or not all(
            isinstance(c, dict) and isinstance(c.get("step"), str) for c in rejects
        ):
            raise RecordError("wrong_type", "field 'rejected_candidates' must be a list of {step, why}")
        if d.get("rule", "answer") not in ("answer", "step"):
            raise RecordError("bad_field", "field 'rule' must be 'answer' or 'step'")
        return cls(
            error=LocatedError.from_dict(d["error"]),
            candidates=cands,
            sampled=int(d.get("sampled", 0)),
            generator=_check_map(d, "generator"),
            rule=d.get("rule", "answer"),
            rejected_candidates=rejects,
        )


@dataclass
class StepPair(_Record):
    """A step preference pair (eq. 2): prompt x, prior steps s<k, chosen s_win, rejected s_lose.

    ``prompt`` is the bare problem text; ``initial_reason_steps`` is the solution so far
    ("Let's think step by step.\\n" followed by steps 1..k-1). The prompt format a model sees is
    applied by :mod:`stepdpo.text.prompts` at training and inference alike. ``full_chosen`` and
    ``full_rejected`` are whole solutions when known (used by the vanilla-DPO baseline).
    """

    KIND: ClassVar[str] = "step_pair"
    prompt: str
    initial_reason_steps: str
    chosen: str
    rejected: str
    full_chosen: str | None = None
    full_rejected: str | None = None
    answer: str | None = None
    dataset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return content_id(self.prompt, self.initial_reason_steps, self.chosen, self.rejected)

    def dpo_completions(self) -> tuple[str, str]:
        """The whole continuations after ``initial_reason_steps`` that vanilla DPO compares.

        ``full_chosen`` / ``full_rejected`` where present: the released data stores them as the
        continuation only, this project's pairs as the whole solution, from which the prior steps
        are cut. Without them, ``chosen`` / ``rejected`` are the whole solutions already (the pairs
        ``stepdpo build --format dpo`` writes).
        """
        if self.full_chosen is None or self.full_rejected is None:
            return self.chosen, self.rejected
        prior = self.initial_reason_steps
        cut = [t[len(prior) :] if prior and t.startswith(prior) else t for t in (self.full_chosen, self.full_rejected)]
        return cut[0], cut[1]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepPair:
        pair = cls(
            prompt=_check_str(d, "prompt", nonempty=True),  # type: ignore[arg-type]
            initial_reason_steps=_check_str(d, "initial_reason_steps"),  # type: ignore[arg-type]
            chosen=_check_str(d, "chosen", nonempty=True),  # type: ignore[arg-type]
            rejected=_check_str(d, "rejected", nonempty=True),  # type: ignore[arg-type]
            full_chosen=_check_str(d, "full_chosen", required=False),
            full_rejected=_check_str(d, "full_rejected", required=False),
            answer=_check_str(d, "answer", required=False),
            dataset=_check_str(d, "dataset", required=False),
            meta=_check_map(d, "meta"),
        )
        if pair.chosen.strip() == pair.rejected.strip():
            raise RecordError("chosen_equals_rejected", "'chosen' and 'rejected' are the same step")
        return pair


RECORD_TYPES: dict[str, type] = {
    "problem": Problem,
    "solution": Solution,
    "located_error": LocatedError,
    "rectification": Rectification,
    "step_pair": StepPair,
}


def detect_kind(d: dict[str, Any]) -> str:
    """Guess the record kind of a row from its fields (used by ``stepdpo validate``)."""
    if "chosen" in d or "rejected" in d:
        return "step_pair"
    if "candidates" in d:
        return "rectification"
    if "first_error_step" in d or "judge" in d:
        return "located_error"
    if "completion" in d or "steps" in d:
        return "solution"
    return "problem"
