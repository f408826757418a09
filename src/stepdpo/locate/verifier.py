"""The ``verifier`` judge: a programmatic step checker, pluggable per task.

The embedded synthetic task ships an exact checker (:func:`stepdpo.tasks.arithmetic.check_solution`);
other tasks register theirs in :data:`CHECKERS` under their ``source`` name.
"""

from __future__ import annotations

from typing import Any, Callable

from ..records import LocatedError, Problem, Solution
from ..tasks import arithmetic


def _arithmetic(sol: Solution) -> tuple[int | None, str]:
    problem = Problem(id=sol.problem_id, problem=sol.problem, answer=sol.answer, meta=sol.meta)
    r = arithmetic.check_solution(problem, sol.completion)
    return r.first_error_step, r.message


CHECKERS: dict[str, Callable[[Solution], tuple[int | None, str]]] = {arithmetic.TASK_NAME: _arithmetic}
"""Task name -> checker returning ``(first wrong step or None, message)`` for a solution."""


class VerifierJudge:
    """Locates errors with the exact checker of the solution's task."""

    name = "verifier"

    def settings(self) -> dict[str, Any]:
        return {"judge": self.name}

    def locate(self, solutions: list[Solution]) -> list[LocatedError]:
        out = []
        for sol in solutions:
            checker = CHECKERS.get(sol.dataset)
            if checker is None:
                out.append(LocatedError(sol, None, self.name, reason=f"no checker for task {sol.dataset!r}"))
                continue
            k, message = checker(sol)
            reason = None if k is not None else "checker_found_no_error"
            out.append(LocatedError(sol, k, self.name, evidence={"message": message}, reason=reason))
        return out
