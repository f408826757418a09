"""The pipeline's commands (Sec. 3.2): collect, locate, rectify, build, merge, pipeline, and eval."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from stepdpo.cli import _executor, _generator, _sampling_part, _say, _shard, cli_command
from stepdpo.commands import BuildCommand, CollectCommand, EvalCommand, LocateCommand, MergeCommand, RectifyCommand
from stepdpo.pipeline.run import PipelineConfig


@cli_command(EvalCommand, "eval", "Accuracy under the step-wise CoT prompt; writes per-problem results and a summary.")
def eval_cmd(cfg: EvalCommand) -> None:
    from stepdpo.models import model_name
    from stepdpo.problems import load_problems
    from stepdpo.stages.evaluate import EvalConfig, evaluate, save_result

    problems = load_problems(cfg.data, split="test", limit=cfg.limit)
    result = evaluate(
        _generator(cfg), problems, _sampling_part(cfg, EvalConfig), data_name=cfg.data, executor=_executor(cfg)
    )
    out = Path(cfg.out) if cfg.out else Path("runs") / f"eval-{model_name(cfg.model)}-{Path(cfg.data).stem}"
    summary_path, rows_path = save_result(result, out)
    s = result.summary
    table = Table(title=f"stepdpo eval: {s['model']} on {cfg.data}")
    for col in ("problems", "accuracy", "pass@n", "steps all right", "format", "tokens/s", "time"):
        table.add_column(col)
    table.add_row(
        str(s["n_problems"]),
        f"{100 * s['accuracy']:.1f} %",
        f"{100 * s['pass_at_n']:.1f} %" if "pass_at_n" in s else "-",
        f"{100 * s['steps_all_correct']:.1f} %" if "steps_all_correct" in s else "-",
        s["prompt_format"],
        str(s["tokens_per_s"]),
        f"{s['wall_s']:.0f} s",
    )
    Console().print(table)
    _say(f"summary: {summary_path}\nper-problem results: {rows_path}")
    from stepdpo.training.card import add_eval, hub_dataset

    kind = "greedy accuracy" if not cfg.temperature else f"accuracy, temperature {cfg.temperature:g}"
    data = cfg.data if hub_dataset(cfg.data) or not Path(cfg.data).exists() else Path(cfg.data).name
    if Path(cfg.model).is_dir() and add_eval(Path(cfg.model), data, s["accuracy"], kind, s["n_problems"], "test"):
        _say(f"the model card now lists it: {Path(cfg.model) / 'README.md'}")


@cli_command(
    CollectCommand,
    "collect",
    "Error collection: sample k step-wise solutions per problem, keep the wrong ones (Sec. 3.2).",
)
def collect(cfg: CollectCommand) -> None:
    from stepdpo.pipeline.run import run_collect
    from stepdpo.problems import load_problems
    from stepdpo.stages.collect import CollectConfig

    shard = _shard(cfg.shard)
    problems = load_problems(cfg.data, split=cfg.split, limit=cfg.limit, seed=cfg.data_seed)
    conf = _sampling_part(cfg, CollectConfig)
    _say(run_collect(_generator(cfg), problems, cfg.out, conf, shard, _executor(cfg)).text())


@cli_command(LocateCommand, "locate", "Step localization: the first wrong step of each wrong solution (Sec. 3.2).")
def locate(cfg: LocateCommand) -> None:
    from stepdpo.pipeline.run import run_locate
    from stepdpo.stages.locate import LocateConfig, judge_from_config

    shard = _shard(cfg.shard)
    gen = _generator(cfg) if cfg.judge == "rollout" else None
    judge = judge_from_config(_sampling_part(cfg, LocateConfig), gen, Path(cfg.out))
    _say(run_locate(judge, cfg.inp, cfg.out, shard, executor=_executor(cfg)).text())


@cli_command(RectifyCommand, "rectify", "Rectification: the model's own correct next steps after s1..s(k-1) (eq. 3).")
def rectify(cfg: RectifyCommand) -> None:
    from stepdpo.pipeline.run import run_rectify
    from stepdpo.stages.rectify import RectifyConfig

    shard = _shard(cfg.shard)
    conf = _sampling_part(cfg, RectifyConfig)
    _say(run_rectify(_generator(cfg), cfg.inp, cfg.out, conf, shard, _executor(cfg)).text())


@cli_command(
    BuildCommand, "build", "Build preference pairs (D) in the Step-DPO schema, or whole-solution pairs for vanilla DPO."
)
def build(cfg: BuildCommand) -> None:
    from stepdpo.pipeline.card import build_card, write_card
    from stepdpo.pipeline.run import run_build
    from stepdpo.stages.pairs import BuildConfig

    bcfg = _sampling_part(cfg, BuildConfig)
    summary = run_build(cfg.inp, cfg.out, bcfg)
    _say(summary.text())
    if write_card(Path(cfg.out).parent, build_card(cfg.inp, cfg.out, summary.to_dict(), asdict(bcfg))):
        _say(f"dataset card: {Path(cfg.out).parent / 'README.md'}")


@cli_command(
    MergeCommand,
    "merge",
    "Merge the shard outputs of a stage into one file (each record once).",
    arguments=("files",),
    config_file=False,
)
def merge(cfg: MergeCommand) -> None:
    from stepdpo.pipeline.runner import merge_shards

    _say(f"{merge_shards(cfg.files, cfg.out)} records written to {cfg.out}")


_STAGE = ("collect", "locate", "rectify", "build")


@cli_command(
    PipelineConfig,
    "pipeline",
    "Run the whole data pipeline (collect, locate, rectify, build) from one config file (see configs/pipeline.yaml).",
    extra={
        "start": (str, typer.Option("collect", "--from", help=f"First stage: {', '.join(_STAGE)}.")),
        "stop": (str, typer.Option("build", "--to", help="Last stage.")),
        "shard": (str | None, typer.Option(None, help="i/n: run shard i of n.")),
    },
)
def pipeline(cfg: PipelineConfig, start: str = "collect", stop: str = "build", shard: str | None = None) -> None:
    from stepdpo.pipeline.run import run_pipeline

    run_pipeline(cfg, start, stop, _shard(shard))
