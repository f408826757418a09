"""``stepdpo iterate``: rounds of collect, locate, rectify, train, each from the last round's model.

Each round collects the current model's own errors on fresh training problems (on-policy data, as
in iterative RPO and MCTS-DPO), builds step pairs from them and trains Step-DPO starting from that
model; accuracy on the same held-out problems is measured after every round.
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


@dataclass
class IterateConfig:
    """Options of ``stepdpo iterate``."""

    out: str = option("runs/iterate", "Output folder.")
    model: str = option("default", "The starting model.")
    rounds: int = option(3, "Rounds of collect, locate, rectify, train.", min=1)
    train_problems: int = option(600, "Fresh training problems per round.", min=1)
    eval_problems: int = option(500, "Held-out problems, the same every round.", min=1)
    judge: str = option("verifier", "verifier (exact checker) or rollout (no judge).", choices=("verifier", "rollout"))
    lr: float = option(2e-5, "Learning rate.", min=0.0)
    beta: float = option(0.4, "beta of eq. 2.", min=1e-9)
    epochs: float = option(3.0, "Epochs per round.", min=1e-9)
    seed: int = option(0, "Training seed.")
    max_new_tokens: int = option(200, "Sampling length limit.", min=1)


def run_iterate(cfg: IterateConfig) -> dict[str, Any]:
    """Run the rounds; writes ``iterate.json`` and ``iterate.md``, returns the results."""
    from stepdpo.generation.hf import HFGenerator
    from stepdpo.problems import load_problems
    from stepdpo.stages.evaluate import EvalConfig, evaluate
    from stepdpo.tasks import get_task
    from stepdpo.training.trainer import TrainConfig, train

    t0, out = time.time(), Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    held = load_problems("synthetic", split="test", limit=cfg.eval_problems)

    def accuracy(model: str) -> float:
        gen = HFGenerator(model, batch_size=128, device="cpu", dtype="fp32")
        return evaluate(gen, held, EvalConfig(max_new_tokens=cfg.max_new_tokens)).summary["accuracy"]

    model = cfg.model
    rounds = [{"round": 0, "model": model, "accuracy": accuracy(model), "pairs": 0}]
    log.info(f"round 0: accuracy {rounds[0]['accuracy']:.3f}")
    for r in range(1, cfg.rounds + 1):
        rdir = out / f"round{r}"
        pcfg = synthetic_pipeline(
            model,
            cfg.train_problems,
            rdir / "data",
            judge=cfg.judge,
            max_new_tokens=cfg.max_new_tokens,
            data_seed=get_task("synthetic").train_seed + 100 * r,
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
            global_batch=32,
            max_seq_len=1024,
            val_fraction=0.1,
            seed=cfg.seed,
            dtype="fp32",
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
        "# Iterative Step-DPO on the embedded default\n\n"
        f"Held-out problems: {len(held)}, greedy.\n\n" + "\n".join(table) + "\n"
    )
    return result
