"""``stepdpo iterate``: rounds of collect, locate, rectify, train, each from the last round's model.

Each round collects the current model's own errors on fresh training problems (on-policy data, as
in iterative RPO and MCTS-DPO), builds step pairs from them and trains Step-DPO starting from that
model; accuracy on the same held-out problems is measured after every round. Fresh problems: a
generated task draws a new set per round; a file or a hub set gives round r its r-th slice of
``train_problems`` problems (written to ``round{r}/problems.jsonl``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stepdpo.experiments.common import synthetic_pipeline
from stepdpo.options import option
from stepdpo.pipeline.run import run_pipeline
from stepdpo.progress import log
from stepdpo.training.trackers import ReportOptions


@dataclass
class IterateConfig(ReportOptions):
    """Options of ``stepdpo iterate``."""

    out: str = option("runs/iterate", "Output folder.")
    model: str = option("default", "The starting model.")
    data: str = option(
        "synthetic", "Training problems: a generated task (synthetic, synthetic-long), a file, or a hub set."
    )
    eval_data: str | None = option(None, "Held-out problems (none: the test split of a generated task).")
    rounds: int = option(3, "Rounds of collect, locate, rectify, train.", min=1)
    train_problems: int = option(600, "Fresh training problems per round.", min=1)
    eval_problems: int = option(500, "Held-out problems, the same every round.", min=1)
    judge: str = option(
        "verifier",
        "verifier (the task's exact checker; generated tasks only) or rollout (no judge).",
        choices=("verifier", "rollout"),
    )
    lr: float = option(2e-5, "Learning rate.", min=0.0)
    beta: float = option(0.4, "beta of eq. 2.", min=1e-9)
    epochs: float = option(3.0, "Epochs per round.", min=1e-9)
    global_batch: int = option(32, "Pairs per optimizer step.", min=1)
    trainable_layers: int = option(0, "Train only the last N decoder layers (0: all).", min=0)
    seed: int = option(0, "Training seed.")
    k: int = option(4, "Solutions sampled per problem (collect).", min=1)
    n: int = option(8, "Continuations per error (rectify).", min=1)
    temperature: float = option(0.8, "Sampling temperature of collect and rectify.", min=0.0)
    top_p: float = option(0.95, "Nucleus cut of collect and rectify.", min=0.0, max=1.0)
    max_new_tokens: int = option(200, "Sampling length limit.", min=1)
    batch_size: int = option(128, "Sequences decoded together.", min=1)
    dtype: str = option("fp32", "Weights' dtype for training.", choices=("auto", "fp32", "bf16", "fp16"))

    def check(self) -> None:
        """Refuse combinations that cannot run, before any model loads."""
        from stepdpo.tasks import TASKS

        generated = self.data in TASKS
        if self.judge == "verifier" and not generated:
            raise ValueError(
                f"--judge verifier needs a generated task's exact checker; {self.data} has none: use rollout"
            )
        if not generated and self.eval_data is None:
            raise ValueError(f"--eval-data is needed with --data {self.data} (held-out problems, disjoint from it)")


def round_problems(cfg: IterateConfig, r: int, folder: Path) -> tuple[str, int | None]:
    """The pipeline's problem source for round ``r`` (1-based) and its data seed."""
    from stepdpo.problems import load_problems
    from stepdpo.recordio import write_records
    from stepdpo.tasks import TASKS, get_task

    if cfg.data in TASKS:
        return cfg.data, get_task(cfg.data).train_seed + 100 * r
    problems = load_problems(cfg.data, split="train", limit=None)[(r - 1) * cfg.train_problems : r * cfg.train_problems]
    if not problems:
        raise ValueError(f"{cfg.data}: no problems left for round {r} ({cfg.train_problems} per round)")
    path = folder / "problems.jsonl"
    write_records(path, problems)
    return str(path), None


def run_iterate(cfg: IterateConfig) -> dict[str, Any]:
    """Run the rounds; writes ``iterate.json`` and ``iterate.md``, returns the results."""
    from stepdpo.generation.hf import HFGenerator
    from stepdpo.problems import load_problems
    from stepdpo.stages.evaluate import EvalConfig, evaluate
    from stepdpo.training.trainer import TrainConfig, train

    cfg.check()
    t0, out = time.time(), Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    held = load_problems(cfg.eval_data or cfg.data, split="test", limit=cfg.eval_problems)

    def accuracy(model: str) -> float:
        gen = HFGenerator(model, batch_size=cfg.batch_size, dtype=cfg.dtype)
        return evaluate(gen, held, EvalConfig(max_new_tokens=cfg.max_new_tokens)).summary["accuracy"]

    model = cfg.model
    rounds = [{"round": 0, "model": model, "accuracy": accuracy(model), "pairs": 0}]
    log.info(f"round 0: accuracy {rounds[0]['accuracy']:.3f}")
    for r in range(1, cfg.rounds + 1):
        rdir = out / f"round{r}"
        data, seed = round_problems(cfg, r, rdir)
        pcfg = synthetic_pipeline(
            model,
            cfg.train_problems,
            rdir / "data",
            judge=cfg.judge,
            max_new_tokens=cfg.max_new_tokens,
            data_seed=seed,
            data=data,
            batch_size=cfg.batch_size,
            k=cfg.k,
            n=cfg.n,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
        )
        stages = run_pipeline(pcfg)
        pairs = stages[-2].rows_out  # the step pairs
        if pairs == 0:
            log.info(f"round {r}: no pairs (the model made no locatable, rectifiable errors); stopping")
            break
        tc = TrainConfig(
            data=str(rdir / "data" / "pairs.jsonl"),
            out=str(rdir / "train"),
            model=model,
            pair_format="step",
            lr=cfg.lr,
            beta=cfg.beta,
            epochs=cfg.epochs,
            global_batch=cfg.global_batch,
            trainable_layers=cfg.trainable_layers,
            max_seq_len=1024,
            val_fraction=0.1,
            seed=cfg.seed,
            dtype=cfg.dtype,
            report_to=cfg.report_to,
            project=cfg.project,
            run_name=f"round{r}",
        )
        model = train(tc)["model"]
        rounds.append(
            {
                "round": r,
                "model": model,
                "accuracy": accuracy(model),
                "pairs": pairs,
                "wrong_solutions": stages[0].rows_out,
            }
        )
        log.info(f"round {r}: {pairs} pairs, accuracy {rounds[-1]['accuracy']:.3f}")
    result = {"rounds": rounds, "config": asdict(cfg), "wall_s": round(time.time() - t0, 1)}
    (out / "iterate.json").write_text(json.dumps(result, indent=2) + "\n")
    table = ["| round | model | pairs | held-out accuracy |", "|---|---|---|---|"]
    table += [f"| {x['round']} | {x['model']} | {x['pairs']} | {100 * x['accuracy']:.1f} % |" for x in rounds]
    (out / "iterate.md").write_text(
        f"# Iterative Step-DPO: {cfg.model} on {cfg.data}\n\n"
        f"Held-out problems: {len(held)} ({cfg.eval_data or cfg.data}), greedy.\n\n" + "\n".join(table) + "\n"
    )
    return result
