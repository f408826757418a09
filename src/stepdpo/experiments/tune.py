"""``stepdpo demo --tune``: each arm's lr and beta, picked from one grid by one rule.

Runs the data pipeline once on the tuning collection problems (their own sampling seed, disjoint
from every seed's collection and test problems), trains every arm at every (lr, beta) of the grid,
and scores each model on the validation problems (disjoint from every test set): greedy accuracy,
or on the long-chain form sampled accuracy at the collection temperature. Each arm's pick is its
best cell; a tie goes to the smaller lr, then the smaller beta. Writes ``tuning.jsonl`` (one line
per run; killed and rerun, finished runs are kept), ``tuning.json`` (the grid) and ``picks.json``
(the format of the packaged picks, :data:`~stepdpo.experiments.common.PICKS_FILE`).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stepdpo.experiments.arms import TUNE_SEED, arm_data, problem_sets
from stepdpo.experiments.common import (
    ARM_DATA,
    TUNED,
    DemoConfig,
    train_config,
    train_key,
)
from stepdpo.experiments.sampler import eval_key, evaluate_model
from stepdpo.experiments.starting import starting_model
from stepdpo.progress import Bar, log
from stepdpo.recordio import AppendWriter, atomic_write_text


def pick(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each arm's best (lr, beta) by validation accuracy; ties to the smaller lr, then beta."""
    best: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["lr"], r["beta"])):
        if r["arm"] not in best or r["accuracy"] > best[r["arm"]]["accuracy"]:
            best[r["arm"]] = r
    return {a: {"lr": r["lr"], "beta": r["beta"], "val_accuracy": r["accuracy"]} for a, r in best.items()}


def run_tune(cfg: DemoConfig) -> dict[str, Any]:
    """Train and score the grid; returns the content of ``tuning.json``."""
    from stepdpo.training.trainer import train

    t0 = time.time()
    out = Path(cfg.out)
    cfg = starting_model(cfg, out)
    sets = problem_sets(cfg, cfg.run_seeds)
    data = arm_data(cfg, sets["tune"], TUNE_SEED, out / "data")
    log.info(f"tuning pairs: {data['pairs']}")
    empty = [arm for arm in TUNED if not data["pairs"][arm]]
    if empty:
        raise ValueError(
            f"{out / 'data'}: the tuning collection gave no pairs for {', '.join(empty)}; "
            "nothing to pick lr and beta with: raise --collect-problems"
        )
    grid = [(a, lr, beta) for a in TUNED for lr in cfg.lrs for beta in cfg.betas]

    def tc(arm: str, lr: float, beta: float):
        fname, fmt = ARM_DATA[arm]
        return train_config(
            cfg, out / "data" / fname, fmt, out / "runs" / _id(arm, lr, beta), 0, lr, beta, out / "ref_logps.json"
        )

    # a run is kept only if made under the same settings and data (its key is part of its id)
    sampled = cfg.task == "long"
    ids = {g: f"{_id(*g)}-{eval_key(cfg, train_key(tc(*g)), sets['val'], sampled)}" for g in grid}
    writer = AppendWriter(out / "tuning.jsonl", key="id")
    todo = [g for g in grid if ids[g] not in writer.done]
    bar = Bar("tune", len(todo), unit="run")
    for arm, lr, beta in todo:
        run = out / "runs" / _id(arm, lr, beta)
        shutil.rmtree(run, ignore_errors=True)
        t = time.time()
        bar.note(now=_id(arm, lr, beta))
        model = train(tc(arm, lr, beta))["model"]
        acc = evaluate_model(cfg, model, sets["val"], run / "eval", sampled=sampled)
        shutil.rmtree(model, ignore_errors=True)
        writer.write(
            {
                "id": ids[arm, lr, beta],
                "arm": arm,
                "lr": lr,
                "beta": beta,
                "accuracy": acc,
                "pairs": data["pairs"][arm],
                "seconds": round(time.time() - t, 1),
            }
        )
        bar.update(1)
    bar.close()
    writer.close()
    rows = [json.loads(line) for line in (out / "tuning.jsonl").read_text(encoding="utf-8").splitlines()]
    current = set(ids.values())
    rows = [r for r in rows if r["id"] in current]
    picks = pick(rows)
    res = {
        "task": cfg.name,
        "metric": "sampled accuracy" if sampled else "greedy accuracy",
        "val_problems": len(sets["val"]),
        "pairs": data["pairs"],
        "grid": {"lr": cfg.lrs, "beta": cfg.betas},
        "runs": rows,
        "picks": picks,
        "config": asdict(cfg),
        "wall_s": round(time.time() - t0, 1),
    }
    atomic_write_text(out / "tuning.json", json.dumps(res, indent=2) + "\n")
    atomic_write_text(out / "picks.json", json.dumps({cfg.name: picks}, indent=2) + "\n")
    return res


def _id(arm: str, lr: float, beta: float) -> str:
    return f"{arm}-lr{lr:g}-beta{beta:g}"
