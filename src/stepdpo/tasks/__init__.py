"""The registry of tasks: problems with an exact step checker, looked up by name.

A :class:`Task` bundles what the generic stages need from a task without naming it: a generator
of problems (with training and held-out seeds), and a step checker that returns the first wrong
step of any solution written for one of its problems. Problems carry their task in ``source``
(solutions in ``dataset``), so :func:`step_checker` finds the checker for a record, and the
``verifier`` judge, the s_win recheck of ``build`` and the step statistics of ``eval`` work for any
registered task. Register your own with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stepdpo.records import Problem
from stepdpo.tasks import arithmetic
from stepdpo.tasks.arithmetic.checker import INCOMPLETE

StepCheck = Callable[[Problem, str, bool], "tuple[int | None, str]"]
"""``check(problem, text, partial) -> (first wrong step or None, message)``; with ``partial`` the
text is a solution so far, and stopping early is not an error. Without ``partial``, a text whose
every step is right but that stops early gets the message :data:`INCOMPLETE`."""
__all__ = ["INCOMPLETE", "StepCheck", "Task", "get_task", "register", "step_checker"]


@dataclass(frozen=True)
class Task:
    """A task: its name (the ``--data`` spec), the ``source`` its problems carry, a problem
    generator ``generate(n, seed=..., exclude=...)``, the seeds of its training and held-out
    problems, how many training problems the held-out split is kept apart from, and its step
    checker with the ``meta`` fields the checker needs."""

    name: str
    source: str
    generate: Callable[..., list[Problem]]
    check: StepCheck
    train_seed: int
    heldout_seed: int
    train_size: int
    needs_meta: tuple[str, ...] = ()
    label: Callable[..., list[tuple[list[str], int]]] | None = None

    def problems(self, split: str, n: int, seed: int | None = None) -> list[Problem]:
        """``n`` problems of ``split`` (``train`` or ``test``); the test split never holds one of
        the first ``train_size`` training problems."""
        if split == "train":
            return self.generate(n, seed=self.train_seed if seed is None else seed)
        train_texts = {p.problem for p in self.generate(self.train_size, seed=self.train_seed)}
        return self.generate(n, seed=self.heldout_seed if seed is None else seed, exclude=train_texts)

    def labelled_cases(self, n: int, seed: int = 0) -> list[tuple[Problem, list[str], int]]:
        """``n`` held-out problems, each with a solution's steps and the 0-based index of its first
        wrong step (-1: every step right): labelled cases for measuring judges."""
        if self.label is None:
            raise ValueError(f"task {self.name!r} has no generator of labelled cases")
        problems = self.problems("test", n, seed=None if seed == 0 else self.heldout_seed + seed)
        return [(p, steps, label) for p, (steps, label) in zip(problems, self.label(problems, seed=seed))]

    def can_check(self, meta: dict[str, Any]) -> bool:
        return all(k in meta for k in self.needs_meta)


def _arithmetic_check(problem: Problem, text: str, partial: bool = False) -> tuple[int | None, str]:
    r = arithmetic.check_solution(problem, text, partial=partial)
    return r.first_error_step, r.message


TASKS: dict[str, Task] = {}
DEFAULT_TASK = "synthetic"
"""The problems every command uses when none are named: the embedded task, offline."""


def register(task: Task) -> Task:
    """Add a task to the registry (its name must be new)."""
    if task.name in TASKS:
        raise ValueError(f"a task named {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task registered under ``name``."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; registered: {', '.join(sorted(TASKS))}") from None


def step_checker(source: str, meta: dict[str, Any]) -> StepCheck | None:
    """The step checker for a problem of ``source`` with this ``meta``, or None if no registered
    task can check it (another data set, or a record without the fields its checker needs)."""
    for task in TASKS.values():
        if task.source == source and task.can_check(meta):
            return task.check
    return None


register(
    Task(
        "synthetic",
        arithmetic.TASK_NAME,
        arithmetic.generate_problems,
        _arithmetic_check,
        train_seed=1000,
        heldout_seed=2000,
        train_size=6000,
        needs_meta=("start", "ops"),
        label=arithmetic.labelled_solutions,
    )
)
register(
    Task(
        "synthetic-long",
        arithmetic.TASK_NAME,
        arithmetic.generate_chain_problems,
        _arithmetic_check,
        train_seed=1,
        heldout_seed=2,
        train_size=8000,
        needs_meta=("start", "ops"),
        label=arithmetic.labelled_solutions,
    )
)
register(
    Task(
        "synthetic-short",
        arithmetic.TASK_NAME,
        arithmetic.generate_short_problems,
        _arithmetic_check,
        train_seed=11,
        heldout_seed=12,
        train_size=6000,
        needs_meta=("start", "ops"),
        label=arithmetic.labelled_solutions,
    )
)
