"""Which generation backend samples a run fastest on this machine, its engines' start-up included.

Each installed backend starts in a child process of its own (so no engine's memory sits beside
another's, and each start is as cold as a run's first) and samples a few of the run's own prompts
with the run's sampling settings: its start-up (imports, model load, warm-up) and its seconds per
sample are timed. The run's sampling time is then projected per backend as

    engine starts x start-up + samples x seconds per sample

from the run's own counts (:class:`Workload`), and the smaller projection wins. The choice comes
back with the probes and the projections, for the caller to record (``stepdpo demo`` writes it to
``results.json`` as ``sampling_backend``). A backend that is not installed is not probed; with only
one installed there is nothing to measure.

    python -m stepdpo.generation.choose SPEC.json   # one probe (the child's side): SPEC's result file
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stepdpo import child_env

BACKENDS = ("hf", "vllm")


@dataclass(frozen=True)
class Workload:
    """What a run will sample: ``samples`` completions in all, over ``starts`` engine starts (one
    per model and pipeline or evaluation); ``note`` says how they were counted."""

    samples: float
    starts: int
    note: str = ""


def installed(backend: str) -> bool:
    """Whether ``backend`` can run here (transformers always can)."""
    return backend == "hf" or importlib.util.find_spec(backend) is not None


def probe(
    backend: str, model: str, prompts: list[str], sampling: dict[str, Any], generator_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Start ``backend`` on ``model`` and sample ``prompts`` once (``sampling``: the fields of
    :class:`~stepdpo.generation.base.SamplingConfig`); the seconds of each, and the texts."""
    t0 = time.perf_counter()
    from stepdpo.generation import SamplingConfig, load_generator

    gen = load_generator(model, backend=backend, **generator_kwargs)
    startup = time.perf_counter() - t0
    t1 = time.perf_counter()
    outs = gen.generate(prompts, SamplingConfig(**sampling))
    seconds = time.perf_counter() - t1
    samples = sum(len(cs) for cs in outs)
    tokens = sum(c.num_tokens for cs in outs for c in cs)
    return {
        "backend": backend,
        "startup_s": round(startup, 2),
        "sampling_s": round(seconds, 2),
        "samples": samples,
        "tokens": tokens,
        "s_per_sample": seconds / max(samples, 1),
        "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
        "dtype": getattr(gen, "dtype", None),
        "texts": [[c.text for c in cs] for cs in outs],
    }


def probe_in_child(
    backend: str,
    model: str,
    prompts: list[str],
    sampling: dict[str, Any],
    generator_kwargs: dict[str, Any],
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """:func:`probe` in a fresh Python process; a probe that fails raises, naming the backend and
    the end of what the child printed."""
    spec: dict[str, Any] = {
        "backend": backend,
        "model": model,
        "prompts": prompts,
        "sampling": sampling,
        "generator_kwargs": generator_kwargs,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path, result = Path(tmp) / "spec.json", Path(tmp) / "probe.json"
        path.write_text(json.dumps({**spec, "result": str(result)}))
        try:
            done = subprocess.run(
                [sys.executable, "-m", "stepdpo.generation.choose", str(path)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=child_env(),  # the child imports this same stepdpo, installed or not
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"probing the {backend} backend on {model}: no answer in {timeout:.0f} s") from e
        if done.returncode != 0 or not result.exists():
            tail = (done.stderr.strip() or done.stdout.strip())[-2000:]
            raise RuntimeError(f"probing the {backend} backend on {model} failed (exit {done.returncode}):\n{tail}")
        return json.loads(result.read_text())


def project(probes: dict[str, dict[str, Any]], work: Workload) -> dict[str, float]:
    """Each probed backend's projected seconds for ``work``: starts x start-up + samples x seconds
    per sample."""
    return {b: round(work.starts * p["startup_s"] + work.samples * p["s_per_sample"], 1) for b, p in probes.items()}


def decide(probes: dict[str, dict[str, Any]], work: Workload) -> dict[str, Any]:
    """The backend whose projection is smallest, with the probes (texts left out) and projections."""
    projected = project(probes, work)
    name = min(projected, key=lambda b: (projected[b], BACKENDS.index(b)))
    other = ", ".join(f"{b} {s:,.0f} s" for b, s in projected.items() if b != name)
    return {
        "name": name,
        "why": f"auto: projected {projected[name]:,.0f} s of sampling for this run against {other}, "
        "each engine's start-up included (measured on this machine)",
        "projected_s": projected,
        "workload": asdict(work),
        "probes": {b: {k: v for k, v in p.items() if k != "texts"} for b, p in probes.items()},
    }


def choose_backend(
    asked: str,
    model: str,
    prompts: list[str],
    sampling: dict[str, Any],
    workload: Any,
    generator_kwargs: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The backend a run samples with: ``asked`` when it names one; for ``"auto"``, the one installed
    backend, or of several the one :func:`decide` picks after probing each. ``workload``: a
    :class:`Workload`, or a function from the transformers probe to one (a run whose sample count
    depends on how often the model errs counts it from the probe's texts)."""
    if asked != "auto":
        if asked not in BACKENDS:
            raise ValueError(f"unknown generation backend {asked!r}; use auto, hf or vllm")
        return {"name": asked, "why": f"--backend {asked}"}
    here = [b for b in BACKENDS if installed(b)]
    missing = [b for b in BACKENDS if b not in here]
    if len(here) == 1:
        return {"name": here[0], "why": f"auto: the only backend installed ({', '.join(missing)} is not)"}
    kwargs = generator_kwargs or {}
    # other work on the cores slows the engines unequally: the reader of a choice should know
    load = {"cpus": os.cpu_count(), "load_1min_before": round(os.getloadavg()[0], 2)}
    probes = {b: probe_in_child(b, model, prompts, sampling, kwargs.get(b, {})) for b in here}
    work = workload(probes["hf"]) if callable(workload) else workload
    return {**decide(probes, work), "machine": load}


def main(argv: list[str] | None = None) -> None:
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    result = Path(spec.pop("result"))
    result.write_text(json.dumps(probe(**spec)))


if __name__ == "__main__":
    main()
