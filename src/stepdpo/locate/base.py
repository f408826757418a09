"""The judge interface and the locate stage's per-chunk function."""

from __future__ import annotations

from typing import Any, Iterable, Protocol

from ..records import LocatedError, Solution
from ..runner import ItemResult


class Judge(Protocol):
    """Finds the first wrong step of wrong solutions.

    ``locate`` returns one :class:`LocatedError` per solution, in order; ``first_error_step`` is
    None (with ``reason``) where the judge could not locate the error.
    """

    name: str

    def locate(self, solutions: list[Solution]) -> list[LocatedError]: ...

    def settings(self) -> dict[str, Any]: ...


def locate_chunk(judge: Judge, solutions: list[Solution]) -> Iterable[ItemResult]:
    """Locate the errors of a chunk; unlocated ones are written too, with their reason."""
    todo = [s for s in solutions if not s.correct]
    located = iter(judge.locate(todo)) if todo else iter(())
    for sol in solutions:
        res = ItemResult(key=sol.id)
        if sol.correct:
            res.dropped["solution_is_correct"] += 1
            yield res
            continue
        err = next(located)
        res.records.append(err)
        if err.first_error_step is None:
            res.counters[f"unlocated:{err.reason or 'unknown'}"] += 1
        else:
            res.counters["located"] += 1
            res.counters["rollouts"] += int(err.evidence.get("rollouts", 0))
        yield res


def make_judge(name: str, generator: Any = None, **options: Any) -> Judge:
    """A judge by name: ``verifier``, ``rollout`` (needs ``generator``) or ``llm``."""
    if name == "verifier":
        from .verifier import VerifierJudge

        return VerifierJudge(**options)
    if name == "rollout":
        if generator is None:
            raise ValueError("the rollout judge needs a model to sample from (--model)")
        from .rollout import RolloutJudge

        return RolloutJudge(generator, **options)
    if name == "llm":
        from .llm import LLMJudge

        return LLMJudge(**options)
    raise ValueError(f"unknown judge {name!r}; use llm, rollout or verifier")
