"""Which backend the demo samples with (``--backend``, default ``auto``).

``auto`` probes each installed backend on this machine with the run's own first collection
prompts and sampling settings, then takes the one projected faster for the run's sizes, every
engine start included (:mod:`stepdpo.generation.choose`). Where only transformers is installed
(vLLM is an extra) nothing is probed. The choice, with its probes and projections, is written to
``OUT/sampling_backend.json`` before any stage samples and goes into ``results.json``; a rerun in
that folder reuses it, so one folder's records all come from one engine, and a rerun that names
another backend is refused rather than mixing them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from stepdpo.experiments.common import DemoConfig, run_key
from stepdpo.generation.choose import Workload, choose_backend
from stepdpo.progress import log
from stepdpo.recordio import atomic_write_text
from stepdpo.records import Problem


def sampler(cfg: DemoConfig) -> str:
    """The backend ``cfg``'s stages and evaluations sample with: ``--backend``, as the demo resolved
    ``auto`` before any stage sampled (:mod:`stepdpo.experiments.sampler`); a part run on its own
    with ``auto`` unresolved samples with transformers."""
    return "hf" if cfg.backend == "auto" else cfg.backend


def eval_key(cfg: DemoConfig, model_key: str, held: list[Problem], sampled: bool) -> str:
    """The key of one evaluation: the model, the decoding, the problems (and the backend, if not
    transformers)."""
    st = cfg.setting
    decoding = (
        {k: st[k] for k in ("max_new_tokens", "temperature", "top_p", "data")} if sampled else st["max_new_tokens"]
    )
    engine = () if sampler(cfg) == "hf" else (sampler(cfg),)
    return run_key(model_key, sampled, decoding, [(p.id, p.problem, p.answer) for p in held], *engine)


def evaluate_model(cfg: DemoConfig, model: str, held: list[Problem], out: Path, sampled: bool = False) -> float:
    """Held-out accuracy of ``model``: greedy, or with ``sampled`` one sample per problem at the
    collection temperature (seeded); per-problem results go to ``out``."""
    from stepdpo.generation import load_generator
    from stepdpo.generation.hf import HFGenerator
    from stepdpo.stages.evaluate import EvalConfig, evaluate, save_result

    st = cfg.setting
    ecfg = EvalConfig(max_new_tokens=st["max_new_tokens"])
    if sampled:
        ecfg = EvalConfig(max_new_tokens=st["max_new_tokens"], temperature=st["temperature"], top_p=st["top_p"])
    if sampler(cfg) == "hf":
        gen = HFGenerator(model, batch_size=128, device="cpu", dtype="fp32")
    else:
        gen = load_generator(model, backend=sampler(cfg))
    res = evaluate(gen, held, ecfg, data_name=st["data"])
    save_result(res, out)
    return res.summary["accuracy"]


PROBE_PROMPTS = 32
"""Collection prompts each backend samples (``k`` samples each) when ``auto`` must measure."""


def demo_workload(cfg: DemoConfig, sets: dict[str, Any], seeds: list[int], arms: tuple[str, ...], sampled: bool):
    """A function from the transformers probe to the demo's :class:`Workload`: ``k`` samples per
    collection problem (every seed's and the common validation problems'), ``n`` per wrong one (the
    probe's share of wrong samples, graded against the gold answers), one greedy solution per test
    problem and arm (and one sampled, for a sampled task); one engine start per pipeline run and
    per evaluation. Every sample is counted at the probe's seconds per whole completion, so step-k
    samples (the step rule) are counted long."""
    from stepdpo.text.grading import grade
    from stepdpo.text.prompts import step_marker

    st = cfg.setting
    collect = (sum(len(sets["collect"][s]) for s in seeds) + len(sets["common"])) * st["k"]
    tested = sum(len(sets["test"][s]) for s in seeds) * len(arms) * (2 if sampled else 1)
    answers = [p.answer for p in sets["collect"][seeds[0]][:PROBE_PROMPTS]]

    def count(probe: dict[str, Any]) -> Workload:
        texts = [(t, a) for ts, a in zip(probe["texts"], answers) for t in ts]
        wrong = sum(not grade(step_marker(1) + t, a) for t, a in texts) / max(len(texts), 1)
        return Workload(
            samples=round(collect * (1 + wrong * st["n"]) + tested),
            starts=len(seeds) * (1 + len(arms) * (2 if sampled else 1)) + 1,
            note=f"{collect} collection samples, {wrong:.0%} of them wrong (the probe's) with {st['n']} "
            f"continuations each, {tested} test solutions",
        )

    return count


def choose_sampler(
    cfg: DemoConfig, out: Path, sets: dict[str, Any], seeds: list[int], arms: tuple[str, ...], sampled: bool
) -> tuple[DemoConfig, dict[str, Any]]:
    """``cfg`` with ``backend`` resolved, and the choice as ``results.json`` records it."""
    path = out / "sampling_backend.json"
    if path.exists():
        try:
            earlier = json.loads(path.read_text())
            name = earlier["name"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: unreadable ({e}); delete it to choose the backend again") from e
        if cfg.backend not in ("auto", name):
            raise ValueError(
                f"{path}: this folder's samples came from the {name} backend, and --backend {cfg.backend} would "
                f"mix engines in one run: use another --out, or --backend {name} (or auto)"
            )
        log.info(f"sampling backend: {name} (kept from {path})")
        return replace(cfg, backend=name), earlier
    from stepdpo.models import load_tokenizer
    from stepdpo.text.prompts import generation_prompt

    st = cfg.setting
    tok = load_tokenizer(st["model"])
    problems = sets["collect"][seeds[0]][:PROBE_PROMPTS]
    sampling = {
        "n": st["k"],
        "temperature": st["temperature"],
        "top_p": st["top_p"],
        "max_new_tokens": st["max_new_tokens"],
        "seed": seeds[0],
    }
    choice = choose_backend(
        cfg.backend,
        st["model"],
        [generation_prompt(p.problem, tokenizer=tok)[0] for p in problems],
        sampling,
        demo_workload(cfg, sets, seeds, arms, sampled),
        generator_kwargs={"hf": {"batch_size": 128}},
    )
    log.info(f"sampling backend: {choice['name']} ({choice['why']})")
    atomic_write_text(path, json.dumps(choice, indent=2) + "\n")
    return replace(cfg, backend=choice["name"]), choice
