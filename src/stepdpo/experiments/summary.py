"""What the demo reads off its runs besides accuracy: the validation figures of each arm (Fig. 2's
end points, and the margins before and after training) and the seconds per unit of each stage."""

from __future__ import annotations

from typing import Any

from stepdpo.experiments.common import mean_ci


def _logp_margin(rows: list[dict], key: str) -> dict[str, Any]:
    return mean_ci([r[f"{key}logps/chosen"] - r[f"{key}logps/rejected"] for r in rows])


def validation_summary(logs: dict[str, list[list[dict]]], hp: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Per arm and kind of validation pair, over seeds: reward accuracy and the margin divided by
    beta (the log-ratio margin, comparable across arms whose beta differs) at the last validation
    pass; and the policy's log-prob margin, log pi(s_win) - log pi(s_lose), at step 0 (the
    reference model's own) and at the end, so that how far training moved the model is a number."""
    out: dict[str, Any] = {}
    for arm, runs in logs.items():
        out[arm] = {}
        for kind in ("step", "whole"):
            key = f"eval_{kind}/"
            passes = [[r for r in rows if f"{key}rewards/accuracies" in r] for rows in runs]
            last = [p[-1] for p in passes if p]  # none: no validation pairs of this kind
            first = [p[0] for p in passes if p and p[0]["step"] == 0]  # none: no pass at step 0
            out[arm][kind] = {
                "reward_accuracy": mean_ci([r[f"{key}rewards/accuracies"] for r in last]),
                "reward_accuracy_step0": mean_ci([r[f"{key}rewards/accuracies"] for r in first]),
                "logratio_margin": mean_ci([r[f"{key}rewards/margins"] / hp[arm]["beta"] for r in last]),
                "logp_margin_step0": _logp_margin(first, key),
                "logp_margin_end": _logp_margin(last, key),
            }
    return out


def unit_costs(
    data: dict[int, dict[str, Any]],
    times: dict[str, float],
    tested: int,
    seeds: list[int],
    st: dict[str, Any],
    passes: int,
) -> dict[str, float | None]:
    """Seconds per unit of each stage, over every seed: per collection problem (its samples), per
    error rectified (its continuations), per Step-DPO pair (collect, locate, rectify and build of
    its seed over its pairs), per pair and pass of training (each arm's whole training, reference
    and validation passes included, over ``passes``, the pairs its optimizer steps took), per test
    problem evaluated and decoding (``tested``: the evaluations run, each of ``eval_problems``). A stage's inputs
    resumed from an earlier run are not counted; with any, the seconds per pair are None. What a larger run costs is these times its sizes."""

    def stage(name: str) -> tuple[float, int]:
        rows = [r for s in seeds for r in data[s]["stages"] if r["stage"] == name]
        # a rerun's resumed inputs took no time in it: they are not units of its seconds
        return sum(r["wall_s"] for r in rows), sum(r["rows_in"] - r.get("resumed", 0) for r in rows)

    def per(seconds: float, units: float) -> float | None:
        return round(seconds / units, 3) if units else None

    stages = [r for s in seeds for r in data[s]["stages"] if r["stage"] in ("collect", "locate", "rectify")]
    made = sum(r["wall_s"] for r in stages)
    resumed = any(r.get("resumed", 0) for r in stages)  # then the pairs were not all made in this run
    trained = sum(v for k, v in times.items() if k.startswith("train "))
    return {
        "collect_per_problem": per(*stage("collect")),
        "rectify_per_error": per(*stage("rectify")),
        "data_per_step_pair": None if resumed else per(made, sum(data[s]["pairs"]["step_dpo"] for s in seeds)),
        "train_per_pair_epoch": per(trained, passes),
        "evaluate_per_problem": per(times.get("evaluate", 0.0), tested * st["eval_problems"]),
    }
