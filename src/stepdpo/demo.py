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
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .io import read_records, write_records
from .pipeline import run_pipeline, synthetic_pipeline
from .records import Problem, StepPair

METHODS = ("sft", "dpo", "step_dpo", "step_dpo_ood")
LABELS = {"sft": "SFT", "dpo": "SFT + DPO", "step_dpo": "SFT + Step-DPO", "step_dpo_ood": "SFT + Step-DPO (OOD s_win)"}
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


@dataclass
class DemoConfig:
    """Options of ``stepdpo demo``.

    Attributes:
        out: output folder.
        seeds: training seeds; each also draws its own held-out problems.
        train_problems: problems to collect errors on.
        eval_problems: held-out problems per seed.
        k: solutions sampled per problem (collect).
        n: continuations per error (rectify).
        judge: localization judge (verifier: the exact checker; rollout: no judge at all).
        lr: learning rate of DPO and Step-DPO.
        beta: beta of eq. 2.
        epochs: training epochs.
        global_batch: pairs per optimizer step.
        max_new_tokens: sampling length limit.
    """

    out: str = "runs/demo"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    train_problems: int = 600
    eval_problems: int = 500
    k: int = 4
    n: int = 8
    judge: str = "verifier"
    lr: float = 2e-5
    beta: float = 0.4
    epochs: float = 3.0
    global_batch: int = 32
    max_new_tokens: int = 200


def mean_ci(values: list[float]) -> dict[str, Any]:
    """Mean and Student-t 95 % interval over seeds."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": m, "ci95": [m, m], "values": values}
    half = T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": m, "ci95": [m - half, m + half], "values": values}


def ood_pairs(pairs: list[StepPair], rect_path: Path) -> list[StepPair]:
    """The same pairs with s_win replaced by the task solver's correct step, in its own style."""
    from .tasks.arithmetic import canonical_step

    rects, _ = read_records(rect_path, "rectification")
    meta = {r.error.solution.problem_id: r.error.solution.meta for r in rects}
    out = []
    for p in pairs:
        pid, k = p.meta["problem_id"], p.meta["first_error_step"]
        problem = Problem(id=pid, problem=p.prompt, answer=p.answer or "", meta=meta[pid])
        chosen = canonical_step(problem, k, style="solver")
        if chosen.strip() != p.rejected.strip():
            out.append(StepPair(prompt=p.prompt, initial_reason_steps=p.initial_reason_steps, chosen=chosen,
                                rejected=p.rejected, answer=p.answer, dataset=p.dataset,
                                meta={**p.meta, "format": "step_ood"}))
    return out


def train_config(cfg: DemoConfig, data: Path, fmt: str, run: Path, seed: int, **overrides: Any):
    """The training settings every demo (and ablation) run shares."""
    from .train import TrainConfig

    tc = TrainConfig(data=str(data), out=str(run), model="default", fmt=fmt, lr=cfg.lr, beta=cfg.beta,
                     epochs=cfg.epochs, global_batch=cfg.global_batch, max_seq_len=1024, warmup_ratio=0.1,
                     val_fraction=0.1, eval_every=4, seed=seed, dtype="fp32",
                     ref_cache=str(Path(cfg.out) / "data" / "ref_logps.json"))
    return replace(tc, **overrides)


def heldout_problems(cfg: DemoConfig, seed: int) -> list[Problem]:
    """Seed ``seed``'s held-out problems (disjoint from the training problems by their seed)."""
    from .data import load_problems
    from .tiny import HELDOUT_SEED

    return load_problems("synthetic", split="test", limit=cfg.eval_problems, seed=HELDOUT_SEED + seed)


def evaluate_model(cfg: DemoConfig, model: str, held: list[Problem], out: Path) -> float:
    """Greedy held-out accuracy of ``model``; per-problem results go to ``out``."""
    from .evaluate import EvalConfig, evaluate, save_result
    from .generation.hf import HFGenerator

    res = evaluate(HFGenerator(model, batch_size=128, device="cpu", dtype="fp32"), held,
                   EvalConfig(max_new_tokens=cfg.max_new_tokens), data_name="synthetic", quiet=True)
    save_result(res, out)
    return res.summary["accuracy"]


def _say(msg: str) -> None:
    print(msg, flush=True)


