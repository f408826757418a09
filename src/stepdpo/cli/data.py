"""Commands on data and judges: validate, inspect, convert, eval-judge, review, push."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from stepdpo.cli import _say, cli_command
from stepdpo.commands import ConvertCommand, InspectCommand, PushCommand, ReviewCommand, ValidateCommand
from stepdpo.experiments.judge_eval import EvalJudgeConfig


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
