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

    python benchmarks/discordance.py --model runs/sm/sft-KEY --pairs paircost/pairs_step_n4.jsonl \
        [--cells 1e-5:0.1:0,3e-6:0.1:0,3e-6:0.1:1]

``--cells`` trains and scores each ``lr:beta:sft_weight`` cell in turn (a grid at the design's
optimizer steps), each against the same SFT scores; without it, the setting's picks alone.
``--pair-format dpo`` trains on the pairs' whole solutions instead (shared-prefix DPO, the
``full_chosen``/``full_rejected`` of pairs made under the answer rule), ``--no-eos`` without the
EOS token that whole solutions otherwise end with, and ``--max-steps`` at another number of
optimizer steps: the shared-prefix arm's collapse, rerun with and without EOS (docs/real-model.md).

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
from stepdpo.experiments.common import DemoConfig, hyperparameters, train_config
from stepdpo.experiments.primary import detectable_effect, outcomes_of
from stepdpo.experiments.sampler import evaluate_model


def wilson(k: int, n: int) -> list[float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return [round(ci.low, 4), round(ci.high, 4)]


def parse_cells(text: str, picked: dict[str, float]) -> list[dict[str, float]]:
    """``lr:beta:sft_weight`` cells, comma-separated; empty: the setting's picks alone."""
    if not text:
        return [{"lr": picked["lr"], "beta": picked["beta"], "sft_weight": picked.get("sft_weight", 0.0)}]
    cells = []
    for part in text.split(","):
        try:
            lr, beta, sft = (part.split(":") + ["0"])[:3]
            cells.append({"lr": float(lr), "beta": float(beta), "sft_weight": float(sft)})
        except ValueError:
            raise SystemExit(f"--cells: {part!r} is not lr:beta or lr:beta:sft_weight") from None
    return cells


def cell_name(c: dict[str, float]) -> str:
    return f"lr{c['lr']:g}-beta{c['beta']:g}-nll{c['sft_weight']:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the starting (SFT) model")
    ap.add_argument("--pairs", required=True, help="Step-DPO pilot pairs (pairs.jsonl of a pipeline run)")
    ap.add_argument("--setting", default="smollm2")
    ap.add_argument("--problems", type=int, default=200, help="validation problems scored")
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--global-batch", type=int, default=None)
    ap.add_argument(
        "--cells",
        default="",
        help="lr:beta:sft_weight cells to train and score, comma-separated (default: the setting's picks)",
    )
    ap.add_argument("--pair-format", choices=("step", "dpo"), default="step", help="step: eq. 2; dpo: whole solutions")
    ap.add_argument("--no-eos", action="store_true", help="whole solutions without their EOS token (--pair-format dpo)")
    ap.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: the setting's rule)")
    ap.add_argument("--n-test", type=int, default=1500, help="pooled test problems of the planned design")
    ap.add_argument("--out", default="runs/discordance")
    args = ap.parse_args()
    from scipy.stats import binomtest

    from stepdpo.training.trainer import train

    model = "smollm2-135m-instruct" if args.setting == "smollm2" else ""
    cfg = DemoConfig(
        model=model,
        val_problems=args.problems,
        epochs=args.epochs,
        global_batch=args.global_batch,
        base_model=args.model,
    )
    cells = parse_cells(args.cells, hyperparameters(cfg)["step_dpo"])
    out = Path(args.out)
    val = problem_sets(cfg, [0])["val"][: args.problems]
    sft_acc = evaluate_model(cfg, args.model, val, out / "eval-sft")
    b = outcomes_of(out / "eval-sft")
    n_pairs = len(Path(args.pairs).read_text().splitlines())
    rows = []
    for cell in cells:
        name = cell_name(cell)
        arm = "step_dpo" if args.pair_format == "step" else "dpo_shared_prefix" + ("-noeos" if args.no_eos else "")
        run = out / (arm if not args.cells else f"{arm}-{name}")
        given = {"max_steps": args.max_steps} if args.max_steps else {}
        t = time.time()
        tc = train_config(
            cfg,
            Path(args.pairs),
            args.pair_format,
            run,
            0,
            cell["lr"],
            cell["beta"],
            out / "ref_logps.json",
            sft_weight=cell["sft_weight"],
            add_eos=False if args.no_eos else None,
            **given,
        )
        trained = train(tc)
        train_s = time.time() - t
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        t = time.time()
        acc = evaluate_model(cfg, trained["model"], val, out / f"eval-{run.name}")
        eval_s = time.time() - t
        a = outcomes_of(out / f"eval-{run.name}")
        disc = sum(x != y for x, y in zip(a, b))
        q, (lo, hi) = disc / len(a), wilson(disc, len(a))
        only_step, only_sft = sum(x and not y for x, y in zip(a, b)), sum(y and not x for x, y in zip(a, b))
        row = {
            **cell,
            "pair_format": args.pair_format,
            "eos": tc.eos,
            "optimizer_steps": max(r["step"] for r in log if "loss" in r),
            "accuracy": acc,
            "difference_vs_sft": round(100 * (acc - sft_acc), 1),
            "sign_test_p": round(binomtest(only_step, disc).pvalue, 4) if disc else 1.0,
            "discordant": disc,
            "discordance": round(q, 4),
            "discordance_ci95": [lo, hi],
            "step_dpo_only": only_step,
            "sft_only": only_sft,
            "cut_at_length": cut_at_length(out / f"eval-{run.name}"),
            f"detectable_effect_at_{args.n_test}": round(detectable_effect(args.n_test, q), 2),
            f"detectable_effect_at_{args.n_test}_upper_q": round(detectable_effect(args.n_test, hi), 2),
            "train_s": round(train_s, 1),
            "eval_s": round(eval_s, 1),
        }
        rows.append(row)
        print(
            f"{name}: accuracy {acc:.3f} (SFT {sft_acc:.3f}, p {row['sign_test_p']}), {row['cut_at_length']} cut at "
            f"the length limit; discordance {q:.3f} [{lo:.3f}, {hi:.3f}] after {row['optimizer_steps']} steps on "
            f"{n_pairs} pairs; detectable effect at N = {args.n_test}: {row[f'detectable_effect_at_{args.n_test}']} "
            f"points (upper q: {row[f'detectable_effect_at_{args.n_test}_upper_q']})",
            flush=True,
        )
    res = {
        "setting": args.setting,
        "pairs": n_pairs,
        "validation_problems": len(b),
        "sft_accuracy": sft_acc,
        "sft_cut_at_length": cut_at_length(out / "eval-sft"),
        f"detectable_effect_at_{args.n_test}_q_half": round(detectable_effect(args.n_test), 2),
        "cells": rows,
    }
    print(json.dumps(res))


def cut_at_length(folder: Path) -> int:
    """Greedy solutions of an evaluation that ran to the token limit."""
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines() if line.strip()]
    return sum(s.get("finish_reason") == "length" for r in rows for s in r["samples"])


if __name__ == "__main__":
    main()
