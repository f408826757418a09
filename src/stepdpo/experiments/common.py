"""What the experiments (demo, ablate) share: the demo's options, the arms, how a run trains and is
evaluated, and statistics over seeds."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stepdpo.options import option
from stepdpo.pipeline.run import PipelineConfig
from stepdpo.recordio import read_records
from stepdpo.records import Problem, StepPair
from stepdpo.stages.collect import CollectConfig
from stepdpo.stages.locate import LocateConfig
from stepdpo.stages.pairs import BuildConfig
from stepdpo.stages.rectify import RectifyConfig

METHODS = ("sft", "dpo", "step_dpo", "step_dpo_ood")
LABELS = {"sft": "SFT", "dpo": "SFT + DPO", "step_dpo": "SFT + Step-DPO", "step_dpo_ood": "SFT + Step-DPO (OOD s_win)"}
ABLATED = ("dpo", "step_dpo")
"""The arms `stepdpo ablate` retrains."""


@dataclass
class DemoConfig:
    """Options of ``stepdpo demo`` (presets in :data:`DEMO_PRESETS`)."""

    out: str = option("runs/demo", "Output folder: results.json, report.md, plots, data, logs.")
    seeds: list[int] = option([0, 1, 2], "Training seeds, comma-separated; each also draws its own held-out problems.")
    train_problems: int = option(600, "Problems to collect errors on.", min=1)
    eval_problems: int = option(500, "Held-out problems per seed.", min=1)
    k: int = option(4, "Solutions sampled per problem (collect).", min=1)
    n: int = option(8, "Continuations per error (rectify).", min=1)
    judge: str = option(
        "verifier",
        "Localization: verifier (the exact checker) or rollout (no judge at all).",
        choices=("verifier", "rollout"),
    )
    lr: float = option(2e-5, "Learning rate of DPO and Step-DPO.", min=0.0)
    beta: float = option(0.4, "beta of eq. 2.", min=1e-9)
    epochs: float = option(3.0, "Training epochs.", min=1e-9)
    global_batch: int = option(32, "Pairs per optimizer step.", min=1)
    max_new_tokens: int = option(200, "Sampling length limit.", min=1)


DEMO_PRESETS = {"quick": {"seeds": [0], "train_problems": 60, "eval_problems": 60, "epochs": 1.0, "n": 4}}
"""Named configurations of the demo: ``quick`` (one seed, few problems) checks the wiring."""


def mean_ci(values: list[float]) -> dict[str, Any]:
    """Mean and Student-t 95 % interval over seeds (the exact quantile for n - 1 degrees of freedom)."""
    from scipy.stats import t

    m = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": m, "ci95": [m, m], "values": values}
    half = float(t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": m, "ci95": [m - half, m + half], "values": values}


def ood_pairs(pairs: list[StepPair], rect_path: Path) -> list[StepPair]:
    """The same pairs with s_win replaced by the task solver's correct step, in its own style."""
    from stepdpo.tasks.arithmetic import canonical_step

    rects, _ = read_records(rect_path, "rectification")
    meta = {r.error.solution.problem_id: r.error.solution.meta for r in rects}
    out = []
    for p in pairs:
        pid, k = p.meta["problem_id"], p.meta["first_error_step"]
        problem = Problem(id=pid, problem=p.prompt, answer=p.answer or "", meta=meta[pid])
        chosen = canonical_step(problem, k, style="solver")
        if chosen.strip() != p.rejected.strip():
            out.append(
                StepPair(
                    prompt=p.prompt,
                    initial_reason_steps=p.initial_reason_steps,
                    chosen=chosen,
                    rejected=p.rejected,
                    answer=p.answer,
                    dataset=p.dataset,
                    meta={**p.meta, "format": "step_ood"},
                )
            )
    return out


def train_config(cfg: DemoConfig, data: Path, fmt: str, run: Path, seed: int, **overrides: Any):
    """The training settings every demo (and ablation) run shares."""
    from stepdpo.training.trainer import TrainConfig

    tc = TrainConfig(
        data=str(data),
        out=str(run),
        model="default",
        pair_format=fmt,
        lr=cfg.lr,
        beta=cfg.beta,
        epochs=cfg.epochs,
        global_batch=cfg.global_batch,
        max_seq_len=1024,
        warmup_ratio=0.1,
        val_fraction=0.1,
        eval_every=4,
        seed=seed,
        dtype="fp32",
        ref_cache=str(Path(cfg.out) / "data" / "ref_logps.json"),
    )
    return replace(tc, **overrides)


def heldout_problems(cfg: DemoConfig, seed: int) -> list[Problem]:
    """Seed ``seed``'s held-out problems (disjoint from the training problems by their seed)."""
    from stepdpo.problems import load_problems
    from stepdpo.tasks import get_task

    return load_problems(
        "synthetic", split="test", limit=cfg.eval_problems, seed=get_task("synthetic").heldout_seed + seed
    )


def evaluate_model(cfg: DemoConfig, model: str, held: list[Problem], out: Path) -> float:
    """Greedy held-out accuracy of ``model``; per-problem results go to ``out``."""
    from stepdpo.generation.hf import HFGenerator
    from stepdpo.stages.evaluate import EvalConfig, evaluate, save_result

    res = evaluate(
        HFGenerator(model, batch_size=128, device="cpu", dtype="fp32"),
        held,
        EvalConfig(max_new_tokens=cfg.max_new_tokens),
        data_name="synthetic",
    )
    save_result(res, out)
    return res.summary["accuracy"]


def synthetic_pipeline(
    model: str,
    limit: int,
    out: str | Path,
    judge: str = "verifier",
    max_new_tokens: int = 200,
    k: int = 4,
    n: int = 8,
    data_seed: int | None = None,
    data: str = "synthetic",
    batch_size: int = 128,
) -> PipelineConfig:
    """The pipeline the demo and ``iterate`` run (transformers backend; the embedded synthetic task
    unless ``data`` names other problems)."""
    return PipelineConfig(
        model=model,
        data=data,
        split="train",
        limit=limit,
        data_seed=data_seed,
        out=str(out),
        backend="hf",
        batch_size=batch_size,
        collect=CollectConfig(k=k, max_new_tokens=max_new_tokens),
        locate=LocateConfig(judge=judge, max_new_tokens=max_new_tokens),
        rectify=RectifyConfig(n=n, max_new_tokens=max_new_tokens),
        build=BuildConfig(max_per_error=1, max_per_problem=4),
    )
