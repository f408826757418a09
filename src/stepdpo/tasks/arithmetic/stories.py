"""The short-story form of the arithmetic task (``--data synthetic``): a running quantity changed by
3 to 6 operations (add, subtract, multiply, exact divide), told as a short story from one of
several templates. The canonical solution does one operation per step, restating the problem's
sentence and computing "x op b = y", and ends with "The answer is \\boxed{y}."."""

from __future__ import annotations

import random

from stepdpo.records import Problem
from stepdpo.tasks.arithmetic.common import (
    TASK_NAME,
    apply_op,
    canonical_solution,
    distinct_problems,
    running_values,
)

_THEMES = [
    # (subject, pronoun, item, start phrase)
    ("Mia", "she", "marbles", "{name} has {v} {item}."),
    ("Omar", "he", "apples", "{name} picks {v} {item}."),
    ("A baker", "she", "cookies", "{name} bakes {v} {item}."),
    ("A library", "it", "books", "{name} owns {v} {item}."),
    ("Leo", "he", "stickers", "{name} collects {v} {item}."),
    ("A farm", "it", "eggs", "{name} gathers {v} {item}."),
]
_OPS = {
    "+": ["Then {p} gets {b} more {item}.", "Then {p} finds {b} more {item}.", "Then {p} receives {b} more {item}."],
    "-": ["Then {p} gives away {b} {item}.", "Then {p} loses {b} {item}.", "Then {p} sells {b} {item}."],
    "*": ["Then the number of {item} becomes {b} times as large.", "Then {p} ends up with {b} times as many {item}."],
    "/": ["Then {p} splits the {item} into {b} equal groups and keeps one group."],
}


def _sample_ops(rng: random.Random, n_ops: int) -> tuple[int, list[tuple[str, int]]]:
    """A start value and ``n_ops`` operations keeping every value a positive integer below 200."""
    while True:
        v = rng.randint(5, 40)
        start, ops = v, []
        for _ in range(n_ops):
            choices = ["+", "-"] + (["*"] if v <= 30 else []) + (["/"] if any(v % d == 0 for d in range(2, 6)) else [])
            op = rng.choice(choices)
            if op == "+":
                b = rng.randint(2, 30)
            elif op == "-":
                if v < 3:
                    break
                b = rng.randint(1, min(v - 1, 30))
            elif op == "*":
                b = rng.randint(2, 4)
            else:
                b = rng.choice([d for d in range(2, 6) if v % d == 0])
            ops.append((op, b))
            v = apply_op(op, v, b)
        if len(ops) == n_ops and 0 < v < 200:
            return start, ops


def make_problem(rng: random.Random, pid: str, min_steps: int = 3, max_steps: int = 6) -> Problem:
    """One random problem with its gold answer, canonical solution and the operations in ``meta``."""
    name, pronoun, item, opener = rng.choice(_THEMES)
    start, ops = _sample_ops(rng, rng.randint(min_steps, max_steps))
    op_texts = [rng.choice(_OPS[op]).format(p=pronoun, b=b, item=item) for op, b in ops]
    sentences = [opener.format(name=name, v=start, item=item), *op_texts, f"How many {item} are there at the end?"]
    meta = {"start": start, "ops": [[op, b] for op, b in ops], "item": item, "texts": op_texts}
    values = running_values(meta)
    problem = Problem(id=pid, problem=" ".join(sentences), answer=str(values[-1]), source=TASK_NAME, meta=meta)
    problem.solution = canonical_solution(problem)
    return problem


def generate_problems(
    n: int, seed: int = 0, min_steps: int = 3, max_steps: int = 6, exclude: set[str] | None = None
) -> list[Problem]:
    """``n`` distinct problems from ``seed``; texts in ``exclude`` (e.g. a training split) are skipped."""
    return distinct_problems(
        lambda rng, pid: make_problem(rng, pid, min_steps, max_steps),
        n,
        random.Random(f"stepdpo-arith-{seed}"),
        f"arith-{seed}",
        exclude,
    )


def generate_short_problems(n: int, seed: int = 0, exclude: set[str] | None = None) -> list[Problem]:
    """The short form (``--data synthetic-short``): the same stories with 1 to 3 operations, the
    lengths a 135M-parameter pretrained model gets right often enough after a short SFT
    (docs/real-model.md)."""
    return generate_problems(n, seed=seed, min_steps=1, max_steps=3, exclude=exclude)
