"""The ``stepdpo`` command line: one thin command per stage of the paper's pipeline.

Every command's options are the fields of one documented dataclass (:mod:`stepdpo.options`), so
``--help``, a YAML file given with ``--config`` and the Python API list the same options with the
same defaults. A bad option or input is one clear line and exit code 2, before any model loads.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from stepdpo.commands import (
    BuildCommand,
    CollectCommand,
    ConvertCommand,
    EvalCommand,
    InspectCommand,
    LocateCommand,
    MergeCommand,
    PushCommand,
    RectifyCommand,
    ReviewCommand,
    SFTCommand,
    ValidateCommand,
)
from stepdpo.experiments.ablate import AblateConfig
from stepdpo.experiments.common import DEMO_PRESETS, LABELS, DemoConfig
from stepdpo.experiments.iterate import IterateConfig
from stepdpo.experiments.judge_eval import EvalJudgeConfig
from stepdpo.options import OptionError, command
from stepdpo.pipeline.run import PipelineConfig
from stepdpo.recordio import DataError, DiskFull, OutputLocked, is_disk_full
from stepdpo.training.trainer import TrainConfig

app = typer.Typer(
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Step-DPO: step-wise preference data and training for math reasoning (Lai et al., 2024).",
)
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        import torch
        import transformers

        typer.echo(f"stepdpo {version('stepdpo')} (torch {torch.__version__}, transformers {transformers.__version__})")
        raise typer.Exit()


@app.callback()
def _output(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Debug messages too."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Warnings and errors only; no progress display."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version, help="The version, and exit."),
    progress_every: float = typer.Option(
        30.0,
        "--progress-every",
        envvar="STEPDPO_PROGRESS_SECONDS",
        min=0.1,
        help="Off a terminal (a file, CI): seconds between progress lines (the first comes after 3 s).",
    ),
) -> None:
    """How messages and progress look: one live display (each stage, training and evaluation with its
    items, rate and ETA) and a line per finished part, on stderr."""
    import logging

    from rich.logging import RichHandler
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from transformers.utils import logging as hf_logging

    from stepdpo.progress import log, log_progress_every, set_display

    hf_logging.set_verbosity_error()  # library chatter (weight loading bars, notices) is not the user's business
    hf_logging.disable_progress_bar()
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.handlers[:] = [RichHandler(console=console, show_time=False, show_path=False, markup=False)]
    log.propagate = False
    if quiet:
        return
    if not console.is_terminal:  # a file, CI, a notebook: no live display draws there; log lines instead
        log_progress_every(progress_every)
        ctx.call_on_close(lambda: log_progress_every(None))
        return
    display = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    display.start()
    set_display(display)

    def stop() -> None:
        set_display(None)
        display.stop()

    ctx.call_on_close(stop)


def _say(message: str) -> None:
    """A plain line on stderr: no wrapping (paths stay whole) and no markup (data may hold brackets)."""
    console.print(message, soft_wrap=True, markup=False, highlight=False)


def _fail(message: str) -> None:
    _say(f"error: {message}")
    raise typer.Exit(2)


def _clear_errors(job) -> None:
    try:
        job()
    except (DataError, OptionError, OutputLocked, FileNotFoundError, ValueError, ImportError) as e:
        _fail(str(e))
    except (NotADirectoryError, FileExistsError, IsADirectoryError, PermissionError) as e:
        _fail(f"cannot write {e.filename}: {e.strerror}")
    except OSError as e:
        if not is_disk_full(e):
            raise
        # not a usage error: the same command completes once there is space
        if isinstance(e, DiskFull):  # already names the file and what to do
            _say(f"error: {e}")
        else:
            _say(f"error: no space left writing {e.filename or 'an output'} ({e.strerror}); free some space and rerun")
        raise typer.Exit(1) from None


def cli_command(cls: type, name: str, help: str, **kw) -> object:
    """Register the decorated function as command ``name`` with the options of ``cls``; data and
    option problems become one clear line and exit code 2, not a traceback."""

    def wrap(fn):
        command(app, cls, fn, name=name, help=help, guard=_clear_errors, **kw)
        return fn

    return wrap


def _shard(spec: str | None):
    from stepdpo.pipeline.runner import parse_shard

    return parse_shard(spec)


def _generator(cfg):
    from stepdpo.pipeline.executors import make_generator

    return make_generator(cfg)


def _executor(cfg):
    from stepdpo.pipeline.executors import make_executor

    return make_executor(cfg)


def _sampling_part(cfg, cls):
    """The stage config inside a command config (its own fields only)."""
    return cls(**{k: v for k, v in asdict(cfg).items() if k in cls.__dataclass_fields__})


@cli_command(
    ValidateCommand,
    "validate",
    "Report every problem in data files: malformed lines, missing fields, empty steps, chosen == rejected.",
    arguments=("files",),
    config_file=False,
)
def validate(cfg: ValidateCommand) -> None:
    from stepdpo.recordio import validate_file

    bad = 0
    for f in cfg.files:
        report = validate_file(f, cfg.kind)
        _say(report.summary())
        for problem in report.problems[: cfg.show]:
            _say(f"  {problem}")
        if len(report.problems) > cfg.show:
            _say(f"  ... and {len(report.problems) - cfg.show} more")
        bad += sum(report.skipped.values())
    raise typer.Exit(1 if bad else 0)


@cli_command(
    InspectCommand,
    "inspect",
    "Show pairs exactly as training tokenizes them: prompt, chosen and rejected decoded from the ids.",
    arguments=("file",),
    config_file=False,
)
def inspect(cfg: InspectCommand) -> None:
    from stepdpo.models import load_tokenizer
    from stepdpo.recordio import read_records
    from stepdpo.training.inspect import decoded_pairs, render

    pairs, _ = read_records(cfg.file, "step_pair")
    items = decoded_pairs(
        load_tokenizer(cfg.model), pairs[: cfg.limit], pair_format=cfg.pair_format, prompt_format=cfg.prompt_format
    )
    for i, item in enumerate(items, 1):
        if cfg.as_json:
            sys.stdout.write(
                json.dumps({k: item[k] for k in ("prompt", "chosen", "rejected")}, ensure_ascii=False) + "\n"
            )
        else:
            sys.stdout.write(render(item, i) + "\n")


@cli_command(
    ConvertCommand,
    "convert",
    "Convert pairs or step labels between the field's formats (TRL, ProcessBench, the released layout).",
    arguments=("inp", "out"),
    config_file=False,
)
def convert(cfg: ConvertCommand) -> None:
    from stepdpo.exchange import convert as run

    _say(run(cfg.inp, cfg.out, cfg.to, cfg.source, cfg.prompt_format).text() + f": {cfg.out}")


@cli_command(
    EvalJudgeConfig,
    "eval-judge",
    "Measure a localization judge on labelled solutions (ProcessBench's metrics: F1, accuracies, cost).",
)
def eval_judge(cfg: EvalJudgeConfig) -> None:
    from stepdpo.experiments.judge_eval import run_eval_judge, table

    _say(
        table(run_eval_judge(cfg))
        + f"\nper case: {Path(cfg.out) / 'cases.jsonl'}; plot: {Path(cfg.out) / 'confusion.png'}"
    )


@cli_command(
    ReviewCommand,
    "review",
    "A local web page to locate first errors by hand or vet step pairs (Sec. 3.2, 'manually').",
    config_file=False,
)
def review(cfg: ReviewCommand) -> None:
    from stepdpo.review.app import serve

    serve(cfg.inp, cfg.out, cfg.mode, cfg.host, cfg.port, cfg.annotator, on_start=_say)


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
    PushCommand,
    "push",
    "Upload a trained model folder or a folder of pairs, with its card, to the Hugging Face Hub.",
    arguments=("folder", "repo"),
    config_file=False,
)
def push(cfg: PushCommand) -> None:
    from stepdpo.hub import check_hub, plan_upload, upload

    plan = plan_upload(cfg.folder, cfg.repo)
    if not cfg.dry_run:
        check_hub(cfg.repo)  # offline, no token, no answer: one line before anything is sent
    _say(("would upload " if cfg.dry_run else "uploading ") + plan.text())
    if not cfg.dry_run:
        _say(f"uploaded: {upload(plan, private=cfg.private)}")


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
    from stepdpo.experiments.report import pct, signed, verdict

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
    for m, label in LABELS.items():
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
    for col in ("difference", "points", "here"):
        diffs.add_column(col)
    for k, r in res["differences"].items():
        diffs.add_row(k, signed(r), verdict(r))
    Console().print(diffs)
    _say(
        f"results: {Path(cfg.out) / 'results.json'}; report: {Path(cfg.out) / 'report.md'}; total {res['wall_s']:.0f} s"
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


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
