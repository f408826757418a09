"""Small data builders shared by tests."""

import random

from stepdpo.records import StepPair
from stepdpo.tasks.arithmetic import canonical_step, generate_problems
from stepdpo.text.steps import COT_TRIGGER


def toy_pairs(n: int, seed: int = 0) -> list[StepPair]:
    """Step pairs from synthetic problems: the canonical step k against a corrupted one."""
    rng = random.Random(seed)
    out = []
    for p in generate_problems(n, seed=100 + seed):
        k = rng.randint(1, len(p.meta["ops"]))
        prior = "".join(canonical_step(p, i) for i in range(1, k))
        chosen = canonical_step(p, k)
        rejected = chosen.replace(" = ", f" = {rng.randint(1, 9)}", 1)
        out.append(
            StepPair(
                prompt=p.problem,
                initial_reason_steps=COT_TRIGGER + prior,
                chosen=chosen,
                rejected=rejected,
                answer=p.answer,
                dataset="synthetic",
            )
        )
    return out
