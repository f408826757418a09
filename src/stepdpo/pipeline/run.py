"""The data pipeline of Sec. 3.2 end to end: collect -> locate -> rectify -> build.

Each ``run_*`` function reads its input file, runs one stage through the resumable runner and
writes its output; ``stepdpo pipeline`` runs them in order from one YAML config, ``--from/--to``
runs a part. Files in the output folder: ``errors.jsonl`` (D1), ``located.jsonl`` (D2),
``rectified.jsonl``, ``pairs.jsonl`` (Step-DPO pairs, D) and ``pairs_dpo.jsonl`` (whole-solution
pairs for the vanilla-DPO baseline), plus ``summary.json``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stepdpo.options import build as build_config
from stepdpo.options import load_yaml, option
from stepdpo.pipeline.executors import ExecutorOptions, make_executor, make_generator
from stepdpo.pipeline.runner import StageSummary, run_stage, shard_path
from stepdpo.progress import log
from stepdpo.recordio import atomic_write_text, read_records, write_records
from stepdpo.stages.collect import CollectConfig, collect_chunk, collect_settings
from stepdpo.stages.locate import LocateConfig, judge_from_config
from stepdpo.stages.pairs import BuildConfig, build_pairs, holistic_pairs
from stepdpo.stages.rectify import RectifyConfig, rectify_chunk, rectify_settings
from stepdpo.tasks import DEFAULT_TASK

STAGES = ("collect", "locate", "rectify", "build")
FILES = {"collect": "errors.jsonl", "locate": "located.jsonl", "rectify": "rectified.jsonl", "build": "pairs.jsonl"}


def run_collect(
    generator: Any,
    problems: list,
    out: str | Path,
    cfg: CollectConfig,
    shard: tuple[int, int] | None = None,
    executor: Any = None,
) -> StageSummary:
    chunk = max(1, 64 // max(1, cfg.k))
    return run_stage(
        "collect",
        problems,
        lambda ps: collect_chunk(generator, ps, cfg),
        out,
        settings=collect_settings(generator, cfg),
        shard=shard,
        chunk_size=chunk,
        executor=executor,
    )


def run_locate(
    judge: Any,
    inp: str | Path,
    out: str | Path,
    shard: tuple[int, int] | None = None,
    chunk_size: int = 16,
    include_correct: bool = False,
    executor: Any = None,
) -> StageSummary:
    from stepdpo.stages.locate import locate_chunk

    solutions, _ = read_records(inp, "solution")
    return run_stage(
        "locate",
        solutions,
        lambda ss: locate_chunk(judge, ss, include_correct),
        out,
        settings=judge.settings(),
        shard=shard,
        chunk_size=chunk_size,
        executor=executor,
    )


def run_rectify(
    generator: Any,
    inp: str | Path,
    out: str | Path,
    cfg: RectifyConfig,
    shard: tuple[int, int] | None = None,
    executor: Any = None,
) -> StageSummary:
    errors, _ = read_records(inp, "located_error")
    chunk = max(1, 64 // max(1, cfg.n))
    return run_stage(
        "rectify",
        errors,
        lambda es: rectify_chunk(generator, es, cfg),
        out,
        settings=rectify_settings(generator, cfg),
        shard=shard,
        chunk_size=chunk,
        executor=executor,
    )


def run_build(inp: str | Path, out: str | Path, cfg: BuildConfig) -> StageSummary:
    import time

    t0 = time.time()
    if cfg.pair_format == "holistic":
        rows, _ = read_records(inp, "solution")
        pairs, dropped = holistic_pairs(rows, cfg)
    else:
        rows, _ = read_records(inp, "rectification")
        pairs, dropped = build_pairs(rows, cfg)
    write_records(out, pairs)
    return StageSummary(
        stage=f"build ({cfg.pair_format})",
        rows_in=len(rows),
        rows_out=len(pairs),
        dropped=dropped,
        wall_s=time.time() - t0,
        output=str(out),
    )


@dataclass
class ModelOptions(ExecutorOptions):
    """Which model samples, how, and where (the executor)."""

    model: str = option(
        "default", "The model: a folder, a hub id, or a name (default, default-long, smollm2-135m-instruct)."
    )
    backend: str = option(
        "auto",
        "Generation backend: auto (vLLM on a GPU when installed, else transformers), hf or vllm.",
        choices=("auto", "hf", "vllm"),
    )
    batch_size: int = option(64, "Sequences decoded together (hf backend).", min=1)
    dtype: str = option(
        "auto",
        "Weights' dtype when sampling: auto (bf16 on a GPU that computes in it, else fp32), fp32, bf16 or fp16.",
        choices=("auto", "fp32", "bf16", "fp16"),
    )
    max_model_len: int | None = option(
        None, "vLLM: the context length the engine reserves (default: the model's).", min=1
    )
    max_num_batched_tokens: int | None = option(
        None, "vLLM: tokens per scheduler step (default: vLLM's; on a CPU at least the context length).", min=1
    )
    gpu_memory_utilization: float | None = option(
        None,
        "vLLM: the share of GPU memory the engine takes (default 0.85; on vLLM's CPU build, of the machine's memory: 0.25).",
        min=0.01,
        max=1.0,
    )
    enforce_eager: bool = option(False, "vLLM: no CUDA graphs or compilation (a faster start, slower decoding).")

    def vllm_options(self) -> dict[str, Any]:
        """The vLLM engine options (:func:`~stepdpo.generation.vllm.engine_args` takes them)."""
        return {
            "dtype": self.dtype,
            "max_model_len": self.max_model_len,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "enforce_eager": self.enforce_eager,
        }

    def generator_kwargs(self) -> dict[str, Any]:
        """The options :func:`~stepdpo.generation.load_generator` takes for this backend."""
        if self.backend == "vllm":
            return self.vllm_options()
        return {"batch_size": self.batch_size, "dtype": self.dtype}


@dataclass
class ProblemOptions:
    """Which problems."""

    data: str = option(
        DEFAULT_TASK,
        "Problems: synthetic, synthetic-long, gsm8k, math500, math, hub:ORG/NAME, or a "
        "file (GSM8K, MATH or problem records; JSONL, JSON or Parquet).",
    )
    split: str = option("train", "train or test.", choices=("train", "test"))
    limit: int | None = option(500, "The first N problems (none: all).", min=1)
    data_seed: int | None = option(None, "Which problems of a generated task (default: the split's own seed).")


@dataclass
class PipelineConfig(ModelOptions, ProblemOptions):
    """A whole pipeline run (``stepdpo pipeline --config FILE.yaml``): the top-level options, then a
    section per stage (``collect``, ``locate``, ``rectify``, ``build``) in the YAML file."""

    out: str = option("runs/pipeline", "Output folder.")
    collect: CollectConfig = field(default_factory=CollectConfig)
    locate: LocateConfig = field(default_factory=LocateConfig)
    rectify: RectifyConfig = field(default_factory=RectifyConfig)
    build: BuildConfig = field(default_factory=BuildConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineConfig:
        return build_config(cls, d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineConfig:
        return load_yaml(path, cls)


def run_pipeline(
    cfg: PipelineConfig,
    start: str = "collect",
    stop: str = "build",
    shard: tuple[int, int] | None = None,
) -> list[StageSummary]:
    """Run the stages from ``start`` to ``stop`` (inclusive); returns each stage's summary."""
    if start not in STAGES or stop not in STAGES or STAGES.index(start) > STAGES.index(stop):
        raise ValueError(f"--from/--to must be stages in order: {', '.join(STAGES)}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = STAGES[STAGES.index(start) : STAGES.index(stop) + 1]
    if cfg.build.pair_format == "holistic" and "collect" in todo and not cfg.collect.keep_correct:
        raise ValueError("build.pair_format: holistic pairs a correct with a wrong solution: set collect.keep_correct")
    path = {s: out / FILES[s] for s in STAGES}
    generator = None
    if any(s in todo for s in ("collect", "rectify")) or ("locate" in todo and cfg.locate.judge == "rollout"):
        generator = make_generator(cfg)
    executor = make_executor(cfg)
    summaries = []
    for stage in todo:
        if stage == "collect":
            from stepdpo.problems import load_problems

            problems = load_problems(cfg.data, split=cfg.split, limit=cfg.limit, seed=cfg.data_seed)
            s = run_collect(generator, problems, path["collect"], cfg.collect, shard, executor)
        elif stage == "locate":
            judge = judge_from_config(cfg.locate, generator, path["locate"])
            # later stages read the shard's own file, so they need no further sharding
            s = run_locate(
                judge, shard_path(path["collect"], shard), shard_path(path["locate"], shard), None, executor=executor
            )
        elif stage == "rectify":
            s = run_rectify(
                generator,
                shard_path(path["locate"], shard),
                shard_path(path["rectify"], shard),
                cfg.rectify,
                None,
                executor,
            )
        else:
            # holistic pairs come from the sampled solutions themselves, not from rectification
            rect = shard_path(path["rectify"], shard)
            source = shard_path(path["collect"], shard) if cfg.build.pair_format == "holistic" else rect
            s = run_build(source, shard_path(path["build"], shard), cfg.build)
            summaries.append(s)
            log.info(s.text())
            s = run_build(
                rect,
                shard_path(out / "pairs_dpo.jsonl", shard),
                BuildConfig(**{**asdict(cfg.build), "pair_format": "dpo"}),
            )
        summaries.append(s)
        log.info(s.text())
    rows = [s.to_dict() for s in summaries]
    if (out / "summary.json").exists() and shard is None:  # a partial run keeps the other stages' summaries
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            ran = {r["stage"] for r in rows}
            before = json.loads((out / "summary.json").read_text())
            rows = [r for r in before if r["stage"].split()[0] not in todo and r["stage"] not in ran] + rows
    atomic_write_text(out / "summary.json", json.dumps(rows, indent=2) + "\n")
    if "build" in todo and shard is None:
        from stepdpo.pipeline.card import TRL_SUFFIX, pipeline_card, write_card, write_trl_pairs

        trl = Path(path["build"]).with_name(Path(path["build"]).stem + TRL_SUFFIX)
        n = write_trl_pairs(path["build"], trl, cfg.model, cfg.collect.prompt_format)
        log.info(f"for TRL's DPOTrainer: {trl} ({n} pairs, the prior steps in the prompt)")
        pairs = [path["build"], trl] + ([out / "pairs_dpo.jsonl"] if cfg.build.pair_format != "holistic" else [])
        write_card(out, pipeline_card(cfg, rows, [str(f) for f in pairs]))
    return summaries
