"""The data pipeline of Sec. 3.2 end to end: collect -> locate -> rectify -> build.

Each ``run_*`` function reads its input file, runs one stage through the resumable runner and
writes its output; ``stepdpo pipeline`` runs them in order from one YAML config, ``--from/--to``
runs a part. Files in the output folder: ``errors.jsonl`` (D1), ``located.jsonl`` (D2),
``rectified.jsonl``, ``pairs.jsonl`` (Step-DPO pairs, D) and ``pairs_dpo.jsonl`` (whole-solution
pairs for the vanilla-DPO baseline), plus ``summary.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .build import BuildConfig, build_pairs
from .collect import CollectConfig, collect_chunk, collect_settings
from .io import read_records, write_records
from .rectify import RectifyConfig, rectify_chunk, rectify_settings
from .runner import StageSummary, run_stage, shard_path

STAGES = ("collect", "locate", "rectify", "build")
FILES = {"collect": "errors.jsonl", "locate": "located.jsonl", "rectify": "rectified.jsonl", "build": "pairs.jsonl"}


@dataclass
class LocateConfig:
    """Options of ``stepdpo locate``.

    Attributes:
        judge: ``rollout``, ``verifier`` or ``llm``.
        m: rollouts per prefix check (rollout judge).
        search: ``binary``, ``linear`` or ``full`` (rollout judge).
        early_stop: sample m/2 first and the rest only if none succeeded (rollout judge).
        temperature: rollout sampling temperature. 1.0 explores past a weak policy's systematic errors;
            a lower one (0.5) keeps a policy that slips at random from reaching the answer through
            a second slip that cancels the first (README, "Long chains").
        max_new_tokens: rollout length limit.
        llm_model: the judge model (llm judge).
        base_url: an OpenAI-compatible endpoint, e.g. a local vLLM server (llm judge).
        api_key_env: environment variable holding the API key (llm judge).
        concurrency: parallel requests (llm judge).
        cache: reply cache file (llm judge; default beside the output).
        seed: rollout seed.
    """

    judge: str = "rollout"
    m: int = 8
    search: str = "binary"
    early_stop: bool = True
    temperature: float = 1.0
    max_new_tokens: int = 512
    llm_model: str = "gpt-4o"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    cache: str | None = None
    seed: int = 0


def make_stage_judge(cfg: LocateConfig, generator: Any, out: Path) -> Any:
    from .locate import make_judge

    if cfg.judge == "rollout":
        return make_judge("rollout", generator, m=cfg.m, search=cfg.search, early_stop=cfg.early_stop,
                          temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    if cfg.judge == "llm":
        cache = cfg.cache or str(out.with_name("llm_judge_cache.jsonl"))
        return make_judge("llm", model=cfg.llm_model, base_url=cfg.base_url, api_key_env=cfg.api_key_env,
                          concurrency=cfg.concurrency, cache=cache)
    return make_judge(cfg.judge)


def run_collect(generator: Any, problems: list, out: str | Path, cfg: CollectConfig,
                shard: tuple[int, int] | None = None, quiet: bool = False) -> StageSummary:
    chunk = max(1, 64 // max(1, cfg.k))
    return run_stage("collect", problems, lambda ps: collect_chunk(generator, ps, cfg), out,
                     settings=collect_settings(generator, cfg), shard=shard, chunk_size=chunk, quiet=quiet)


def run_locate(judge: Any, inp: str | Path, out: str | Path, shard: tuple[int, int] | None = None,
               quiet: bool = False, chunk_size: int = 16) -> StageSummary:
    from .locate import locate_chunk

    solutions, _ = read_records(inp, "solution")
    return run_stage("locate", solutions, lambda ss: locate_chunk(judge, ss), out, settings=judge.settings(),
                     shard=shard, chunk_size=chunk_size, quiet=quiet)


def run_rectify(generator: Any, inp: str | Path, out: str | Path, cfg: RectifyConfig,
                shard: tuple[int, int] | None = None, quiet: bool = False) -> StageSummary:
    errors, _ = read_records(inp, "located_error")
    chunk = max(1, 64 // max(1, cfg.n))
    return run_stage("rectify", errors, lambda es: rectify_chunk(generator, es, cfg), out,
                     settings=rectify_settings(generator, cfg), shard=shard, chunk_size=chunk, quiet=quiet)


def run_build(inp: str | Path, out: str | Path, cfg: BuildConfig) -> StageSummary:
    import time

    t0 = time.time()
    rects, _ = read_records(inp, "rectification")
    pairs, dropped = build_pairs(rects, cfg)
    write_records(out, pairs)
    return StageSummary(stage=f"build ({cfg.fmt})", rows_in=len(rects), rows_out=len(pairs), dropped=dropped,
                        wall_s=time.time() - t0, output=str(out))


@dataclass
class PipelineConfig:
    """A whole pipeline run (``stepdpo pipeline --config FILE.yaml``); every section is optional.

    Attributes:
        model: the reference model (folder, hub id, or ``default``).
        data: problems (synthetic, gsm8k, math, a file ...), their split and how many.
        data_seed: which synthetic problems (default: the training set's seed).
        out: output folder.
        backend: generation backend (auto, hf, vllm).
        batch_size: sequences decoded together (hf backend).
    """

    model: str = "default"
    data: str = "synthetic"
    split: str = "train"
    limit: int | None = 500
    data_seed: int | None = None
    out: str = "runs/pipeline"
    backend: str = "auto"
    batch_size: int = 64
    collect: CollectConfig = field(default_factory=CollectConfig)
    locate: LocateConfig = field(default_factory=LocateConfig)
    rectify: RectifyConfig = field(default_factory=RectifyConfig)
    build: BuildConfig = field(default_factory=BuildConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PipelineConfig":
        sections = {"collect": CollectConfig, "locate": LocateConfig, "rectify": RectifyConfig, "build": BuildConfig}
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown pipeline option(s): {', '.join(sorted(unknown))}")
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k in sections:
                sec_fields = {f.name for f in fields(sections[k])}
                bad = set(v or {}) - sec_fields
                if bad:
                    raise ValueError(f"unknown option(s) in '{k}': {', '.join(sorted(bad))}")
                kw[k] = sections[k](**(v or {}))
            else:
                kw[k] = v
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PipelineConfig":
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML ({e})") from e
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of options")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e


def synthetic_pipeline(model: str, limit: int, out: str | Path, judge: str = "verifier", max_new_tokens: int = 200,
                       k: int = 4, n: int = 8, data_seed: int | None = None) -> PipelineConfig:
    """The pipeline the demo and ``iterate`` run on the embedded synthetic task (CPU, transformers)."""
    return PipelineConfig(model=model, data="synthetic", split="train", limit=limit, data_seed=data_seed, out=str(out),
                          backend="hf", batch_size=128,
                          collect=CollectConfig(k=k, max_new_tokens=max_new_tokens),
                          locate=LocateConfig(judge=judge, max_new_tokens=max_new_tokens),
                          rectify=RectifyConfig(n=n, max_new_tokens=max_new_tokens),
                          build=BuildConfig(max_per_error=1, max_per_problem=4))


def run_pipeline(cfg: PipelineConfig, start: str = "collect", stop: str = "build",
                 shard: tuple[int, int] | None = None, quiet: bool = False) -> list[StageSummary]:
    """Run the stages from ``start`` to ``stop`` (inclusive); returns each stage's summary."""
    if start not in STAGES or stop not in STAGES or STAGES.index(start) > STAGES.index(stop):
        raise ValueError(f"--from/--to must be stages in order: {', '.join(STAGES)}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = STAGES[STAGES.index(start) : STAGES.index(stop) + 1]
    path = {s: out / FILES[s] for s in STAGES}
    generator = None
    if any(s in todo for s in ("collect", "rectify")) or ("locate" in todo and cfg.locate.judge == "rollout"):
        from .generation import load_generator

        generator = load_generator(cfg.model, backend=cfg.backend,
                                   **({"batch_size": cfg.batch_size} if cfg.backend != "vllm" else {}))
    summaries = []
    for stage in todo:
        if stage == "collect":
            from .data import load_problems

            problems = load_problems(cfg.data, split=cfg.split, limit=cfg.limit, seed=cfg.data_seed)
            s = run_collect(generator, problems, path["collect"], cfg.collect, shard, quiet)
        elif stage == "locate":
            judge = make_stage_judge(cfg.locate, generator, path["locate"])
            # later stages read the shard's own file, so they need no further sharding
            s = run_locate(judge, shard_path(path["collect"], shard), shard_path(path["locate"], shard), None, quiet)
        elif stage == "rectify":
            s = run_rectify(generator, shard_path(path["locate"], shard), shard_path(path["rectify"], shard),
                            cfg.rectify, None, quiet)
        else:
            rect = shard_path(path["rectify"], shard)
            s = run_build(rect, shard_path(path["build"], shard), cfg.build)
            summaries.append(s)
            s = run_build(rect, shard_path(out / "pairs_dpo.jsonl", shard), BuildConfig(**{**asdict(cfg.build), "fmt": "dpo"}))
        summaries.append(s)
        if not quiet:
            print(s.text())
    (out / "summary.json").write_text(json.dumps([s.to_dict() for s in summaries], indent=2) + "\n")
    return summaries
