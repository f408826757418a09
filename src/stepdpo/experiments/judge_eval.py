"""``stepdpo eval-judge``: a localization judge measured on labelled solutions, as ProcessBench
measures process critics.

Each case is a solution with the 0-based index of its earliest wrong step (``label``; -1 when
every step is right). The judge runs on every case through the ``locate`` stage (so a long run
resumes), and its answer is read as a prediction: the step it located, -1 when it found no wrong
step (:data:`~stepdpo.records.NO_WRONG_STEP`), or an abstention. How each judge says "no wrong
step": the ``verifier`` when the task's checker finds every step right; the ``llm`` judge when no
step gets the verdict "incorrect"; the ``rollout`` judge when the solution reaches the gold
answer (an error the solution recovers from is invisible to rollouts).

Metrics (ProcessBench's): ``acc_erroneous``, the share of erroneous cases whose earliest wrong step
is predicted exactly; ``acc_correct``, the share of all-correct cases predicted -1; ``f1``, their
harmonic mean. Besides: where a wrong prediction falls (too early, too late, "no wrong step",
abstained), false alarms on correct cases, and the cost per case (rollouts, generated tokens,
judge calls). Cases come from a file (ProcessBench's format, TRL's stepwise format, or located
errors from a trusted judge such as the exact checker or a person's review) or are generated
from an embedded task (``synthetic``, ``synthetic-long``: canonical solutions and solutions with
one slipped step, labelled by construction).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stepdpo.exchange import Case, case_from_row, case_to_located, detect_format, read_rows
from stepdpo.options import option
from stepdpo.pipeline.run import ModelOptions
from stepdpo.progress import log
from stepdpo.recordio import DataError, atomic_write_text, read_records, write_records
from stepdpo.records import NO_WRONG_STEP, LocatedError, RecordError, content_id
from stepdpo.stages.locate import LocateConfig, judge_from_config
from stepdpo.text.grading import grade
from stepdpo.text.steps import strip_marker


@dataclass
class EvalJudgeConfig(LocateConfig, ModelOptions):
    """Options of ``stepdpo eval-judge`` (and the judge's, as for ``locate``)."""

    judge: str = option(
        "verifier",
        "verifier (the task's exact checker), rollout (Monte-Carlo rollouts) or llm (an OpenAI-compatible chat model).",
        choices=("verifier", "rollout", "llm"),
    )

    data: str = option(
        "synthetic",
        "Labelled cases: synthetic or synthetic-long (generated), or a file in ProcessBench's format, "
        "TRL's stepwise format, or located errors from a trusted judge.",
    )
    limit: int | None = option(
        None, "The first N cases of a file (default: all), or N generated cases (default 200).", min=1
    )
    judgements: str | None = option(
        None, "Measure a file of located errors (a judge's output, matched by solution id) instead of running --judge."
    )
    out: str = option("runs/eval-judge", "Output folder: cases.jsonl, summary.json, confusion.png.")


def load_cases(spec: str, limit: int | None, seed: int = 0) -> list[Case]:
    """Labelled cases from a generated task or a file (any label format, detected per file)."""
    from stepdpo.tasks import TASKS

    if spec in TASKS:
        out = []
        for p, steps, label in TASKS[spec].labelled_cases(limit or 200, seed):
            extra = {"dataset": p.source, "meta": p.meta}
            out.append(Case(f"{p.id}-case", p.problem, steps, label, label < 0, p.answer, extra, marked=True))
        return out
    cases, fmt, seen = [], None, {}
    for line, row in read_rows(spec):
        try:
            fmt = fmt or detect_format(row)
            case = case_from_row(row, fmt)
        except RecordError as e:
            raise DataError(spec, line, str(e), e.reason) from None
        if case is None:
            continue
        if case.id in seen:
            raise DataError(spec, line, f"case id {case.id!r} repeats line {seen[case.id]}'s", "duplicate_id")
        seen[case.id] = line
        cases.append(case)
        if limit and len(cases) >= limit:
            break
    if not cases:
        raise DataError(spec, None, "no labelled cases", "empty")
    return cases


def steps_key(steps: list[str]) -> str:
    """The content of a solution's steps, markers and surrounding space aside: a judgement is about
    a case only if it judged the same steps."""
    return content_id(*(strip_marker(s).strip() for s in steps))


def read_judgements(path: str, cases: list[Case]) -> dict[str, LocatedError]:
    """A judge's located errors by case id. Each must judge a case of ``cases`` on that case's own
    steps (the same split), once; anything else is an error naming the file and line."""
    want = {c.id: c for c in cases}
    out: dict[str, tuple[int, LocatedError]] = {}
    for line, row in read_rows(path):
        try:
            err = LocatedError.from_dict(row)
        except RecordError as e:
            raise DataError(path, line, str(e), e.reason) from None
        case = want.get(err.id)
        if case is None:
            raise DataError(path, line, f"solution id {err.id!r} is no case of the labelled data", "unknown_id")
        if err.id in out:
            raise DataError(
                path, line, f"solution id {err.id!r} is judged twice (line {out[err.id][0]})", "duplicate_id"
            )
        if steps_key(err.solution.steps) != steps_key(case.located_steps()):
            raise DataError(
                path,
                line,
                f"case {err.id!r}: the judged steps ({len(err.solution.steps)}) are not the case's steps "
                f"({len(case.steps)}): judged on another step split or another solution",
                "other_steps",
            )
        out[err.id] = (line, err)
    return {k: e for k, (_, e) in out.items()}


def judged_as_in_locate(case: Case) -> LocatedError:
    """The case as ``locate`` would hand it to a judge: the solution and the gold answer, the
    solution graded by its final answer against the gold answer, never by the label. A case
    without a gold answer is graded nothing (not correct) and its prompt says the answer is not
    given."""
    if not case.answer:
        return case_to_located(replace(case, answer="(not given)"), correct=False)
    steps = case.located_steps()
    return case_to_located(case, correct=grade("".join(steps), case.answer))


def predicted(err: LocatedError | None) -> int | None:
    """A judge's answer as a 0-based step, -1 for "no wrong step", None for an abstention."""
    if err is None:
        return None
    if err.first_error_step is not None:
        return err.first_error_step - 1
    return -1 if err.reason == NO_WRONG_STEP else None


def score(labels: list[int], preds: list[int | None]) -> dict[str, Any]:
    """ProcessBench's metrics and the placement of every prediction."""
    wrong = [(y, p) for y, p in zip(labels, preds) if y >= 0]
    right = [p for y, p in zip(labels, preds) if y < 0]
    acc_e = sum(p == y for y, p in wrong) / len(wrong) if wrong else None
    acc_c = sum(p == -1 for p in right) / len(right) if right else None
    f1 = 2 * acc_e * acc_c / (acc_e + acc_c) if acc_e is not None and acc_c is not None and acc_e + acc_c else 0.0
    placement = Counter(
        "abstained"
        if p is None
        else "exact"
        if p == y
        else "said_no_wrong_step"
        if p == -1
        else "too_early"
        if p < y
        else "too_late"
        for y, p in wrong
    )
    on_correct = Counter("abstained" if p is None else "no_wrong_step" if p == -1 else "false_alarm" for p in right)
    return {
        "cases": len(labels),
        "erroneous": len(wrong),
        "correct": len(right),
        "acc_erroneous": acc_e,
        "acc_correct": acc_c,
        "f1": f1 if acc_e is not None and acc_c is not None else None,
        "erroneous_placement": dict(placement),
        "correct_cases": dict(on_correct),
        "abstained": sum(p is None for p in preds),
    }


def run_eval_judge(cfg: EvalJudgeConfig) -> dict[str, Any]:
    """Measure the judge; writes ``cases.jsonl``, ``summary.json`` and ``confusion.png`` in ``out``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = load_cases(cfg.data, cfg.limit)
    if cfg.judge == "rollout" and not cfg.judgements and any(not c.answer for c in cases):
        raise ValueError(f"{cfg.data}: the rollout judge needs each case's gold answer ('answer'); these have none")
    errors = [judged_as_in_locate(c) for c in cases]
    solutions = out / "solutions.jsonl"
    write_records(solutions, [e.solution for e in errors])
    t0, generator, stats = time.time(), None, {}
    if cfg.judgements:
        by_id = read_judgements(cfg.judgements, cases)
        name = f"file:{Path(cfg.judgements).name}"
    else:
        from stepdpo.pipeline.run import run_locate

        if cfg.judge == "rollout":
            from stepdpo.generation import load_generator

            generator = load_generator(cfg.model, backend=cfg.backend, **cfg.generator_kwargs())
        judge = judge_from_config(cfg, generator, out / "judged.jsonl")
        run_locate(judge, solutions, out / "judged.jsonl", include_correct=True)
        by_id = {e.solution.id: e for e in read_records(out / "judged.jsonl", "located_error")[0]}
        name = cfg.judge
        stats = dict(getattr(judge, "stats", {}))
    wall = time.time() - t0
    labels = [c.label for c in cases]
    preds = [predicted(by_id.get(c.id)) for c in cases]
    rows = []
    for c, p in zip(cases, preds):
        e = by_id.get(c.id)
        ev = e.evidence if e else {}
        rows.append(
            {
                "id": c.id,
                "steps": len(c.steps),
                "label": c.label,
                "predicted": p,
                "reason": e.reason if e else "no_judgement",
                "rollouts": int(ev.get("rollouts", 0)),
                "root_rollouts": int(ev.get("root_rollouts", 0)),  # its problem's R(0) check
            }
        )
    write_records(out / "cases.jsonl", rows)
    summary = {"judge": name, "data": cfg.data, **score(labels, preds)}
    # without a gold answer the judge is told nothing about the final answer (graded wrong for all)
    summary["without_gold_answer"] = sum(not c.answer for c in cases)
    gen_stats = getattr(generator, "stats", {}) if generator is not None else {}
    # each problem's R(0) check once (its records all name it), then every case's own search
    roots = {(c.problem, c.answer): int(by_id[c.id].evidence.get("root_rollouts", 0)) for c in cases if c.id in by_id}
    summary["cost_per_case"] = {
        "rollouts": (sum(r["rollouts"] for r in rows) + sum(roots.values())) / len(rows),
        "generated_tokens": gen_stats.get("generated_tokens", 0) / len(rows),
        "judge_calls": stats.get("calls", 0) / len(rows),
        "seconds": wall / len(rows),
    }
    if cfg.judge == "rollout" and not cfg.judgements:
        summary["settings"] = {
            k: getattr(cfg, k) for k in ("m", "search", "early_stop", "temperature", "max_new_tokens")
        }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    confusion_plot(labels, preds, out / "confusion.png", title=f"{name} on {Path(cfg.data).name}")
    log.info(f"eval-judge: {name}: F1 {summary['f1']}, cases {len(rows)}: {out / 'summary.json'}")
    return summary


MAX_PLOTTED_STEP = 19  # steps 20 and later share the plot's last row and column


def confusion_plot(labels: list[int], preds: list[int | None], path: Path, title: str = "") -> Path:
    """Counts of predicted against true earliest wrong step ("none" = -1, "abstain")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    top = min(max([*labels, *(p for p in preds if p is not None), 0]), MAX_PLOTTED_STEP)
    names = ["none", *map(str, range(1, top + 2))]
    if top == MAX_PLOTTED_STEP:
        names[-1] += "+"  # a long tail of late steps in one bucket
    grid = np.zeros((len(names), len(names) + 1), dtype=int)
    for y, p in zip(labels, preds):
        grid[min(y, top) + 1, len(names) if p is None else min(p, top) + 1] += 1
    fig, ax = plt.subplots(figsize=(1.2 + 0.32 * len(names), 1.0 + 0.3 * len(names)))
    ax.imshow(np.log1p(grid), cmap="Blues")
    for (i, j), v in np.ndenumerate(grid):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names) + 1), [*names, "abstain"], rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted first wrong step")
    ax.set_ylabel("true first wrong step")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def table(summary: dict[str, Any]) -> str:
    """The summary as a short table."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    cost = summary["cost_per_case"]
    lines = [
        f"judge {summary['judge']} on {summary['data']}: {summary['cases']} cases "
        f"({summary['erroneous']} erroneous, {summary['correct']} all correct)",
        f"  F1 {pct(summary['f1'])}   acc. erroneous {pct(summary['acc_erroneous'])}   "
        f"acc. correct {pct(summary['acc_correct'])}",
        f"  erroneous cases: {summary['erroneous_placement']}; correct cases: {summary['correct_cases']}",
        f"  per case: {cost['rollouts']:.1f} rollouts, {cost['generated_tokens']:.0f} generated tokens, "
        f"{cost['judge_calls']:.2f} judge calls, {cost['seconds']:.2f} s",
    ]
    if summary.get("without_gold_answer"):
        lines.append(
            f"  {summary['without_gold_answer']} cases have no gold answer: their final answers were graded as not correct"
        )
    return "\n".join(lines)


def agreement_section(j: dict[str, Any] | None) -> list[str]:
    """The demo report's section on the rollout judge measured against the task's exact checker."""
    if not j:
        return []
    share = lambda x: "n/a" if x is None else f"{100 * x:.1f} %"
    placed = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(j["erroneous_placement"].items()))
    return [
        "## Localization on the model's own text: rollouts against the exact checker",
        "",
        f"{j['cases']} solutions the starting model sampled for the common problems, labelled by the task's checker "
        f"({j['erroneous']} with a wrong step, {j['correct']} all right; in {j['unparsable_step']} the first wrong "
        "step is one the checker finds no equation in), judged by rollouts from the same model "
        f"(m = {j['settings']['m']}). ProcessBench's metrics, the checker as the truth:",
        "",
        "| acc. on erroneous | acc. on correct | F1 | abstained | rollouts per case |",
        "|---|---|---|---|---|",
        f"| {share(j['acc_erroneous'])} | {share(j['acc_correct'])} | {share(j['f1'])} | {j['abstained']} | "
        f"{j['cost_per_case']['rollouts']:.1f} |",
        "",
        f"Where the rollout judge put the erroneous cases: {placed or 'none'}.",
        "",
    ]
