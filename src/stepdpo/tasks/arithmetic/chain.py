"""The long-chain form of the arithmetic task (``--data synthetic-long``): 20 lettered operations
from 0, the first "+b" (b in 10..60) and the rest one-digit additions and subtractions, every
value in 1..99, one step each that restates the operation and computes it,
"Step 13: (m) -4: 56-4=52.". Every step, the first included, is the same skill (look the
operation up, carry the last result, compute). Its chains are as long as a MATH solution's, too
long for a small model to recompute the running value from the problem text, so the model must
carry forward the values it wrote; and every operation is a bijection, so a wrong value stays
wrong through every later step unless a second error happens to cancel it."""

from __future__ import annotations

import random

from stepdpo.records import Problem
from stepdpo.tasks.arithmetic.common import (
    CHAIN_LABELS,
    TASK_NAME,
    apply_op,
    canonical_solution,
    distinct_problems,
    running_values,
)


def _sample_chain_ops(rng: random.Random, n_ops: int) -> tuple[int, list[tuple[str, int]]]:
    """``n_ops`` operations from 0: first "+b" with b in 10..60, then one-digit additions and
    subtractions, every value in 1..99. Every operation is a bijection: a wrong value stays wrong
    through every later operation unless a second error happens to cancel it."""
    v, ops = 0, []
    for k in range(n_ops):
        if k == 0:
            op, b = "+", rng.randint(10, 60)
        else:
            op = rng.choice("+-")
            if op == "+" and v > 90:
                op = "-"
            if op == "-" and v < 10:
                op = "+"
            b = rng.randint(2, 9) if op == "+" else rng.randint(1, 9)
        ops.append((op, b))
        v = apply_op(op, v, b)
    return 0, ops


def make_chain_problem(rng: random.Random, pid: str, min_steps: int = 20, max_steps: int = 20) -> Problem:
    """One problem in the long-chain form: a start value and lettered operations, one per line."""
    if not 1 <= min_steps <= max_steps <= len(CHAIN_LABELS):
        raise ValueError(f"the long-chain form has 1 to {len(CHAIN_LABELS)} steps")
    start, ops = _sample_chain_ops(rng, rng.randint(min_steps, max_steps))
    lines = [
        f"Start with {start}.",
        *(f" ({CHAIN_LABELS[i]}) {op}{b}" for i, (op, b) in enumerate(ops)),
        "What is the final number?",
    ]
    meta = {"start": start, "ops": [[op, b] for op, b in ops], "form": "chain"}
    problem = Problem(
        id=pid, problem="\n".join(lines), answer=str(running_values(meta)[-1]), source=TASK_NAME, meta=meta
    )
    problem.solution = canonical_solution(problem)
    return problem


def generate_chain_problems(
    n: int, seed: int = 1, min_steps: int = 20, max_steps: int = 20, exclude: set[str] | None = None
) -> list[Problem]:
    """``n`` distinct long-chain problems from ``seed``; texts in ``exclude`` are skipped."""
    return distinct_problems(
        lambda rng, pid: make_chain_problem(rng, pid, min_steps, max_steps),
        n,
        random.Random(f"chain-{seed}"),
        f"chain-{seed}",
        exclude,
    )
