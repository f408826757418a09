"""The ``llm`` judge: an OpenAI-compatible chat model locates the first wrong step (GPT-4 in Sec. 3.2).

The judge sees the problem, the reference solution and the numbered steps, and returns a verdict
per step as JSON: ``correct``, ``neutral`` or ``incorrect``. The first wrong step is the first
``incorrect`` one. A ``neutral`` step (a restatement, a plan, a harmless remark) is *not* an
error: it neither helps nor hurts, so it stays among the prior steps; taking the first neutral
step as the error (as the reference implementation does) would reject harmless steps.

Calls run with bounded concurrency; rate limits (429), server errors (5xx), timeouts and replies
that do not parse are retried with exponential backoff, and an error that is still not located is
recorded with its reason. The API key is read from an environment variable (``api_key_env``) and
is never written to any output or log. A content-keyed cache (JSONL) makes a rerun free.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stepdpo.net import is_local_url
from stepdpo.records import NO_WRONG_STEP, LocatedError, Solution, content_id
from stepdpo.text.steps import step_body

VERDICTS = ("correct", "neutral", "incorrect")
SYSTEM_PROMPT = "You are a meticulous math teacher. You check a student's solution one step at a time."
USER_PROMPT = """Problem:
{problem}

Reference solution:
{reference}

Student solution, in numbered steps:
{steps}

Judge every step of the student solution, in order. For each step give one verdict:
- "correct": the step is mathematically right and moves towards the answer;
- "neutral": the step neither helps nor hurts (restating the problem, a plan, a harmless remark);
- "incorrect": the step contains an error (a wrong calculation, a wrong fact, a wrong use of the problem's data, or a wrong conclusion).
Reply with JSON only, exactly {n} entries, in this form:
{{"steps": [{{"step": 1, "verdict": "correct", "reason": "short reason"}}]}}"""


class JudgeReplyError(ValueError):
    """A reply that does not hold valid per-step verdicts."""


def build_messages(sol: Solution) -> list[dict[str, str]]:
    steps = "\n".join(f"{i}. {step_body(s)}" for i, s in enumerate(sol.steps, 1))
    user = USER_PROMPT.format(
        problem=sol.problem, reference=sol.reference or f"(final answer: {sol.answer})", steps=steps, n=len(sol.steps)
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_verdicts(reply: str, n_steps: int) -> list[str]:
    """The n verdicts in a judge's reply; raises :class:`JudgeReplyError` if it is not valid."""
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", (reply or "").strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise JudgeReplyError("no JSON object in the reply")
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError as e:
        raise JudgeReplyError(f"malformed JSON ({e.msg})") from e
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list) or len(steps) != n_steps:
        raise JudgeReplyError(
            f"expected {n_steps} step verdicts, got {len(steps) if isinstance(steps, list) else 'none'}"
        )
    verdicts = []
    for i, item in enumerate(steps, 1):
        v = str(item.get("verdict", "")).strip().lower() if isinstance(item, dict) else ""
        if v not in VERDICTS:
            raise JudgeReplyError(f"step {i}: verdict {v!r} is not one of {', '.join(VERDICTS)}")
        verdicts.append(v)
    return verdicts


REPLY_FORMATS = ("json", "json_schema", "llamacpp_schema")


def verdict_schema(n_steps: int) -> dict[str, Any]:
    """The JSON schema of a reply: exactly ``n_steps`` verdicts, each one of :data:`VERDICTS`."""
    item = {
        "type": "object",
        "properties": {
            "step": {"type": "integer"},
            "verdict": {"type": "string", "enum": list(VERDICTS)},
            "reason": {"type": "string"},
        },
        "required": ["step", "verdict", "reason"],
    }
    steps = {"type": "array", "items": item, "minItems": n_steps, "maxItems": n_steps}
    return {"type": "object", "properties": {"steps": steps}, "required": ["steps"]}


def response_format(reply_format: str, n_steps: int) -> dict[str, Any]:
    """The request's ``response_format``: plain JSON mode, or the verdicts' schema in the
    OpenAI form (structured outputs, vLLM) or in llama.cpp's form. A schema holds a weak or local
    judge to one verdict per step, where JSON mode alone lets it copy the one-entry example."""
    if reply_format == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "step_verdicts", "schema": verdict_schema(n_steps)}}
    if reply_format == "llamacpp_schema":
        return {"type": "json_object", "schema": verdict_schema(n_steps)}
    return {"type": "json_object"}


