"""The ``rollout`` judge: Monte-Carlo step localization with no external judge (Math-Shepherd).

A prefix s1..si of a wrong solution is *recoverable* if at least one of m continuations sampled
from the model after it reaches the gold answer. The first error k is the first step after which
nothing is recoverable: the smallest i with R(i) false. R(0) (the bare problem) is taken as
recoverable and R(n) (the whole wrong solution) as not, so no rollouts are spent on either.

``search="binary"`` finds k with about log2(n) checks, bisecting [lo, hi] with R(lo) true and
R(hi) false (as OmegaPRM does); ``"linear"`` checks i = 1, 2, ... until the first failure;
``"full"`` checks every prefix (Math-Shepherd's per-step annotation). With ``early_stop`` a check
samples m/2 continuations first and the other m/2 only if none of the first reached the answer.
All solutions of a batch are searched together, one generation call per round.
"""

from __future__ import annotations

from typing import Any

from ..generation import Generator, SamplingConfig
from ..grading import grade
from ..prompts import generation_prompt, resolve_format
from ..records import LocatedError, Solution


class RolloutJudge:
    """First-error localization by rollouts from the model itself."""

    name = "rollout"

    def __init__(self, generator: Generator, m: int = 8, temperature: float = 0.8, top_p: float = 0.95,
                 max_new_tokens: int = 512, search: str = "binary", early_stop: bool = True,
                 prompt_format: str = "auto", seed: int = 0):
        if search not in ("binary", "linear", "full"):
            raise ValueError(f"unknown search {search!r}; use binary, linear or full")
        if m < 1:
            raise ValueError("m (rollouts per check) must be at least 1")
        self.generator, self.m, self.search, self.early_stop = generator, m, search, early_stop
        self.fmt = resolve_format(generator.tokenizer, prompt_format)
        self.temperature, self.top_p, self.max_new_tokens, self.seed = temperature, top_p, max_new_tokens, seed
        self._round = 0

    def settings(self) -> dict[str, Any]:
        return {"judge": self.name, "model": self.generator.model_name, "m": self.m, "search": self.search,
                "early_stop": self.early_stop, "temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "prompt_format": self.fmt, "seed": self.seed}

    def _sample(self, queries: list[tuple[Solution, int]], n: int) -> list[int]:
        """Number of the n continuations after each prefix (solution, i) that reach the answer."""
        self._round += 1
        sampling = SamplingConfig(n=n, temperature=self.temperature, top_p=self.top_p,
                                  max_new_tokens=self.max_new_tokens, seed=self.seed + 7919 * self._round)
        prompts = [generation_prompt(s.problem, s.steps[:i], tokenizer=self.generator.tokenizer, fmt=self.fmt)
                   for s, i in queries]
        outs = self.generator.generate([p for p, _ in prompts], sampling)
        return [sum(grade(primer + c.text, s.answer) for c in comps)
                for (s, _), (_, primer), comps in zip(queries, prompts, outs)]

    def _check(self, queries: list[tuple[Solution, int]]) -> list[tuple[int, int]]:
        """``(successes, rollouts spent)`` for each prefix."""
        if not queries:
            return []
        if not self.early_stop or self.m == 1:
            return [(s, self.m) for s in self._sample(queries, self.m)]
        first = (self.m + 1) // 2
        wins = self._sample(queries, first)
        again = [j for j, w in enumerate(wins) if w == 0]
        more = self._sample([queries[j] for j in again], self.m - first) if again else []
        result = [(w, first) for w in wins]
        for j, w in zip(again, more):
            result[j] = (w, self.m)
        return result

    def locate(self, solutions: list[Solution]) -> list[LocatedError]:
        n = [len(s.steps) for s in solutions]
        lo, hi = [0] * len(solutions), list(n)  # R(lo) true, R(hi) false
        spent = [0] * len(solutions)
        checks: list[dict[int, int]] = [{} for _ in solutions]
        nxt = [1] * len(solutions)  # linear/full: next prefix to check
        while True:
            queries, owners = [], []
            for j, s in enumerate(solutions):
                if self.search == "binary" and hi[j] - lo[j] > 1:
                    queries.append((s, (lo[j] + hi[j]) // 2))
                elif self.search != "binary" and nxt[j] < n[j] and (self.search == "full" or hi[j] == n[j]):
                    queries.append((s, nxt[j]))
                else:
                    continue
                owners.append(j)
            if not queries:
                break
            for j, (s, i), (wins, cost) in zip(owners, queries, self._check(queries)):
                spent[j] += cost
                checks[j][i] = wins
                if self.search == "binary":
                    lo[j], hi[j] = (i, hi[j]) if wins else (lo[j], i)
                else:
                    nxt[j] = i + 1
                    if not wins and hi[j] == n[j]:
                        hi[j] = i
        return [
            LocatedError(s, hi[j], self.name,
                         evidence={"rollouts": spent[j], "m": self.m, "search": self.search,
                                   "successes_after_prefix": {str(i): w for i, w in sorted(checks[j].items())}})
            for j, s in enumerate(solutions)
        ]
