"""Evaluation: accuracy under the step-wise CoT prompt (greedy, or n samples per problem).

The prompt is the one used for sampling and training (:func:`stepdpo.text.prompts.generation_prompt`),
so accuracy is measured on exactly what Step-DPO optimises. Writes per-problem results (JSONL) and
a summary (JSON) with the model, prompt format, sampling settings and time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepdpo.generation import PROMPT_TOO_LONG, Generator, SamplingOptions
from stepdpo.options import option
from stepdpo.progress import Bar
from stepdpo.recordio import atomic_write_text, write_records
from stepdpo.records import Problem
from stepdpo.tasks import step_checker
from stepdpo.text.grading import grade_detailed
from stepdpo.text.prompts import generation_prompt, resolve_format


@dataclass
class EvalConfig(SamplingOptions):
    """Evaluation options (and the sampling options of :class:`SamplingOptions`, greedy by default)."""

    temperature: float = option(0.0, "Sampling temperature (0: greedy).", min=0.0)
    top_p: float = option(1.0, "Nucleus sampling threshold.", min=1e-6, max=1.0)
    n: int = option(1, "Samples per problem (1 with temperature 0 is greedy decoding).", min=1)
    chunk: int = option(64, "Problems per generation call (progress granularity).", min=1)


@dataclass
class EvalResult:
    summary: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)


def _generate_chunk(generator: Generator, fmt: str, sampling: Any, chunk: list[Problem]) -> list[tuple[str, list]]:
    """Each problem's primer (the pre-filled start of the answer) and its completions."""
    prompts = [generation_prompt(p.problem, tokenizer=generator.tokenizer, prompt_format=fmt) for p in chunk]
    outs = generator.generate([pr for pr, _ in prompts], sampling)
    return [(primer, comps) for (_, primer), comps in zip(prompts, outs)]


def evaluate(
    generator: Generator, problems: list[Problem], cfg: EvalConfig, *, data_name: str = "", executor: Any = None
) -> EvalResult:
    """Accuracy of ``generator`` on ``problems``; with n > 1 also pass@n and majority-free mean.
    ``executor`` (:mod:`stepdpo.pipeline.executors`; default: this process) decodes the chunks."""
    from functools import partial

    from stepdpo.pipeline.executors import LocalExecutor

    if not problems:
        raise ValueError("no problems to evaluate")
    executor = executor or LocalExecutor()
    tok = generator.tokenizer
    fmt = resolve_format(tok, cfg.prompt_format)
    sampling = cfg.sampling(cfg.n)
    checkers = [step_checker(p.source, p.meta) for p in problems]
    checker_for = dict(zip((p.id for p in problems), checkers)) if all(checkers) else None
    rows, t0, gen_tokens = [], time.time(), 0
    bar = Bar("eval", len(problems), unit="problem")
    size = cfg.chunk * getattr(executor, "chunk_scale", 1)
    chunks = [problems[start : start + size] for start in range(0, len(problems), size)]
    for chunk, outs in zip(chunks, executor.map(partial(_generate_chunk, generator, fmt, sampling), chunks)):
        for p, (primer, comps) in zip(chunk, outs):
            samples = []
            for c in comps:
                text = primer + c.text
                g = grade_detailed(text, p.answer)
                s = {
                    "completion": text,
                    "predicted": g.predicted,
                    "correct": g.correct,
                    "tokens": c.num_tokens,
                    "finish_reason": c.finish_reason,
                }
                if checker_for is not None:
                    s["first_error_step"] = checker_for[p.id](p, text, False)[0]
                samples.append(s)
                gen_tokens += c.num_tokens
            rows.append(
                {
                    "id": p.id,
                    "problem": p.problem,
                    "answer": p.answer,
                    "samples": samples,
                    "accuracy": sum(s["correct"] for s in samples) / len(samples),
                }
            )
        bar.update(len(chunk))
    bar.close()
    wall = time.time() - t0
    acc = sum(r["accuracy"] for r in rows) / len(rows)
    summary = {
        "accuracy": acc,
        "n_problems": len(rows),
        "samples_per_problem": cfg.n,
        "model": getattr(generator, "model_name", "model"),
        "backend": getattr(generator, "backend", "custom"),
        "dtype": getattr(generator, "dtype", None),
        "data": data_name,
        "prompt_format": fmt,
        "sampling": sampling.to_dict(),
        "wall_s": round(wall, 2),
        "generated_tokens": gen_tokens,
        "tokens_per_s": round(gen_tokens / wall, 1) if wall > 0 else None,
        # problems whose prompt does not fit the model's context: counted wrong, never truncated
        "prompt_too_long": sum(r["samples"][0]["finish_reason"] == PROMPT_TOO_LONG for r in rows),
    }
    if cfg.n > 1:
        summary["pass_at_n"] = sum(any(s["correct"] for s in r["samples"]) for r in rows) / len(rows)
    if checker_for is not None:
        all_s = [s for r in rows for s in r["samples"]]
        summary["steps_all_correct"] = sum(s["first_error_step"] is None for s in all_s) / len(all_s)
        summary["right_answer_wrong_step"] = sum(
            s["correct"] and s["first_error_step"] is not None for s in all_s
        ) / len(all_s)
    return EvalResult(summary, rows)


def save_result(result: EvalResult, out: str | Path) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``results.jsonl`` into the folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "summary.json", json.dumps(result.summary, indent=2) + "\n")
    write_records(out / "results.jsonl", result.rows)
    return out / "summary.json", out / "results.jsonl"
