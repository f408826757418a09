"""The embedded default task: multi-step arithmetic word problems with an exact step checker.

Each problem is a running quantity changed by 3 to 6 operations (add, subtract, multiply, exact
divide), told as a short story from one of several templates. The canonical solution does one
operation per step, restating the problem's sentence and computing "x op b = y", and ends with
"The answer is \\boxed{y}.".

The same task has a long-chain form (:func:`generate_chain_problems`, data ``synthetic-long``):
20 lettered operations from 0, the first "+b" (b in 10..60) and the rest one-digit additions and
subtractions, every value in 1..99, one step each that restates the operation and computes it,
"Step 13: (m) -4: 56-4=52.". Every step, the first included, is the same skill (look the
operation up, carry the last result, compute). Its chains are as long as a MATH solution's, too
long for a small model to recompute the running value from the problem text, so the model must
carry forward the values it wrote; and every operation is a bijection, so a wrong value stays
wrong through every later step unless a second error happens to cancel it.

:func:`check_solution` reads any solution a model writes and returns its first wrong step: the
first step whose equation is not the expected operation on the expected running value with the
right result, or that states a final answer that is not the gold one. A solution with no wrong
step and the gold answer has none. This is ground truth for step localization (Sec. 3.2).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from ..records import Problem
from ..steps import split_steps

TASK_NAME = "synthetic"

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
_SOLVER_TEXT = {  # a different solver's terse style, used as out-of-distribution s_win (Table 4)
    "+": "We add {b}: the count is now {x} + {b} = {y}.",
    "-": "We subtract {b}: the count is now {x} - {b} = {y}.",
    "*": "We multiply by {b}: the count is now {x} * {b} = {y}.",
    "/": "We divide by {b}: the count is now {x} / {b} = {y}.",
}


def _apply(op: str, x: int, b: int) -> int:
    return {"+": x + b, "-": x - b, "*": x * b, "/": x // b}[op]


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
            v = _apply(op, v, b)
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


def generate_problems(n: int, seed: int = 0, min_steps: int = 3, max_steps: int = 6, exclude: set[str] | None = None) -> list[Problem]:
    """``n`` distinct problems from ``seed``; texts in ``exclude`` (e.g. a training split) are skipped."""
    return _distinct(lambda rng, pid: make_problem(rng, pid, min_steps, max_steps), n,
                     random.Random(f"stepdpo-arith-{seed}"), f"arith-{seed}", exclude)


def _distinct(make: Any, n: int, rng: random.Random, prefix: str, exclude: set[str] | None) -> list[Problem]:
    """``n`` problems ``make(rng, id)`` with distinct texts, none of them in ``exclude``."""
    seen = set(exclude or ())
    out: list[Problem] = []
    while len(out) < n:
        p = make(rng, f"{prefix}-{len(out)}")
        if p.problem not in seen:
            seen.add(p.problem)
            out.append(p)
    return out


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
        v = _apply(op, v, b)
    return 0, ops


CHAIN_LABELS = "abcdefghijklmnopqrstuvwxyz"  # the long-chain form's operation labels, in order


def make_chain_problem(rng: random.Random, pid: str, min_steps: int = 20, max_steps: int = 20) -> Problem:
    """One problem in the long-chain form: a start value and lettered operations, one per line."""
    if not 1 <= min_steps <= max_steps <= len(CHAIN_LABELS):
        raise ValueError(f"the long-chain form has 1 to {len(CHAIN_LABELS)} steps")
    start, ops = _sample_chain_ops(rng, rng.randint(min_steps, max_steps))
    lines = [f"Start with {start}.", *(f" ({CHAIN_LABELS[i]}) {op}{b}" for i, (op, b) in enumerate(ops)),
             "What is the final number?"]
    meta = {"start": start, "ops": [[op, b] for op, b in ops], "form": "chain"}
    problem = Problem(id=pid, problem="\n".join(lines), answer=str(running_values(meta)[-1]), source=TASK_NAME,
                      meta=meta)
    problem.solution = canonical_solution(problem)
    return problem


def generate_chain_problems(n: int, seed: int = 1, min_steps: int = 20, max_steps: int = 20,
                            exclude: set[str] | None = None) -> list[Problem]:
    """``n`` distinct long-chain problems from ``seed``; texts in ``exclude`` are skipped."""
    return _distinct(lambda rng, pid: make_chain_problem(rng, pid, min_steps, max_steps), n,
                     random.Random(f"chain-{seed}"), f"chain-{seed}", exclude)


def running_values(meta: dict[str, Any]) -> list[int]:
    """The quantity before any operation and after each one."""
    values = [int(meta["start"])]
    for op, b in meta["ops"]:
        values.append(_apply(op, values[-1], int(b)))
    return values


def canonical_step(problem: Problem, k: int, style: str = "sft", values: list[int] | None = None) -> str:
    """The correct step k (1-based) in the SFT data's style or in the solver's (``"solver"``).

    The SFT style restates the problem's sentence for the step, then computes:
    "Step 2: She loses 10 marbles, so 18 - 10 = 8 marbles."
    ``values`` overrides the running values the step computes from and to (see :func:`slipped_solution`).
    """
    meta = problem.meta
    values = values if values is not None else running_values(meta)
    op, b = meta["ops"][k - 1]
    x, y = values[k - 1], values[k]
    if style == "sft" and meta.get("form") == "chain":
        body = f"({CHAIN_LABELS[k - 1]}) {op}{b}: {x}{op}{b}={y}."
    elif style == "sft":
        said = meta["texts"][k - 1].removeprefix("Then ").rstrip(".")
        body = f"{said[0].upper()}{said[1:]}, so {x} {op} {b} = {y} {meta['item']}."
    else:
        body = _SOLVER_TEXT[op].format(x=x, b=b, y=y)
    text = f"Step {k}: {body}\n"
    if k == len(meta["ops"]):
        text += f"The answer is \\boxed{{{values[k]}}}."
    return text


def canonical_solution(problem: Problem, style: str = "sft") -> str:
    """The whole step-by-step solution (without the "Let's think step by step." opener)."""
    return "".join(canonical_step(problem, k, style) for k in range(1, len(problem.meta["ops"]) + 1))


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
        values.append(_apply(op, values[-1], int(b)))
        if values[-1] <= 0:
            return None
    return [canonical_step(problem, i, values=values) for i in range(1, len(ops) + 1)]


SLIP_SIZES = (-3, -2, -1, 1, 2, 3)


def slipped_demonstrations(problems: list[Problem], rate: float, seed: int = 0,
                           sizes: tuple[int, ...] = SLIP_SIZES) -> list[str]:
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


EQUATION = re.compile(r"(-?\d+)\s*([-+*/×÷x])\s*(-?\d+)\s*=\s*(-?\d+)")  # "x op b = y" in a step
_BOXED = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")


@dataclass
class CheckResult:
    """The first wrong step (1-based) or None, and a message saying what is wrong there."""

    first_error_step: int | None
    message: str


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
    if not ok:
        return f"expected {x} {op} {b} = {y}"
    boxed = _BOXED.findall(step)
    if boxed and (k < len(ops) or int(boxed[-1]) != answer):
        return f"states the final answer {boxed[-1]} too early" if k < len(ops) else f"final answer {boxed[-1]} is not {answer}"
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
        return CheckResult(max(len(steps), 1), "stops before the last operation")
    if not _BOXED.search(steps[-1]):
        return CheckResult(len(steps), "no final answer")
    return CheckResult(None, "all steps correct")
