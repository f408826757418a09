"""``stepdpo demo``: the paper's comparisons at small scale, end to end on the embedded default.

SFT model -> collect errors on training problems -> locate -> rectify -> build pairs, then for each
seed: Step-DPO, vanilla DPO on whole solutions from the same errors (Table 3), and Step-DPO with
out-of-distribution s_win written by the task's own solver in its own style (Table 4, where GPT-4
wrote them in the paper); each is evaluated on that seed's held-out problems, as is the SFT model.
Writes ``results.json``, ``report.md``, ``accuracy.png``, ``curves.png`` (Fig. 2) and every
stage's data and logs into one folder.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stepdpo.experiments.common import (
    METHODS,
    DemoConfig,
    evaluate_model,
    heldout_problems,
    mean_ci,
    ood_pairs,
    synthetic_pipeline,
    train_config,
)
from stepdpo.experiments.report import report
from stepdpo.pipeline.run import run_pipeline
from stepdpo.progress import Bar, log
from stepdpo.recordio import read_records, write_records


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run everything; returns the content of ``results.json``."""
    from stepdpo.training.trainer import train

    t_all, times = time.time(), {}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    # one bar over the whole run (the data pipeline, then per seed three trainings and four
    # evaluations), under which each part shows its own
    whole = Bar("demo", 1 + 7 * len(cfg.seeds), unit="part")
    whole.note(now="data pipeline")
    pcfg = synthetic_pipeline(
        "default",
        cfg.train_problems,
        out / "data",
        judge=cfg.judge,
        max_new_tokens=cfg.max_new_tokens,
        k=cfg.k,
        n=cfg.n,
    )
    stages = run_pipeline(pcfg)
    whole.update(1)
    times["data pipeline"] = time.time() - t
    log.info(f"[{times['data pipeline']:.0f} s] data: " + "; ".join(f"{s.stage} {s.rows_out}" for s in stages))
    step_pairs, _ = read_records(out / "data" / "pairs.jsonl", "step_pair")
    write_records(out / "data" / "pairs_ood.jsonl", ood_pairs(step_pairs, out / "data" / "rectified.jsonl"))
    data = {
        "dpo": ("pairs_dpo.jsonl", "dpo"),
        "step_dpo": ("pairs.jsonl", "step"),
        "step_dpo_ood": ("pairs_ood.jsonl", "step"),
    }
    acc: dict[str, list[float]] = {m: [] for m in METHODS}
    logs: dict[str, list] = {}
    for seed in cfg.seeds:
        held = heldout_problems(cfg, seed)
        models = {"sft": "default"}
        for method, (fname, fmt) in data.items():
            t = time.time()
            whole.note(now=f"seed {seed}, training {method}")
            run = out / f"seed{seed}" / method
            tc = train_config(cfg, out / "data" / fname, fmt, run, seed)
            models[method] = train(tc)["model"]
            whole.update(1)
            logs.setdefault(method, [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()])
            times[f"train {method}"] = times.get(f"train {method}", 0) + time.time() - t
        for method in METHODS:
            t = time.time()
            whole.note(now=f"seed {seed}, evaluating {method}")
            acc[method].append(evaluate_model(cfg, models[method], held, out / f"seed{seed}" / f"eval-{method}"))
            whole.update(1)
            times["evaluate"] = times.get("evaluate", 0) + time.time() - t
        log.info(f"[{time.time() - t_all:.0f} s] seed {seed}: " + ", ".join(f"{m} {acc[m][-1]:.3f}" for m in METHODS))
    whole.close()
    results = {
        "seeds": cfg.seeds,
        "accuracy": {m: mean_ci(v) for m, v in acc.items()},
        "gain_over_sft": {m: mean_ci([a - b for a, b in zip(acc[m], acc["sft"])]) for m in METHODS if m != "sft"},
        "step_dpo_minus_dpo": mean_ci([a - b for a, b in zip(acc["step_dpo"], acc["dpo"])]),
        "pairs": {m: len((out / "data" / f).read_text().splitlines()) for m, (f, _) in data.items()},
        "data_stages": [s.to_dict() for s in stages],
        "stage_seconds": {k: round(v, 1) for k, v in times.items()},
        "config": asdict(cfg),
        "wall_s": round(time.time() - t_all, 1),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    _plots(out, acc, logs)
    (out / "report.md").write_text(report(results))
    return results


def _plots(out: Path, acc: dict[str, list[float]], logs: dict[str, list]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stepdpo.training.logs import plot_curves

    plot_curves(
        {"DPO": logs["dpo"], "Step-DPO": logs["step_dpo"]},
        out / "curves.png",
        keys=("reward_accuracy", "reward_margin"),
        title="Validation reward accuracy and margin (seed 0)",
    )
    fig, ax = plt.subplots(figsize=(6, 3.2))
    means = [statistics.fmean(acc[m]) * 100 for m in METHODS]
    short = {"sft": "SFT", "dpo": "+ DPO", "step_dpo": "+ Step-DPO", "step_dpo_ood": "+ Step-DPO\n(OOD s_win)"}
    ax.bar([short[m] for m in METHODS], means, color=["C7", "C0", "C1", "C2"])
    for i, m in enumerate(METHODS):
        ax.scatter([i] * len(acc[m]), [a * 100 for a in acc[m]], color="k", s=10, zorder=3)
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(min(means) - 10, max(means) + 8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=110)
    plt.close(fig)