def run_demo(cfg: DemoConfig, quiet: bool = True) -> dict[str, Any]:
    """Run everything; returns the content of ``results.json``."""
    from .train import train

    t_all, times = time.time(), {}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    pcfg = synthetic_pipeline("default", cfg.train_problems, out / "data", judge=cfg.judge,
                              max_new_tokens=cfg.max_new_tokens, k=cfg.k, n=cfg.n)
    stages = run_pipeline(pcfg, quiet=quiet)
    times["data pipeline"] = time.time() - t
    _say(f"[{times['data pipeline']:.0f} s] data: " + "; ".join(f"{s.stage} {s.rows_out}" for s in stages))
    step_pairs, _ = read_records(out / "data" / "pairs.jsonl", "step_pair")
    write_records(out / "data" / "pairs_ood.jsonl", ood_pairs(step_pairs, out / "data" / "rectified.jsonl"))
    data = {"dpo": ("pairs_dpo.jsonl", "dpo"), "step_dpo": ("pairs.jsonl", "step"),
            "step_dpo_ood": ("pairs_ood.jsonl", "step")}
    acc: dict[str, list[float]] = {m: [] for m in METHODS}
    logs: dict[str, list] = {}
    for seed in cfg.seeds:
        held = heldout_problems(cfg, seed)
        models = {"sft": "default"}
        for method, (fname, fmt) in data.items():
            t = time.time()
            run = out / f"seed{seed}" / method
            tc = train_config(cfg, out / "data" / fname, fmt, run, seed)
            models[method] = train(tc, quiet=quiet)["model"]
            logs.setdefault(method, [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()])
            times[f"train {method}"] = times.get(f"train {method}", 0) + time.time() - t
        for method in METHODS:
            t = time.time()
            acc[method].append(evaluate_model(cfg, models[method], held, out / f"seed{seed}" / f"eval-{method}"))
            times["evaluate"] = times.get("evaluate", 0) + time.time() - t
        _say(f"[{time.time() - t_all:.0f} s] seed {seed}: " + ", ".join(f"{m} {acc[m][-1]:.3f}" for m in METHODS))
    results = {
        "seeds": cfg.seeds,
        "accuracy": {m: mean_ci(v) for m, v in acc.items()},
        "gain_over_sft": {m: mean_ci([a - b for a, b in zip(acc[m], acc["sft"])]) for m in METHODS if m != "sft"},
        "step_dpo_minus_dpo": mean_ci([a - b for a, b in zip(acc["step_dpo"], acc["dpo"])]),
        "pairs": {m: sum(1 for _ in open(out / "data" / f)) for m, (f, _) in data.items()},
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

    from .trainlog import plot_curves

    plot_curves({"DPO": logs["dpo"], "Step-DPO": logs["step_dpo"]}, out / "curves.png",
                keys=("reward_accuracy", "reward_margin"), title="Validation reward accuracy and margin (seed 0)")
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


def _fmt(r: dict[str, Any]) -> str:
    lo, hi = r["ci95"]
    return f"{100 * r['mean']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def report(res: dict[str, Any], ablations: dict[str, Any] | None = None) -> str:
    """The Markdown report: the tables, what the numbers say, how long each stage took, and the
    ablations of ``stepdpo ablate`` when they have been run."""
    a, g = res["accuracy"], res["gain_over_sft"]
    diff = res["step_dpo_minus_dpo"]
    lines = [
        "# Step-DPO on the embedded default",
        "",
        f"Seeds {res['seeds']}; each seed trains with its own data order and evaluates on its own "
        f"{res['config']['eval_problems']} held-out problems (greedy). Accuracy in %, mean and 95 % interval "
        "(Student t over seeds).",
        "",
        "## Table 3 at small scale",
        "",
        "| model | accuracy | gain over SFT |",
        "|---|---|---|",
        f"| {LABELS['sft']} | {_fmt(a['sft'])} | |",
        f"| {LABELS['dpo']} | {_fmt(a['dpo'])} | {_fmt(g['dpo'])} |",
        f"| {LABELS['step_dpo']} | {_fmt(a['step_dpo'])} | {_fmt(g['step_dpo'])} |",
        "",
        "## Table 4 at small scale: where s_win comes from",
        "",
        "| s_win | accuracy | gain over SFT |",
        "|---|---|---|",
        f"| in-distribution (the model's own rectified steps) | {_fmt(a['step_dpo'])} | {_fmt(g['step_dpo'])} |",
        f"| out-of-distribution (the task solver's steps) | {_fmt(a['step_dpo_ood'])} | {_fmt(g['step_dpo_ood'])} |",
        "",
        f"Pairs: Step-DPO {res['pairs']['step_dpo']}, DPO {res['pairs']['dpo']}, OOD {res['pairs']['step_dpo_ood']}.",
        "",
        "## What the numbers say",
        "",
    ]
    beats_sft = g["step_dpo"]["ci95"][0] > 0
    vs_dpo = "above" if diff["ci95"][0] > 0 else ("below" if diff["ci95"][1] < 0 else "not separable from")
    lines.append(f"- Step-DPO {'improves' if beats_sft else 'does not clearly improve'} held-out accuracy over SFT "
                 f"({_fmt(g['step_dpo'])} points).")
    lines.append(f"- Step-DPO minus DPO: {_fmt(diff)} points, i.e. Step-DPO is {vs_dpo} vanilla DPO at this scale.")
    if vs_dpo != "above" and ablations is not None:
        lines.append("- Why: see the ablations below.")
    elif vs_dpo != "above":
        lines.append("- Why: run `stepdpo ablate --demo <this folder>` to retrain both with one factor changed at a "
                     "time (pairs, beta, epochs, kind of error); its section is added to this report.")
    lines += ["", "![accuracy](accuracy.png)", "", "![curves](curves.png)", "", "## Time", "",
              "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in res["stage_seconds"].items()]
    lines += [f"| total | {res['wall_s']:.0f} |", ""]
    if ablations is not None:
        from .ablate import section

        lines += section(ablations)
    return "\n".join(lines)
