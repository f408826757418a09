"""The exact step checker: reads any solution a model writes and returns its first wrong step.

The first wrong step is the first step whose equation is not the expected operation on the
expected running value with the right result, or that states a final answer that is not the gold
one. A solution with no wrong step and the gold answer has none. This is ground truth for step
localization (Sec. 3.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stepdpo.records import Problem
from stepdpo.tasks.arithmetic.common import running_values
from stepdpo.text.steps import split_steps

EQUATION = re.compile(r"(-?\d+)\s*([-+*/×÷x])\s*(-?\d+)\s*=\s*(-?\d+)")  # "x op b = y" in a step
_BOXED = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")
INCOMPLETE = "stops before the last operation"
"""The message of a solution whose every step is right but that ends before the last operation."""


@dataclass
class CheckResult:
    """The first wrong step (1-based) or None, and a message saying what is wrong there."""

    first_error_step: int | None
    message: str


def _false(a: int, sym: str, b: int, res: int) -> bool:
    """Whether ``a sym b = res`` is a false statement (division: not an exact quotient)."""
    if sym == "/":
        return b == 0 or a != b * res
    return {"+": a + b, "-": a - b, "*": a * b}[sym] != res


def _check_step(step: str, k: int, values: list[int], ops: list, answer: int) -> str | None:
    """What is wrong with step k, or None if it is right."""
    if k > len(ops):
        return "extra step after the last operation"
    op, b = ops[k - 1][0], int(ops[k - 1][1])
    x, y = values[k - 1], values[k]
    eqs = EQUATION.findall(step)
    if not eqs:
        return "no equation"
    ok = False
    for a1, sym, a2, res in eqs:
        sym = {"×": "*", "x": "*", "÷": "/"}.get(sym, sym)
        a1, a2, res = int(a1), int(a2), int(res)
        operands_ok = (a1, a2) == (x, b) or (op in "+*" and (a1, a2) == (b, x))
        if sym == op and operands_ok and res == y:
            ok = True
        elif sym == op and operands_ok:
            return f"arithmetic: {a1} {sym} {a2} is {y}, not {res}"
        elif _false(a1, sym, a2, res):
            # any other claim in the step must hold too: a right equation does not excuse a wrong one
            return f"arithmetic: {a1} {sym} {a2} is not {res}"
    if not ok:
        return f"expected {x} {op} {b} = {y}"
    boxed = _BOXED.findall(step)
    if boxed and (k < len(ops) or int(boxed[-1]) != answer):
        return (
            f"states the final answer {boxed[-1]} too early"
            if k < len(ops)
            else f"final answer {boxed[-1]} is not {answer}"
        )
    return None


def check_solution(problem: Problem, completion: str, partial: bool = False) -> CheckResult:
    """Exact step check of ``completion`` (a solution in "Step i:" form) for a synthetic problem.

    With ``partial`` the text is a solution so far: only the written steps are checked, and
    stopping before the end is not an error.
    """
    values, ops = running_values(problem.meta), problem.meta["ops"]
    answer = values[-1]
    _, steps = split_steps(completion)
    for k, step in enumerate(steps, 1):
        why = _check_step(step, k, values, ops, answer)
        if why is not None:
            return CheckResult(k, why)
    if partial:
        return CheckResult(None, "written steps correct")
    if len(steps) < len(ops):
        # every written step is right but the solution stops early: its last step is the error
        return CheckResult(max(len(steps), 1), INCOMPLETE)
    if not _BOXED.search(steps[-1]):
        return CheckResult(len(steps), "no final answer")
    return CheckResult(None, "all steps correct")
