"""Building the preference data D (Sec. 3.2): step pairs (eq. 2) or whole-solution DPO pairs.

From each rectification: x and s1..s(k-1) as ``prompt`` and ``initial_reason_steps``, a
model-written correct step as ``chosen`` (s_win), the located wrong step as ``rejected`` (s_lose).
Empty steps and ``chosen == rejected`` are dropped, duplicates removed, and pairs capped per error
and per problem (the prefix x, s1..s(k-1) the unit of the problem cap). With ``max_per_error`` above
1 an error gives a pair for each of its distinct s_win and, from rectification under the step
rule, its extra s_lose (each a wrong step k the model sampled after the same prefix). ``recheck`` re-checks each chosen step with the task's exact checker: a right
final answer can be reached through a wrong step, which the paper filters out. ``pair_format="dpo"``
writes whole-solution pairs from the same data: the model's continuation after s1..s(k-1) against
the whole wrong solution, whose shared prefix cancels in eq. 1. ``pair_format="holistic"`` is the
holistic preference the paper argues against (Sec. 3.1): from sampled solutions (``collect
--keep-correct``), a correct whole solution of a problem against a wrong whole solution of the
same problem (:func:`holistic_pairs`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from stepdpo.options import option
from stepdpo.records import Problem, Rectification, Solution, StepPair
from stepdpo.tasks import step_checker
from stepdpo.text.steps import COT_TRIGGER, prior_text, step_body


@dataclass
class BuildConfig:
    """Options of building the pairs."""

    pair_format: str = option(
        "step",
        "step: Step-DPO pairs; dpo: whole-solution pairs sharing the prefix s1..s(k-1); holistic: a "
        "correct against a wrong whole solution of the same problem (reads solutions from 'collect --keep-correct').",
        choices=("step", "dpo", "holistic"),
    )
    max_per_error: int = option(1, "Pairs kept per located error (one per distinct chosen step).", min=1)
    max_per_problem: int = option(4, "Pairs kept per problem.", min=1)
    recheck: bool = option(
        False,
        "Check every chosen solution with the task's exact checker, the same filter for every pair format: a "
        "chosen s_win whose continuation has a wrong step, or a correct-answer solution with a wrong step, is "
        "not a correct solution (the paper's s_win filter, applied alike to the whole-solution baselines).",
    )


def _solution_is_right(sol: Solution, text: str) -> bool | None:
    """The task's step checker's verdict on the whole solution ``text`` of ``sol``'s problem: True
    when no step is wrong (None: the task has no checker)."""
    check = step_checker(sol.dataset, sol.meta)
    if check is None:
        return None
    problem = Problem(id=sol.problem_id, problem=sol.problem, answer=sol.answer, meta=sol.meta)
    found, _ = check(problem, text, False)
    return found is None


def holistic_pairs(solutions: list[Solution], cfg: BuildConfig) -> tuple[list[StepPair], Counter]:
    """Holistic DPO pairs: for each problem, its i-th wrong solution against one of its correct
    solutions (taken in turn), up to ``max_per_problem``; problems without both are counted. With
    ``recheck``, a correct-answer solution with a wrong step is no correct solution."""
    by_problem: dict[str, tuple[list[Solution], list[Solution]]] = defaultdict(lambda: ([], []))
    dropped: Counter = Counter()
    for sol in solutions:
        if sol.correct and cfg.recheck and _solution_is_right(sol, sol.completion) is False:
            dropped["chosen_fails_recheck"] += 1  # the right answer reached through a wrong step
            continue
        by_problem[sol.problem_id][0 if sol.correct else 1].append(sol)
    pairs: list[StepPair] = []
    for right, wrong in by_problem.values():
        if not right or not wrong:
            dropped["no_correct_solution" if not right else "no_wrong_solution"] += len(right) + len(wrong)
            continue
        for i, bad in enumerate(wrong[: cfg.max_per_problem]):
            good = right[i % len(right)]
            pairs.append(
                StepPair(
                    prompt=good.problem,
                    initial_reason_steps="",
                    chosen=good.completion,
                    rejected=bad.completion,
                    answer=good.answer,
                    dataset=good.dataset,
                    meta={"pair_kind": "holistic", "chosen_id": good.id, "rejected_id": bad.id},
                )
            )
        dropped["over_max_per_problem"] += max(0, len(wrong) - cfg.max_per_problem)
    return pairs, dropped


def _combinations(n_wins: int, n_losers: int, limit: int) -> list[tuple[int, int]]:
    """Up to ``limit`` distinct (s_win, s_lose) index pairs of one error: the located s_lose
    (index 0) with the first s_win, then growing rings, each s_win with the located s_lose first."""
    every = [(w, lo) for w in range(n_wins) for lo in range(n_losers)]
    return sorted(every, key=lambda t: (max(t), t[1], t[0]))[:limit]


def build_pairs(rects: list[Rectification], cfg: BuildConfig) -> tuple[list[StepPair], Counter]:
    """Pairs from rectifications, and the counts of dropped candidates by reason.

    The prefix (x, s1..s(k-1)) is the unit of ``max_per_problem``: the pairs of one error share it
    and count once. Each pair's ``meta`` names the rule that accepted its s_win (``rule``) and its
    error (``error_id``), so pairs can be grouped by prefix."""
    if cfg.pair_format not in ("step", "dpo"):
        raise ValueError(f"unknown pair format {cfg.pair_format!r}; use step or dpo")
    dropped: Counter = Counter()
    per_problem: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    pairs: list[StepPair] = []
    for rect in rects:
        err, sol = rect.error, rect.error.solution
        if err.rejected_step is None or not step_body(err.rejected_step):
            dropped["empty_rejected"] += len(rect.candidates)
            continue
        if per_problem[sol.problem_id] >= cfg.max_per_problem:
            dropped["cap_per_problem"] += len(rect.candidates)
            continue
        if cfg.pair_format == "dpo" and rect.rule == "step":
            dropped["no_whole_solution"] += len(rect.candidates)  # the step rule samples step k alone
            continue
        prior = prior_text(err.prior_steps)
        wins = []  # (candidate, its whole solution) that pass the filters
        for cand in rect.candidates:
            if not step_body(cand["step"]):
                dropped["empty_chosen"] += 1
                continue
            if step_body(cand["step"]) == step_body(err.rejected_step):
                dropped["chosen_equals_rejected"] += 1
                continue
            full_chosen = cand["continuation"]
            full_chosen = prior + full_chosen if not full_chosen.startswith(prior) else full_chosen
            # the step rule's checker has passed s_win already, and there is no step after it
            if cfg.recheck and rect.rule == "answer" and _solution_is_right(sol, full_chosen) is False:
                dropped["chosen_fails_recheck"] += 1  # s_win, or a step after it, is wrong
                continue
            wins.append((cand["step"], full_chosen))
        # whole-solution pairs take the located wrong solution only; step pairs also the extra s_lose
        losers = [err.rejected_step] + (
            [r["step"] for r in rect.rejected_candidates] if cfg.pair_format == "step" else []
        )
        combos = _combinations(len(wins), len(losers), cfg.max_per_error)
        dropped["cap_per_error"] += max(0, len(wins) - len({w for w, _ in combos}))
        kept = 0
        for w, lo in combos:
            (chosen, full_chosen), rejected = wins[w], losers[lo]
            full_rejected = sol.completion if lo == 0 else prior + rejected
            meta = {"problem_id": sol.problem_id, "error_id": err.id, "rule": rect.rule}
            if cfg.pair_format == "step":
                pair = StepPair(
                    prompt=sol.problem,
                    initial_reason_steps=COT_TRIGGER + prior,
                    chosen=chosen,
                    rejected=rejected,
                    full_chosen=COT_TRIGGER + full_chosen,
                    full_rejected=COT_TRIGGER + full_rejected,
                    answer=sol.answer,
                    dataset=sol.dataset,
                    meta={"format": "step", "first_error_step": err.first_error_step, "judge": err.judge, **meta},
                )
            else:
                if full_chosen.strip() == full_rejected.strip():
                    dropped["chosen_equals_rejected"] += 1
                    continue
                pair = StepPair(
                    prompt=sol.problem,
                    initial_reason_steps=COT_TRIGGER,
                    chosen=full_chosen,
                    rejected=full_rejected,
                    answer=sol.answer,
                    dataset=sol.dataset,
                    meta={"format": "dpo", **meta},
                )
            if pair.id in seen:
                dropped["duplicate"] += 1
                continue
            seen.add(pair.id)
            pairs.append(pair)
            kept += 1
        if kept:
            per_problem[sol.problem_id] += 1
    return pairs, dropped
