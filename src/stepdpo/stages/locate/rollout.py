"""The ``rollout`` judge: Monte-Carlo step localization with no external judge (Math-Shepherd).

A prefix s1..si of a wrong solution is *recoverable* if at least one of m continuations sampled
from the model after it reaches the gold answer. The first error k is the first step after which
nothing is recoverable: the smallest i with R(i) false. R(0) (the bare problem) is taken as
recoverable and R(n) (the whole wrong solution) as not, so no rollouts are spent on either. A
solution that reaches the gold answer has R(n) true: the judge finds no wrong step in it.

``search="binary"`` finds k with about log2(n) checks, bisecting [lo, hi] with R(lo) true and
R(hi) false (as OmegaPRM does); ``"linear"`` checks i = 1, 2, ... until the first failure;
``"full"`` checks every prefix (Math-Shepherd's per-step annotation). With ``early_stop`` a check
samples m/2 continuations first and the other m/2 only if none of the first reached the answer.
All solutions of a batch are searched together, one generation call per round.

Two refinements, used by every search: with ``abstain``, R(0) is sampled once per problem, and if
the policy never solves the problem from scratch the error is recorded as unlocated
(``unsolvable_by_policy``): rollouts carry no information there. With ``reuse``, a successful
continuation from prefix i that reproduces the solution's next steps s(i+1)..sj verbatim also
proves R(j), so the search skips past j; binary search then checks s(j+1), the step where that
continuation left the solution, before bisecting again (a continuation that reproduces no step
gives no such hint, so on free-form text the search stays a plain bisection). The successes of
the R(0) check count too: one that reproduces s1..sj starts the search at j.
"""

from __future__ import annotations

from typing import Any

from stepdpo.generation import Generator, SamplingConfig
from stepdpo.records import NO_WRONG_STEP, LocatedError, Solution
from stepdpo.text.grading import grade
from stepdpo.text.prompts import generation_prompt, resolve_format
from stepdpo.text.steps import split_steps, step_body


