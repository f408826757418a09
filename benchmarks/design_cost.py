"""What a larger design of the demo costs, from a finished run's unit costs: one figure, in seconds.

The default SmolLM2 run measures the seconds of each unit (per collection problem, per rectified
error, per pair and pass of training, per test problem and arm) and its yields (located errors and
Step-DPO pairs per collection problem). A design that changes only sizes scales them; one that
changes the rectification rule also needs the two rules' cost and yield on the same errors, which
``benchmarks/pair_cost.py`` measures (its last JSON line, at the default's n). The projection:

    seconds = SFT + judge + seeds x (data + arms x training + arms x test problems x per problem)

with data = collection problems x (per problem + errors per problem x per error x rule factor x
n / n of the run); pairs per seed = the run's Step-DPO pairs per collection problem x the rule's
yield factor, at the run's n (more samples per error can only add); every trained arm costed at
the Step-DPO arm's pairs (the DPO arms and Step-DPO's copy matched to them, Table 3, train on at
most as many, and the copy counts as an arm of its own); and
training = max(epochs x batches, the setting's least steps) x batch x per pair and pass. The
smallest effect the design's primary test detects at 80 % power uses the run's declared planning
discordance at the design's test problems.

    python benchmarks/design_cost.py --results runs/sm/results.json --pair-cost pair_cost.json [--design full]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stepdpo.experiments.common import DemoConfig
from stepdpo.experiments.primary import detectable_effect

DESIGNS = {"full": {"full": True}, "all-arms": {"arms": ["all"], "rule": "answer"}}
"""The designs costed, as demo options."""


def last_json(path: Path) -> dict:
    lines = [line for line in path.read_text().splitlines() if line.strip().startswith("{")]
    if not lines:
        raise SystemExit(f"{path}: no JSON line (the last line of benchmarks/pair_cost.py's output)")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True, help="results.json of a finished demo run (the unit costs)")
    ap.add_argument("--pair-cost", required=True, help="benchmarks/pair_cost.py's output (the rules' cost and yield)")
    ap.add_argument(
        "--design",
        default="full",
        choices=tuple(DESIGNS),
        help="full: --full; all-arms: the default's sizes with every arm (--arms all --rule answer)",
    )
    ap.add_argument("--judge-s", type=float, default=None, help="seconds of the judge agreement (default: the run's)")
    args = ap.parse_args()
    res = json.loads(Path(args.results).read_text())
    pc = last_json(Path(args.pair_cost))
    run_cfg = res["config"]
    ran = res["setting"]
    design = DemoConfig(model=run_cfg["model"], **DESIGNS[args.design])
    st, seeds, arms = design.setting, len(design.run_seeds), len(design.run_arms)
    unit = res["unit_costs"]

    run_seeds = [str(s) for s in res["seeds"]]
    collected = sum(r["rows_in"] for s in run_seeds for r in res["data_stages"][s] if r["stage"] == "collect")
    errors = sum(r["rows_in"] for s in run_seeds for r in res["data_stages"][s] if r["stage"] == "rectify")
    step_pairs = sum(res["pairs"]["step_dpo"])
    n_ran = pc["n"][0]
    rule_ran, rule_new = ran.get("rule", "answer"), st.get("rule", "answer")
    a, b = pc[f"{rule_new}_n{n_ran}"], pc[f"{rule_ran}_n{n_ran}"]
    cost_factor = a["rectify_s_per_error"] / b["rectify_s_per_error"]
    # the design keeps one pair per error: its yield is the errors that gave a pair
    yield_factor = a["errors_with_a_pair"] / b["errors_with_a_pair"]

    per_error = unit["rectify_per_error"] * cost_factor * st["n"] / ran["n"]
    errors_per_problem = errors / collected
    data = st["collect_problems"] * (unit["collect_per_problem"] + errors_per_problem * per_error)
    pairs = step_pairs / collected * yield_factor * st["collect_problems"]
    steps = max(math.ceil(st["epochs"] * math.ceil(pairs / st["global_batch"])), st.get("min_steps", 0))
    train = steps * st["global_batch"] * unit["train_per_pair_epoch"]
    test = st["eval_problems"] * unit["evaluate_per_problem"]
    sft = (res.get("sft") or {}).get("seconds") or res["stage_seconds"].get("sft", 0.0)
    judge = args.judge_s if args.judge_s is not None else res["stage_seconds"].get("judge agreement", 0.0)
    judge = judge if st.get("judge_cases") else 0.0  # a design without the judge agreement runs none
    total = sft + judge + seeds * (data + (arms - 1) * train + arms * test)
    q = float((st.get("planning") or {}).get("discordance", 0.5))
    n_test = seeds * st["eval_problems"]
    out = {
        "design": args.design,
        "seeds": seeds,
        "arms": arms,
        "rule": rule_new,
        "collect_problems": st["collect_problems"],
        "n": st["n"],
        "test_problems_per_seed": st["eval_problems"],
        "rule_cost_factor": round(cost_factor, 3),
        "rule_yield_factor": round(yield_factor, 3),
        "pairs_per_seed": round(pairs, 1),
        "optimizer_steps_per_arm": steps,
        "seconds": {
            "sft": round(sft, 1),
            "judge": round(judge, 1),
            "data_per_seed": round(data, 1),
            "training_per_arm_and_seed": round(train, 1),
            "testing_per_arm_and_seed": round(test, 1),
        },
        "total_s": round(total),
        "total_h": round(total / 3600, 1),
        "planning_discordance": q,
        "detectable_effect_80": round(detectable_effect(n_test, q), 2),
        "trained_arms": [a for a in design.run_arms if a != "sft"],
    }
    print(
        f"{args.design}: about {out['total_h']} hours on the machine of the run ({seeds} seeds, {arms} arms, "
        f"{out['pairs_per_seed']} pairs and {steps} optimizer steps per arm and seed); smallest detectable "
        f"effect of the primary comparison at {n_test} test problems: {out['detectable_effect_80']} points"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
