"""The options of the commands whose options are not a library config already: each command's
options declared once, from the stage configs and the shared option groups (the command line, a
YAML file given with ``--config`` and Python read the same dataclass). ``train``, ``pipeline``,
``demo``, ``ablate`` and ``iterate`` use :class:`~stepdpo.training.trainer.TrainConfig`,
:class:`~stepdpo.pipeline.run.PipelineConfig`, :class:`~stepdpo.experiments.common.DemoConfig`,
:class:`~stepdpo.experiments.ablate.AblateConfig` and
:class:`~stepdpo.experiments.iterate.IterateConfig` as they are."""

from __future__ import annotations

import os
from dataclasses import dataclass

from stepdpo.exchange import FORMATS as EXCHANGE_FORMATS
from stepdpo.options import option
from stepdpo.pipeline.run import ModelOptions, ProblemOptions
from stepdpo.stages.collect import CollectConfig
from stepdpo.stages.evaluate import EvalConfig
from stepdpo.stages.locate import LocateConfig
from stepdpo.stages.pairs import BuildConfig
from stepdpo.stages.rectify import RectifyConfig
from stepdpo.tasks import DEFAULT_TASK
from stepdpo.text.prompts import FORMATS
from stepdpo.training.sft import SFTConfig

RECORD_KINDS = ("problem", "solution", "located_error", "rectification", "step_pair")


@dataclass
class ShardOptions:
    shard: str | None = option(None, "i/n: run shard i of n (merge the outputs with 'stepdpo merge').")


@dataclass
class CollectCommand(ShardOptions, CollectConfig, ProblemOptions, ModelOptions):
    """``stepdpo collect``: error collection (Sec. 3.2)."""

    out: str = option("runs/data/errors.jsonl", "Wrong solutions (D1), JSONL.")


@dataclass
class LocateCommand(ShardOptions, LocateConfig, ModelOptions):
    """``stepdpo locate``: step localization (Sec. 3.2)."""

    inp: str = option("runs/data/errors.jsonl", "Wrong solutions from 'collect'.", cli="--in")
    out: str = option("runs/data/located.jsonl", "Located errors (D2), JSONL.")


@dataclass
class RectifyCommand(ShardOptions, RectifyConfig, ModelOptions):
    """``stepdpo rectify``: rectification (eq. 3)."""

    inp: str = option("runs/data/located.jsonl", "Located errors from 'locate'.", cli="--in")
    out: str = option("runs/data/rectified.jsonl", "Rectifications, JSONL.")


@dataclass
class BuildCommand(BuildConfig):
    """``stepdpo build``: the pairs D."""

    inp: str = option("runs/data/rectified.jsonl", "Rectifications from 'rectify'.", cli="--in")
    out: str = option("runs/data/pairs.jsonl", "Pairs in the Step-DPO schema (JSONL, JSON or Parquet).")


@dataclass
class EvalCommand(EvalConfig, ModelOptions):
    """``stepdpo eval``: accuracy under the step-wise CoT prompt."""

    data: str = option(
        DEFAULT_TASK, "Problems: synthetic, synthetic-long, gsm8k, math500, math, hub:ORG/NAME, or a file."
    )
    limit: int | None = option(None, "Evaluate the first N problems (a generated task: 500 by default).", min=1)
    out: str | None = option(None, "Folder for summary.json and results.jsonl (default runs/eval-MODEL-DATA).")


@dataclass
class SFTCommand(SFTConfig):
    """``stepdpo sft``: supervised fine-tuning on step-by-step reference solutions."""

    out: str = option(None, "Output model folder.", required=True)
    model: str = option("default", "Model to fine-tune: a folder, a hub id, a name, or 'tiny' for a fresh tiny Qwen2.")
    data: str = option(
        DEFAULT_TASK, "Problems with reference solutions: synthetic, synthetic-long, gsm8k, math, or a file."
    )
    limit: int | None = option(None, "Training problems (default 6000; 8000 for tiny on synthetic-long).", min=1)
    prompt_format: str = option("auto", "auto, base, chat, alpaca, deepseek-math or qwen2-boxed.", choices=FORMATS)
    slip_rate: float | None = option(
        None,
        "tiny on synthetic-long only: the share of reference solutions that misstate one step (default 0.3).",
        min=0.0,
        max=1.0,
    )