class RolloutJudge:
    """First-error localization by rollouts from the model itself."""

    name = "rollout"

    def __init__(
        self,
        generator: Generator,
        m: int = 8,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 512,
        search: str = "binary",
        early_stop: bool = True,
        prompt_format: str = "auto",
        seed: int = 0,
        abstain: bool = True,
        reuse: bool = True,
    ):
        if search not in ("binary", "linear", "full"):
            raise ValueError(f"unknown search {search!r}; use binary, linear or full")
        if m < 1:
            raise ValueError("m (rollouts per check) must be at least 1")
        self.generator, self.m, self.search, self.early_stop = generator, m, search, early_stop
        self.fmt = resolve_format(generator.tokenizer, prompt_format)
        self.temperature, self.top_p, self.max_new_tokens, self.seed = temperature, top_p, max_new_tokens, seed
        self.abstain, self.reuse = abstain, reuse
        # problem -> (successes, rollouts) from scratch, for the solutions of one locate() call
        self._root: dict[tuple[str, str], tuple[list[str], int]] = {}

    def settings(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "model": self.generator.model_name,
            "m": self.m,
            "search": self.search,
            "early_stop": self.early_stop,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "prompt_format": self.fmt,
            "seed": self.seed,
            "abstain": self.abstain,
            "reuse": self.reuse,
        }

    def _sample(self, queries: list[tuple[Solution, int]], n: int, phase: int = 0) -> list[list[str]]:
        """For each prefix (solution, i): those of n continuations that reach the answer (their
        text from step i+1 on). Every draw is keyed by content: the seed, the prompt (problem and
        prefix), the sample's index and ``phase`` (the first or second half of an early-stopped
        check), never by how many calls came before, so a resumed run samples what an
        uninterrupted one does."""
        sampling = SamplingConfig(
            n=n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed + 7919 * phase,
        )
        prompts = [
            generation_prompt(s.problem, s.steps[:i], tokenizer=self.generator.tokenizer, prompt_format=self.fmt)
            for s, i in queries
        ]
        outs = self.generator.generate([p for p, _ in prompts], sampling)
        return [
            [primer + c.text for c in comps if grade(primer + c.text, s.answer)]
            for (s, _), (_, primer), comps in zip(queries, prompts, outs)
        ]

    def _check(self, queries: list[tuple[Solution, int]]) -> list[tuple[list[str], int]]:
        """``(successful continuations, rollouts spent)`` for each prefix."""
        if not queries:
            return []
        if not self.early_stop or self.m == 1:
            return [(wins, self.m) for wins in self._sample(queries, self.m)]
        first = (self.m + 1) // 2
        found = self._sample(queries, first)
        again = [j for j, wins in enumerate(found) if not wins]
        more = self._sample([queries[j] for j in again], self.m - first, phase=1) if again else []
        result = [(wins, first) for wins in found]
        for j, wins in zip(again, more):
            result[j] = (wins, self.m)
        return result

    def _depth(self, solution: Solution, i: int, wins: list[str]) -> int:
        """The longest prefix s1..sj (j >= i) that a success after s1..si reproduces verbatim
        (i without ``reuse``)."""
        if not self.reuse:
            return i
        return i + max((_shared_steps(solution.steps[i:], t) for t in wins), default=0)

    def _solvable(self, solutions: list[Solution]) -> dict[tuple[str, str], tuple[list[str], int]]:
        """R(0) per problem, sampled once per problem and judge: (successful continuations,
        rollouts spent)."""
        todo = {}
        for s in solutions:
            key = (s.problem, s.answer)
            if key not in self._root and key not in todo:
                todo[key] = Solution(
                    id="", problem_id="", problem=s.problem, answer=s.answer, completion="x", steps=["x"], correct=False
                )
        for key, (wins, cost) in zip(todo, self._check([(s, 0) for s in todo.values()])):
            self._root[key] = (wins if self.reuse else wins[:1], cost)  # without reuse, one tells solvable
        return self._root

    def locate(self, solutions: list[Solution]) -> list[LocatedError]:
        """The first error of each solution. A solution graded correct reaches the gold answer:
        R(n) holds, so no step is found wrong (an error the solution recovers from is invisible to
        rollouts). The R(0) check is shared by the solutions of a problem within one call (a chunk
        of the stage); each record carries its own search's ``rollouts`` and the R(0) check's cost
        as ``root_rollouts``, so a record is the same however the solutions were chunked."""
        self._root = {}
        found = iter(self._locate_wrong([s for s in solutions if not s.correct]))
        return [
            LocatedError(s, None, self.name, reason=NO_WRONG_STEP, evidence={"rollouts": 0, "m": self.m})
            if s.correct
            else next(found)
            for s in solutions
        ]

    def _locate_wrong(self, solutions: list[Solution]) -> list[LocatedError]:
        out: list[LocatedError | None] = [None] * len(solutions)
        root_cost, start = {}, [0] * len(solutions)
        if self.abstain:
            # if the policy never solves the problem from scratch, rollouts cannot tell where it
            # went wrong: the error is recorded as unlocated rather than guessed as step 1
            root = self._solvable(solutions)
            for j, s in enumerate(solutions):
                key = (s.problem, s.answer)
                root_cost[j] = root[key][1]  # the problem's check, the same in each of its records
                if not root[key][0]:
                    out[j] = LocatedError(
                        s,
                        None,
                        self.name,
                        reason="unsolvable_by_policy",
                        evidence={"rollouts": 0, "root_rollouts": root_cost[j], "m": self.m, "search": self.search},
                    )
                start[j] = self._depth(s, 0, root[key][0])
        todo = [j for j in range(len(solutions)) if out[j] is None]
        for j, err in zip(todo, self._search([solutions[j] for j in todo], [start[j] for j in todo])):
            if j in root_cost:
                err.evidence["root_rollouts"] = root_cost[j]
            out[j] = err
        return out  # type: ignore[return-value]

    def _search(self, solutions: list[Solution], start: list[int]) -> list[LocatedError]:
        """Search each solution's first error, knowing R(start[j]) already (from the R(0) check)."""
        n = [len(s.steps) for s in solutions]
        lo = [min(d, k - 1) for d, k in zip(start, n)]  # R(lo) true, R(hi) false
        hi = list(n)
        spent = [0] * len(solutions)
        checks: list[dict[int, int]] = [{} for _ in solutions]
        # linear: next prefix to check; full checks every prefix
        nxt = [1 if self.search == "full" else d + 1 for d in lo]
        # binary: where a reproducing success diverged
        hint: list[int | None] = [d + 1 if d else None for d in lo]
        while True:
            queries, owners = [], []
            for j, s in enumerate(solutions):
                if self.search == "binary" and hi[j] - lo[j] > 1:
                    h = hint[j]
                    queries.append((s, h if h is not None and lo[j] < h < hi[j] else (lo[j] + hi[j]) // 2))
                elif self.search != "binary" and nxt[j] < n[j] and (self.search == "full" or hi[j] == n[j]):
                    queries.append((s, nxt[j]))
                else:
                    continue
                owners.append(j)
            if not queries:
                break
            for j, (s, i), (won, cost) in zip(owners, queries, self._check(queries)):
                spent[j] += cost
                checks[j][i] = wins = len(won)
                depth = self._depth(s, i, won)
                if self.search == "binary":
                    if wins:
                        lo[j] = max(i, min(depth, hi[j] - 1))
                        hint[j] = lo[j] + 1 if depth > i else None
                    else:
                        hi[j], hint[j] = i, None
                else:
                    if wins and self.search == "linear":
                        nxt[j] = max(i, min(depth, n[j] - 1)) + 1  # reproduced steps are recoverable too
                    else:
                        nxt[j] = i + 1
                    if not wins and hi[j] == n[j]:
                        hi[j] = i
        return [
            LocatedError(
                s,
                hi[j],
                self.name,
                evidence={
                    "rollouts": spent[j],
                    "m": self.m,
                    "search": self.search,
                    "successes_after_prefix": {str(i): w for i, w in sorted(checks[j].items())},
                },
            )
            for j, s in enumerate(solutions)
        ]


def _shared_steps(steps: list[str], continuation: str) -> int:
    """How many of ``steps`` a continuation text reproduces verbatim, from the first on."""
    cont = split_steps(continuation)[1]
    count = 0
    for a, b in zip(steps, cont):
        if step_body(a) != step_body(b):
            break
        count += 1
    return count
