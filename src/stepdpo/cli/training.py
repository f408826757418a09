"""Commands that train and the experiments on top: sft, train, demo, ablate, iterate."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stepdpo.cli import _fail, _say, cli_command
from stepdpo.commands import SFTCommand
from stepdpo.experiments.ablate import AblateConfig
from stepdpo.experiments.common import DEMO_PRESETS, LABELS, DemoConfig
from stepdpo.experiments.iterate import IterateConfig
from stepdpo.training.trainer import TrainConfig


@cli_command(
    SFTCommand,
    "sft",
    "Supervised fine-tuning on step-by-step reference solutions ('tiny' + synthetic "
    "rebuilds the default model, 'tiny' + synthetic-long the long-chain one).",
)
def sft(cfg: SFTCommand) -> None:
    from stepdpo.default_model.build import build_default_model, build_long_model

    out = Path(cfg.out)
    if cfg.slip_rate is not None and not (cfg.model == "tiny" and cfg.data == "synthetic-long"):
        _fail("--slip-rate applies to the long-chain model only (--model tiny --data synthetic-long)")
    if cfg.model == "tiny" and cfg.data in ("synthetic", "synthetic-long"):
        if cfg.data == "synthetic":
            path = build_default_model(
                out,
                seed=cfg.seed,
                n_problems=cfg.limit or 6000,
                schedule_steps=cfg.max_steps or 1500,
                stop_after=0 if cfg.max_steps else 750,
            )
        else:
            path = build_long_model(
                out,
                seed=cfg.seed,
                n_problems=cfg.limit or 8000,
                schedule_steps=cfg.max_steps or 1400,
                slip_rate=0.3 if cfg.slip_rate is None else cfg.slip_rate,
            )
        _say(f"model written to {path}")
        return
    import torch

    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.problems import load_problems
    from stepdpo.text.prompts import build_prompt
    from stepdpo.training.sft import sft_train

    problems = [p for p in load_problems(cfg.data, split="train", limit=cfg.limit or 6000) if p.solution]
    if not problems:
        _fail(f"{cfg.data}: no problems with reference solutions to fine-tune on")
    tok = load_tokenizer(cfg.model)
    lm = load_model(cfg.model, dtype="fp32" if not torch.cuda.is_available() else "auto")
    pairs = [(build_prompt(p.problem, tokenizer=tok, prompt_format=cfg.prompt_format), p.solution) for p in problems]
    log = sft_train(lm, tok, pairs, cfg)
    out.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "sft_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    from stepdpo.training.card import write_card

    write_card(out, asdict(cfg), len(log) and log[-1]["step"], {"loss": log[-1]["loss"]} if log else {})
    _say(f"model written to {out}")


@cli_command(
    TrainConfig,
    "train",
    "Train with Step-DPO (eq. 2) on step pairs, or vanilla DPO on whole solutions (--pair-format dpo).",
)
def train(cfg: TrainConfig) -> None:
    from stepdpo.training.trainer import train as run_train

    if not cfg.data:
        _fail("no training data: give --data or 'data:' in --config")
    result = run_train(cfg)
    _say(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=1))


@cli_command(
    DemoConfig,
    "demo",
    "The paper's comparisons on an embedded model: SFT, holistic and shared-prefix DPO, Step-DPO, Step-DPO with "
    "out-of-distribution s_win (Tables 3, 4; Fig. 2), whole pipeline per seed; --tune picks each arm's lr and beta.",
    presets=DEMO_PRESETS,
)
def demo(cfg: DemoConfig) -> None:
    from stepdpo.experiments.demo import run_demo
    from stepdpo.experiments.report import pct, pooled_test, pooled_text, signed, verdict

    res = run_demo(cfg)

    if cfg.tune:
        table = Table(title=f"stepdpo demo --tune ({res['task']}): {res['metric']} on {res['val_problems']} problems")
        for col in ("arm", "lr", "beta", "accuracy %"):
            table.add_column(col)
        for r in res["runs"]:
            best = res["picks"][r["arm"]]
            mark = " *" if (best["lr"], best["beta"]) == (r["lr"], r["beta"]) else ""
            table.add_row(LABELS[r["arm"]], f"{r['lr']:g}", f"{r['beta']:g}", f"{100 * r['accuracy']:.1f}{mark}")
        Console().print(table)
        _say(f"grid: {Path(cfg.out) / 'tuning.json'}; picks (* above): {Path(cfg.out) / 'picks.json'}")
        return
    table = Table(
        title=f"stepdpo demo ({res['task']}): held-out {res['accuracy_kind']} accuracy over seeds {res['seeds']}, "
        "mean [95 % interval]"
    )
    for col in ("model", "accuracy %", "pairs per seed", "lr", "beta"):
        table.add_column(col)
    ran = res.get("arms") or list(LABELS)
    for m, label in ((m, label) for m, label in LABELS.items() if m in ran):
        h = res["hyperparameters"].get(m, {})
        n = res["pairs"].get(m)
        table.add_row(
            label,
            pct(res["accuracy"][m]),
            ", ".join(map(str, n)) if n else "",
            f"{h['lr']:g}" if h else "",
            f"{h['beta']:g}" if h else "",
        )
    Console().print(table)
    diffs = Table(title="paired differences (points), mean [95 % interval]: does the paper's ordering hold here?")
    diffs.add_column("difference", no_wrap=True)
    for col in ("points", "here", "pooled over seeds' problems (bootstrap 95 %), p (corrected)"):
        diffs.add_column(col)
    for k, r in res["differences"].items():
        if all(a in ran for a in k.split("_minus_")):
            t = pooled_test(res, k)
            cell = (
                ""
                if t is None
                else f"{pooled_text(t)}, p {t['p']:.3g} "
                + (f"({t['p_bonferroni']:.3g})" if "p_bonferroni" in t else "(primary)")
            )
            diffs.add_row(k, signed(r), verdict(r), cell)
    Console().print(diffs)
    backend = res.get("sampling_backend") or {}
    _say(
        f"results: {Path(cfg.out) / 'results.json'}; report: {Path(cfg.out) / 'report.md'}; total {res['wall_s']:.0f} s"
        + (f"; sampled with {backend['name']} ({backend['why']})" if backend else "")
    )


@cli_command(
    AblateConfig,
    "ablate",
    "Why Step-DPO and DPO differ: retrain both with one factor changed at a time "
    "(pairs, beta, epochs, kind of error); adds a section to the demo's report. Resumable.",
)
def ablate(cfg: AblateConfig) -> None:
    from stepdpo.experiments.ablate import run_ablations

    res = run_ablations(cfg)
    demo_dir = Path(cfg.demo)
    _say(
        f"ablations: {demo_dir / 'ablations.json'}; report: {demo_dir / 'report.md'}; {res['runs']} runs, "
        f"{res['run_seconds']:.0f} s of training and evaluation"
    )


@cli_command(
    IterateConfig, "iterate", "Iterative Step-DPO: each round trains on the previous round's model's own errors."
)
def iterate(cfg: IterateConfig) -> None:
    from stepdpo.experiments.iterate import run_iterate

    res = run_iterate(cfg)
    _say((Path(cfg.out) / "iterate.md").read_text() + f"total {res['wall_s']:.0f} s")
