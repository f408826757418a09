"""Solutions with one misstated step (a slip) that compute on from the written value: probes of how
a model reads its own text, and imperfect demonstrations for SFT."""

from __future__ import annotations

import random

from stepdpo.records import Problem
from stepdpo.tasks.arithmetic.common import (
    apply_op,
    canonical_solution,
    canonical_step,
    running_values,
)


def slipped_solution(problem: Problem, k: int, slip: int) -> list[str] | None:
    """Steps of a solution whose step k misstates its result by ``slip`` and whose later steps
    compute on from the wrong value as written (so its final answer is wrong), or None where a
    later value would not be a positive integer (an inexact division).

    This is how a faithful reader of its own text propagates an error: the next step reads the
    value written, not the one it should have been. Probing a model with such prefixes shows
    whether it carries written values forward or recomputes them from the problem.
    """
    ops = problem.meta["ops"]
    if not 1 <= k <= len(ops) or slip == 0:
        raise ValueError(f"need 1 <= k <= {len(ops)} and a non-zero slip")
    values = running_values(problem.meta)[: k + 1]
    values[k] += slip
    if values[k] <= 0:
        return None
    for op, b in ops[k:]:
        if op == "/" and values[-1] % int(b):
            return None
        values.append(apply_op(op, values[-1], int(b)))
        if values[-1] <= 0:
            return None
    return [canonical_step(problem, i, values=values) for i in range(1, len(ops) + 1)]


SLIP_SIZES = (-3, -2, -1, 1, 2, 3)


def slipped_demonstrations(
    problems: list[Problem], rate: float, seed: int = 0, sizes: tuple[int, ...] = SLIP_SIZES
) -> list[str]:
    """Reference solutions for SFT in which a fraction ``rate`` carry one slip.

    Each chosen solution misstates the result of one step, picked uniformly along the chain, by a
    size from ``sizes``, and computes on from the written value (:func:`slipped_solution`), as
    imperfect human or model-written demonstrations do. A model fine-tuned on them keeps the
    correct step as its most likely one (greedy decoding is unaffected) but, sampled, slips now and
    then at any step of the chain: errors of the kind Step-DPO's localization (Sec. 3.2) has to
    find wherever they are, not one hard step.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError("the slip rate is a fraction in [0, 1]")
    rng = random.Random(f"slips-{seed}")
    texts = []
    for problem in problems:
        text = problem.solution or canonical_solution(problem)
        if rng.random() < rate:
            for _ in range(20):  # a slip that would make a value non-positive is redrawn
                steps = slipped_solution(problem, rng.randint(1, len(problem.meta["ops"])), rng.choice(sizes))
                if steps is not None:
                    text = "".join(steps)
                    break
        texts.append(text)
    return texts


def labelled_solutions(
    problems: list[Problem], seed: int = 0, correct_fraction: float = 1 / 3, sizes: tuple[int, ...] = SLIP_SIZES
) -> list[tuple[list[str], int]]:
    """For each problem, a solution's steps and the 0-based index of its first wrong step (-1: all
    right), as ProcessBench labels them: a fraction ``correct_fraction`` are the canonical solution,
    the rest slip at a step picked uniformly along the chain (:func:`slipped_solution`)."""
    rng = random.Random(f"labelled-{seed}")
    out = []
    for problem in problems:
        n = len(problem.meta["ops"])
        steps, label = [canonical_step(problem, i) for i in range(1, n + 1)], -1
        if rng.random() >= correct_fraction:
            for _ in range(20):  # a slip that would make a value non-positive is redrawn
                k = rng.randint(1, n)
                slipped = slipped_solution(problem, k, rng.choice(sizes))
                if slipped is not None:
                    steps, label = slipped, k - 1
                    break
        out.append((steps, label))
    return out