@dataclass
class InspectCommand:
    """``stepdpo inspect``: pairs exactly as training tokenizes them."""

    file: str = option(None, "Pairs (this project's or the released Math-Step-DPO-10K layout).", required=True)
    model: str = option("default", "The model whose tokenizer and template training uses.")
    limit: int = option(3, "Pairs to show.", min=1)
    pair_format: str = option("step", "step (s_win / s_lose) or dpo (whole continuations).", choices=("step", "dpo"))
    prompt_format: str = option("auto", "auto, base, chat, alpaca, deepseek-math or qwen2-boxed.", choices=FORMATS)
    as_json: bool = option(False, "One JSON object per pair: prompt, chosen, rejected.", cli="--json")


@dataclass
class ValidateCommand:
    """``stepdpo validate``: every problem in data files."""

    files: list[str] = option([], "Data files (JSONL, JSON or Parquet) to check.", required=True)
    kind: str | None = option(
        None,
        "problem, solution, located_error, rectification or step_pair (default: guessed per row).",
        choices=RECORD_KINDS,
    )
    show: int = option(20, "Problems to list per file.", min=0)


@dataclass
class MergeCommand:
    """``stepdpo merge``: the shard outputs of a stage into one file."""

    files: list[str] = option([], "Shard outputs of one stage.", required=True)
    out: str = option(None, "Merged file.", required=True)


@dataclass
class ConvertCommand:
    """``stepdpo convert``: the field's exchange formats (:mod:`stepdpo.exchange`)."""

    inp: str = option(None, "Input file (JSONL, JSON, Parquet) or Hugging Face dataset folder.", required=True)
    out: str = option(
        None, "Output: .jsonl, .json or .parquet by its suffix, else a Hugging Face dataset folder.", required=True
    )
    to: str = option(
        None,
        "step-pair, step-dpo (the released layout), preference (TRL / LLaMA-Factory), located, "
        "processbench or trl-stepwise.",
        choices=EXCHANGE_FORMATS,
        required=True,
    )
    source: str = option(
        "auto",
        "The input's format (auto: detected from its fields).",
        choices=("auto", *EXCHANGE_FORMATS),
        cli="--from",
    )
    prompt_format: str = option(
        "base",
        "How a preference prompt folds problem and prior steps in: base, alpaca, deepseek-math or qwen2-boxed.",
        choices=("base", "alpaca", "deepseek-math", "qwen2-boxed"),
    )


@dataclass
class ReviewCommand:
    """``stepdpo review``: a local web page for a person to locate first errors or vet pairs."""

    inp: str = option(
        None,
        "Wrong solutions (D1) or located errors (D2) in locate mode; step pairs in pairs mode.",
        required=True,
        cli="--in",
    )
    out: str = option(
        None,
        "Located errors (judge 'human') in locate mode, kept pairs in pairs mode; decisions go beside it.",
        required=True,
    )
    mode: str = option(
        "locate", "locate (first wrong step) or pairs (keep or drop each pair).", choices=("locate", "pairs")
    )
    host: str = option("127.0.0.1", "Address to bind; any other than this machine's needs the printed token.")
    port: int = option(8765, "Port.", min=1, max=65535)
    annotator: str = option(os.environ.get("USER") or "annotator", "Your name, recorded with each decision.")


@dataclass
class PushCommand:
    """``stepdpo push``: a trained model folder or a pair folder to the Hugging Face Hub."""

    folder: str = option(
        "", "A model folder (from train) or a folder of pairs (from pipeline) with its card.", required=True
    )
    repo: str = option("", "The Hub repo, OWNER/NAME (created if missing).", required=True)
    private: bool = option(False, "Create the repo private.")
    dry_run: bool = option(False, "Print what would be uploaded; send nothing.")
