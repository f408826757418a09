"""Error collection (Sec. 3.2, step 1): sample step-wise solutions, keep the wrong ones (D1).

Each problem is prompted with the step-wise CoT prompt ("Let's think step by step.\\nStep 1:");
k solutions are sampled from the reference model and graded against the gold answer. Wrong
solutions become :class:`~stepdpo.records.Solution` records; right ones are counted. Every record
carries the model, prompt format and sampling settings that produced it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from stepdpo.generation import PROMPT_TOO_LONG, Generator, SamplingOptions
from stepdpo.options import option
from stepdpo.records import Problem, Solution, content_id
from stepdpo.stages.base import ItemResult
from stepdpo.text.grading import grade_detailed
from stepdpo.text.prompts import generation_prompt, resolve_format
from stepdpo.text.steps import split_steps


@dataclass
class CollectConfig(SamplingOptions):
    """Options of error collection (and the sampling options of :class:`SamplingOptions`)."""

    k: int = option(8, "Solutions sampled per problem.", min=1)
    keep_correct: bool = option(False, "Also write the right solutions (marked correct: true).")


def make_solution(problem: Problem, text: str, sample_index: int, generator_info: dict[str, Any]) -> Solution | str:
    """A graded Solution from a sampled text, or the reason it cannot be used."""
    _, steps = split_steps(text)
    steps = [s for s in steps if s.strip()]
    if not steps:
        return "no_steps"
    g = grade_detailed(text, problem.answer)
    return Solution(
        id=content_id(problem.id, problem.problem, sample_index, generator_info),
        problem_id=problem.id,
        problem=problem.problem,
        answer=problem.answer,
        completion="".join(steps),
        steps=steps,
        correct=g.correct,
        predicted=g.predicted,
        dataset=problem.source,
        reference=problem.solution,
        generator=generator_info,
        meta=dict(problem.meta),
    )


def collect_chunk(generator: Generator, problems: list[Problem], cfg: CollectConfig) -> Iterable[ItemResult]:
    """Sample and grade ``cfg.k`` solutions for each problem of a chunk."""
    fmt = resolve_format(generator.tokenizer, cfg.prompt_format)
    sampling = cfg.sampling(cfg.k)
    info = {"model": generator.model_name, "prompt_format": fmt, "sampling": sampling.to_dict(), "stage": "collect"}
    prompts = [generation_prompt(p.problem, tokenizer=generator.tokenizer, prompt_format=fmt) for p in problems]
    outputs = generator.generate([pr for pr, _ in prompts], sampling)
    for p, (_, primer), comps in zip(problems, prompts, outputs):
        res = ItemResult(key=p.id)
        for i, c in enumerate(comps):
            if c.finish_reason == PROMPT_TOO_LONG:
                res.dropped[PROMPT_TOO_LONG] += 1
                continue
            sol = make_solution(p, primer + c.text, i, info)
            if isinstance(sol, str):
                res.dropped[sol] += 1
                continue
            if c.finish_reason == "length":
                res.counters["truncated"] += 1
            res.counters["correct" if sol.correct else "wrong"] += 1
            if not sol.correct or cfg.keep_correct:
                res.records.append(sol)
        yield res


def collect_settings(generator: Generator, cfg: CollectConfig) -> dict[str, Any]:
    """What identifies a collect run (hashed into the resume ledger)."""
    return {"model": generator.model_name, **asdict(cfg)}
