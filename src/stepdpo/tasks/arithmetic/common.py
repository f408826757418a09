"""What both forms of the arithmetic task share: applying an operation, the running values, and the
canonical step and solution (in the SFT data's style, or a terse solver's style).

A problem's ``meta`` holds its start value and operations (``ops``); ``form: chain`` marks the
long-chain form.
"""

from __future__ import annotations

import random
from typing import Any

from stepdpo.records import Problem

TASK_NAME = "synthetic"
"""The ``source`` of every problem of the task, in either form."""

CHAIN_LABELS = "abcdefghijklmnopqrstuvwxyz"  # the long-chain form's operation labels, in order

_SOLVER_TEXT = {  # a different solver's terse style, used as out-of-distribution s_win (Table 4)
    "+": "We add {b}: the count is now {x} + {b} = {y}.",
    "-": "We subtract {b}: the count is now {x} - {b} = {y}.",
    "*": "We multiply by {b}: the count is now {x} * {b} = {y}.",
    "/": "We divide by {b}: the count is now {x} / {b} = {y}.",
}


def apply_op(op: str, x: int, b: int) -> int:
    return {"+": x + b, "-": x - b, "*": x * b, "/": x // b}[op]


def distinct_problems(make: Any, n: int, rng: random.Random, prefix: str, exclude: set[str] | None) -> list[Problem]:
    """``n`` problems ``make(rng, id)`` with distinct texts, none of them in ``exclude``."""
    seen = set(exclude or ())
    out: list[Problem] = []
    while len(out) < n:
        p = make(rng, f"{prefix}-{len(out)}")
        if p.problem not in seen:
            seen.add(p.problem)
            out.append(p)
    return out


def running_values(meta: dict[str, Any]) -> list[int]:
    """The quantity before any operation and after each one."""
    values = [int(meta["start"])]
    for op, b in meta["ops"]:
        values.append(apply_op(op, values[-1], int(b)))
    return values


STYLES = ("sft", "paraphrase", "solver")
"""Voices of a correct step: the SFT data's; another writer's, the same sentence reworded
(``paraphrase``, the natural out-of-distribution s_win of Table 4); a terse solver's template
(``solver``)."""


def canonical_step(problem: Problem, k: int, style: str = "sft", values: list[int] | None = None) -> str:
    """The correct step k (1-based) in one of :data:`STYLES`.

    The SFT style restates the problem's sentence for the step, then computes:
    "Step 2: She loses 10 marbles, so 18 - 10 = 8 marbles."; the paraphrase rewords it: "Step 2:
    She loses 10 marbles, so now there are 18 - 10 = 8 marbles." (long-chain form: "(m) -4:
    56-4=52." and "(m) is -4, so 56-4=52.").
    ``values`` overrides the running values the step computes from and to (see :func:`slipped_solution`).
    """
    meta = problem.meta
    values = values if values is not None else running_values(meta)
    op, b = meta["ops"][k - 1]
    x, y = values[k - 1], values[k]
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    said = "" if meta.get("form") == "chain" else meta["texts"][k - 1].removeprefix("Then ").rstrip(".")
    said = said[:1].upper() + said[1:]
    if style == "sft" and meta.get("form") == "chain":
        body = f"({CHAIN_LABELS[k - 1]}) {op}{b}: {x}{op}{b}={y}."
    elif style == "paraphrase" and meta.get("form") == "chain":
        body = f"({CHAIN_LABELS[k - 1]}) is {op}{b}, so {x}{op}{b}={y}."
    elif style == "sft":
        body = f"{said}, so {x} {op} {b} = {y} {meta['item']}."
    elif style == "paraphrase":
        body = f"{said}, so now there are {x} {op} {b} = {y} {meta['item']}."
    else:
        body = _SOLVER_TEXT[op].format(x=x, b=b, y=y)
    text = f"Step {k}: {body}\n"
    if k == len(meta["ops"]):
        text += f"The answer is \\boxed{{{values[k]}}}."
    return text


def canonical_solution(problem: Problem, style: str = "sft") -> str:
    """The whole step-by-step solution (without the "Let's think step by step." opener)."""
    return "".join(canonical_step(problem, k, style) for k in range(1, len(problem.meta["ops"]) + 1))
