"""The judge interface and the locate stage's per-chunk function."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stepdpo.options import option
from stepdpo.records import LocatedError, Solution
from stepdpo.stages.base import ItemResult
from stepdpo.stages.locate.llm import REPLY_FORMATS


class Judge(Protocol):
    """Finds the first wrong step of wrong solutions.

    ``locate`` returns one :class:`LocatedError` per solution, in order; ``first_error_step`` is
    None (with ``reason``) where the judge could not locate the error.
    """

    name: str

    def locate(self, solutions: list[Solution]) -> list[LocatedError]: ...

    def settings(self) -> dict[str, Any]: ...


def locate_chunk(judge: Judge, solutions: list[Solution], include_correct: bool = False) -> Iterable[ItemResult]:
    """Locate the errors of a chunk; unlocated ones are written too, with their reason. Solutions
    graded correct are skipped unless ``include_correct`` (measuring a judge, which should find no
    wrong step in them)."""
    todo = [s for s in solutions if include_correct or not s.correct]
    located = iter(judge.locate(todo)) if todo else iter(())
    checked: set[tuple[str, str | None]] = set()  # problems whose R(0) check this chunk paid for
    for sol in solutions:
        res = ItemResult(key=sol.id)
        if sol.correct and not include_correct:
            res.dropped["solution_is_correct"] += 1
            yield res
            continue
        err = next(located)
        res.records.append(err)
        if "root_rollouts" in err.evidence and (sol.problem, sol.answer) not in checked:
            checked.add((sol.problem, sol.answer))
            res.counters["rollouts"] += int(err.evidence["root_rollouts"])
        if err.first_error_step is None:
            res.counters[f"unlocated:{err.reason or 'unknown'}"] += 1
        else:
            res.counters["located"] += 1
            res.counters["rollouts"] += int(err.evidence.get("rollouts", 0))
        yield res


def make_judge(name: str, generator: Any = None, **options: Any) -> Judge:
    """A judge by name: ``verifier``, ``rollout`` (needs ``generator``) or ``llm``."""
    if name == "verifier":
        from stepdpo.stages.locate.verifier import VerifierJudge

        return VerifierJudge(**options)
    if name == "rollout":
        if generator is None:
            raise ValueError("the rollout judge needs a model to sample from (--model)")
        from stepdpo.stages.locate.rollout import RolloutJudge

        return RolloutJudge(generator, **options)
    if name == "llm":
        from stepdpo.stages.locate.llm import LLMJudge

        return LLMJudge(**options)
    raise ValueError(f"unknown judge {name!r}; use llm, rollout or verifier")


@dataclass
class LocateConfig:
    """Options of step localization."""

    judge: str = option(
        "rollout",
        "rollout (Monte-Carlo rollouts, no external judge), verifier (the task's exact "
        "checker) or llm (an OpenAI-compatible chat model).",
        choices=("rollout", "verifier", "llm"),
    )
    m: int = option(8, "Rollouts per prefix check (rollout judge).", min=1)
    search: str = option("binary", "binary, linear or full (rollout judge).", choices=("binary", "linear", "full"))
    early_stop: bool = option(True, "Sample m/2 rollouts first, the rest only if none succeeded (rollout judge).")
    temperature: float = option(
        1.0,
        "Rollout temperature (rollout judge); 0.5 for a policy whose errors are random "
        "slips, such as default-long (docs: the localization benchmark).",
        min=0.0,
    )
    max_new_tokens: int = option(512, "Rollout length limit, in tokens.", min=1)
    llm_model: str = option("gpt-4o", "The judge model (llm judge).")
    base_url: str | None = option(None, "An OpenAI-compatible endpoint, e.g. a local vLLM server (llm judge).")
    api_key_env: str = option(
        "OPENAI_API_KEY",
        "Environment variable holding the API key (llm judge; a server on this machine needs none).",
    )
    concurrency: int = option(8, "Parallel requests (llm judge).", min=1)
    request_timeout: float = option(
        60.0, "Seconds one judge request may take (llm judge; a judge served on a CPU needs minutes).", min=0.001
    )
    reply_format: str = option(
        "json",
        "llm judge replies: json (any JSON object: OpenAI's JSON mode), json_schema (held to the "
        "verdicts' schema, one verdict per step: structured outputs, vLLM) or llamacpp_schema (the "
        "same schema in llama.cpp's form).",
        choices=REPLY_FORMATS,
    )
    cache: str | None = option(None, "Reply cache file (llm judge; default beside the output).")
    seed: int = option(0, "Rollout seed.")


def judge_from_config(cfg: LocateConfig, generator: Any, out: Path) -> Judge:
    """The judge ``cfg`` describes; the llm judge's reply cache defaults to a file beside ``out``."""
    if cfg.judge == "rollout":
        return make_judge(
            "rollout",
            generator,
            m=cfg.m,
            search=cfg.search,
            early_stop=cfg.early_stop,
            temperature=cfg.temperature,
            max_new_tokens=cfg.max_new_tokens,
            seed=cfg.seed,
        )
    if cfg.judge == "llm":
        cache = cfg.cache or str(out.with_name("llm_judge_cache.jsonl"))
        return make_judge(
            "llm",
            model=cfg.llm_model,
            base_url=cfg.base_url,
            api_key_env=cfg.api_key_env,
            concurrency=cfg.concurrency,
            cache=cache,
            reply_format=cfg.reply_format,
            timeout=cfg.request_timeout,
        )
    return make_judge(cfg.judge)
