"""The planning discordance of the demo's primary comparison: how often Step-DPO and the model it
starts from disagree on a problem, measured on validation problems before any test problem is scored.

The primary comparison's power (``stepdpo.experiments.primary``) depends on the share q of
problems that exactly one of the two arms solves: its smallest detectable effect is
(z(0.975) + z(0.8)) * sqrt(q / N) on N paired problems. This pilot trains Step-DPO once on pilot
pairs (the setting's hyperparameters from the packaged picks, its batch and epochs), scores it and
the starting model greedily on the setting's validation problems (disjoint from every test set),
and reports q with its 95 % (Wilson) interval, and the detectable effect at N test problems for q
and for its upper bound. A design declared from the upper bound claims no more power than the
pilot allows.

    python benchmarks/discordance.py --model runs/sm/sft-KEY --pairs runs/sm/pilot64/pairs_step.jsonl

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stepdpo.experiments.arms import problem_sets
from stepdpo.experiments.common import DemoConfig, evaluate_model, hyperparameters, train_config
from stepdpo.experiments.primary import detectable_effect, outcomes_of


def wilson(k: int, n: int) -> list[float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return [round(ci.low, 4), round(ci.high, 4)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the starting (SFT) model")
    ap.add_argument("--pairs", required=True, help="Step-DPO pilot pairs (pairs.jsonl of a pipeline run)")
    ap.add_argument("--setting", default="smollm2")
    ap.add_argument("--problems", type=int, default=200, help="validation problems scored")
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--global-batch", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=1500, help="pooled test problems of the planned design")
    ap.add_argument("--out", default="runs/discordance")
    args = ap.parse_args()
    from stepdpo.training.trainer import train

    model = "smollm2-135m-instruct" if args.setting == "smollm2" else ""
    cfg = DemoConfig(
        model=model,
        val_problems=args.problems,
        epochs=args.epochs,
        global_batch=args.global_batch,
        base_model=args.model,
    )
    out = Path(args.out)
    hp = hyperparameters(cfg)["step_dpo"]
    t = time.time()
    tc = train_config(cfg, Path(args.pairs), "step", out / "step_dpo", 0, hp["lr"], hp["beta"], out / "ref_logps.json")
    trained = train(tc)
    train_s = time.time() - t
    log = [json.loads(line) for line in (out / "step_dpo" / "log.jsonl").read_text().splitlines()]
    val = problem_sets(cfg, [0])["val"][: args.problems]
    t = time.time()
    acc = {
        "sft": evaluate_model(cfg, args.model, val, out / "eval-sft"),
        "step_dpo": evaluate_model(cfg, trained["model"], val, out / "eval-step_dpo"),
    }
    eval_s = time.time() - t
    a, b = outcomes_of(out / "eval-step_dpo"), outcomes_of(out / "eval-sft")
    disc = sum(x != y for x, y in zip(a, b))
    q, (lo, hi) = disc / len(a), wilson(disc, len(a))
    res = {
        "setting": args.setting,
        "pairs": len(Path(args.pairs).read_text().splitlines()),
        "optimizer_steps": log[-1]["step"],
        "hyperparameters": hp,
        "validation_problems": len(a),
        "accuracy": acc,
        "discordant": disc,
        "discordance": round(q, 4),
        "discordance_ci95": [lo, hi],
        "step_dpo_only": sum(x and not y for x, y in zip(a, b)),
        "sft_only": sum(y and not x for x, y in zip(a, b)),
        f"detectable_effect_at_{args.n_test}": round(detectable_effect(args.n_test, q), 2),
        f"detectable_effect_at_{args.n_test}_upper_q": round(detectable_effect(args.n_test, hi), 2),
        f"detectable_effect_at_{args.n_test}_q_half": round(detectable_effect(args.n_test), 2),
        "train_s": round(train_s, 1),
        "eval_s": round(eval_s, 1),
    }
    print(
        f"discordance {q:.3f} [{lo:.3f}, {hi:.3f}] on {len(a)} validation problems after {res['optimizer_steps']} "
        f"steps on {res['pairs']} pairs; detectable effect at N = {args.n_test}: {res[f'detectable_effect_at_{args.n_test}']} "
        f"points (upper q: {res[f'detectable_effect_at_{args.n_test}_upper_q']}, q = 1/2: {res[f'detectable_effect_at_{args.n_test}_q_half']})"
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
