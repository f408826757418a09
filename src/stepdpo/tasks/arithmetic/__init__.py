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

from stepdpo.tasks.arithmetic.chain import generate_chain_problems, make_chain_problem
from stepdpo.tasks.arithmetic.checker import EQUATION, CheckResult, check_solution
from stepdpo.tasks.arithmetic.common import (
    CHAIN_LABELS,
    TASK_NAME,
    apply_op,
    canonical_solution,
    canonical_step,
    distinct_problems,
    running_values,
)
from stepdpo.tasks.arithmetic.slips import (
    SLIP_SIZES,
    labelled_solutions,
    slipped_demonstrations,
    slipped_solution,
)
from stepdpo.tasks.arithmetic.stories import generate_problems, generate_short_problems, make_problem

__all__ = [
    "CHAIN_LABELS",
    "EQUATION",
    "SLIP_SIZES",
    "TASK_NAME",
    "CheckResult",
    "apply_op",
    "canonical_solution",
    "canonical_step",
    "check_solution",
    "distinct_problems",
    "generate_chain_problems",
    "generate_problems",
    "generate_short_problems",
    "make_chain_problem",
    "make_problem",
    "running_values",
    "labelled_solutions",
    "slipped_demonstrations",
    "slipped_solution",
]