def first_error(verdicts: list[str]) -> int | None:
    """The first ``incorrect`` step (1-based); neutral steps are not errors."""
    return next((i for i, v in enumerate(verdicts, 1) if v == "incorrect"), None)


class LLMJudge:
    """Step localization by an OpenAI-compatible chat endpoint (OpenAI, or a local vLLM server)."""

    name = "llm"

    def __init__(
        self,
        model: str = "gpt-4o",
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_attempts: int = 5,
        timeout: float = 60.0,
        backoff: float = 1.0,
        cache: str | Path | None = None,
        reply_format: str = "json",
        temperature: float = 0.0,
    ):
        try:
            from openai import OpenAI
        except ImportError as e:
            raise ImportError("the llm judge needs the openai client: pip install 'stepdpo[judge]'") from e
        key = os.environ.get(api_key_env)
        if not key and is_local_url(base_url):
            key = "none"  # a server on this machine (vLLM, llama.cpp) started without a key takes any
        if not key:
            raise ValueError(
                f"the llm judge reads its API key from the environment variable {api_key_env}, which is not set"
            )
        self.model, self.base_url, self.api_key_env = model, base_url, api_key_env
        self.concurrency, self.max_attempts, self.backoff = concurrency, max_attempts, backoff
        if reply_format not in REPLY_FORMATS:
            raise ValueError(f"reply_format must be one of {', '.join(REPLY_FORMATS)}, got {reply_format!r}")
        self.reply_format, self.temperature, self.timeout = reply_format, temperature, timeout
        self.client = OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)
        self.cache_path = Path(cache) if cache else None
        self._cache: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.stats = {"calls": 0, "cache_hits": 0, "retries": 0}
        if self.cache_path and self.cache_path.exists():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._cache[row["key"]] = row["verdicts"]
                except (json.JSONDecodeError, KeyError):
                    continue  # a torn last line from a killed run

    def settings(self) -> dict[str, Any]:
        # the key's *name* only; its value never leaves the environment
        return {
            "judge": self.name,
            "model": self.model,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "reply_format": self.reply_format,
        }

    def _call(self, messages: list[dict[str, str]], n_steps: int) -> str:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        kwargs["response_format"] = response_format(self.reply_format, n_steps)
        with self._lock:
            self.stats["calls"] += 1
        resp = self.client.chat.completions.create(**kwargs)
        return resp.choices[0].message.content or ""

    def _judge_one(self, sol: Solution) -> LocatedError:
        import openai

        messages = build_messages(sol)
        key = content_id(self.model, messages)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            with self._lock:
                self.stats["cache_hits"] += 1
            return self._result(sol, cached, cached=True)
        reason = "unknown"
        for attempt in range(self.max_attempts):
            if attempt:
                with self._lock:
                    self.stats["retries"] += 1
                time.sleep(self.backoff * 2 ** (attempt - 1) * (1 + 0.25 * random.random()))
            try:
                verdicts = parse_verdicts(self._call(messages, len(sol.steps)), len(sol.steps))
            except JudgeReplyError as e:
                reason = f"unparsable_reply: {e}"
                continue
            except openai.RateLimitError:
                reason = "rate_limited"
                continue
            except openai.APITimeoutError:
                reason = "timeout"
                continue
            except openai.APIConnectionError:
                reason = "connection_error"
                continue
            except openai.APIStatusError as e:
                reason = f"http_{e.status_code}"
                if e.status_code >= 500:
                    continue
                break  # 4xx other than 429: retrying will not help
            self._store(key, verdicts)
            return self._result(sol, verdicts)
        return LocatedError(sol, None, self.name, evidence={"attempts": attempt + 1}, reason=reason)

    def _store(self, key: str, verdicts: list[str]) -> None:
        with self._lock:
            self._cache[key] = verdicts
            if self.cache_path:
                self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.cache_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": key, "verdicts": verdicts}) + "\n")

    def _result(self, sol: Solution, verdicts: list[str], cached: bool = False) -> LocatedError:
        k = first_error(verdicts)
        return LocatedError(
            sol,
            k,
            self.name,
            evidence={"verdicts": verdicts, "cached": cached},
            reason=None if k is not None else NO_WRONG_STEP,
        )

    def locate(self, solutions: list[Solution]) -> list[LocatedError]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(self._judge_one, solutions))
