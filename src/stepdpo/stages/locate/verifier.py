"""The ``verifier`` judge: the exact step checker of the solution's task.

Any task registered in :mod:`stepdpo.tasks` with a step checker works (the embedded synthetic task
ships one); a solution of a data set with no registered checker is recorded as unlocated.
"""

from __future__ import annotations

from typing import Any

from stepdpo.records import NO_WRONG_STEP, LocatedError, Problem, Solution
from stepdpo.tasks import step_checker


class VerifierJudge:
    """Locates errors with the exact checker of the solution's task."""

    name = "verifier"

    def settings(self) -> dict[str, Any]:
        return {"judge": self.name}

    def locate(self, solutions: list[Solution]) -> list[LocatedError]:
        out = []
        for sol in solutions:
            check = step_checker(sol.dataset, sol.meta)
            if check is None:
                out.append(LocatedError(sol, None, self.name, reason=f"no checker for task {sol.dataset!r}"))
                continue
            problem = Problem(id=sol.problem_id, problem=sol.problem, answer=sol.answer, meta=sol.meta)
            k, message = check(problem, sol.completion, False)
            reason = None if k is not None else NO_WRONG_STEP
            out.append(LocatedError(sol, k, self.name, evidence={"message": message}, reason=reason))
        return out
