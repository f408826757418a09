"""The generation interface shared by the transformers and vLLM backends."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from stepdpo.options import option

STEP_STOP = "\nStep "
"""Stop string that ends one reasoning step: the next step's marker at a line start."""


@dataclass
class SamplingConfig:
    """How to sample: ``n`` completions per prompt; temperature 0 means greedy.

    ``stop`` strings end a completion (they are not part of the returned text); generation also
    ends at the tokenizer's end-of-sequence token or after ``max_new_tokens``. ``seed`` makes a
    run repeatable.
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SamplingOptions:
    """Sampling options shared by the stages that sample (collect, locate, rectify, eval)."""

    temperature: float = option(0.8, "Sampling temperature (0: greedy).", min=0.0)
    top_p: float = option(0.95, "Nucleus sampling threshold.", min=1e-6, max=1.0)
    max_new_tokens: int = option(512, "Length limit of one completion, in tokens.", min=1)
    prompt_format: str = option(
        "auto",
        "auto (chat when the tokenizer has a template), base, chat, alpaca, deepseek-math or qwen2-boxed.",
        choices=("auto", "base", "chat", "alpaca", "deepseek-math", "qwen2-boxed"),
    )
    seed: int = option(0, "Sampling seed.")

    def sampling(self, n: int, stop: list[str] | None = None) -> SamplingConfig:
        return SamplingConfig(
            n=n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            stop=list(stop or []),
            seed=self.seed,
        )


@dataclass
class Completion:
    """One generated continuation: its text, its number of tokens, and why it ended
    (``"eos"``, ``"stop"`` for a stop string, ``"length"`` at the token limit or the end of the
    model's context, ``"prompt_too_long"`` when the prompt alone fills the context: nothing was
    generated, and the stages count it as skipped, never truncate the prompt)."""

    text: str
    num_tokens: int
    finish_reason: str


PROMPT_TOO_LONG = "prompt_too_long"


def too_long(n_prompts: int, longest: int, context: int) -> None:
    """Say that prompts were skipped for not fitting the model's context."""
    from stepdpo.progress import log

    log.warning(
        f"{n_prompts} prompt(s) skipped: up to {longest} tokens, and the model's context holds {context} "
        "(prompts are never truncated)"
    )


class Generator(Protocol):
    """What every backend provides."""

    model_name: str
    tokenizer: Any

    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Completion]]:
        """``sampling.n`` completions for each prompt, in prompt order."""
        ...


def row_seed(seed: int, prompt: str, sample: int) -> int:
    """The random stream of one sample: fixed by the seed, the prompt and the sample index, so a
    result does not depend on batching, sharding or resuming."""
    return int(hashlib.sha256(f"{seed}|{sample}|{prompt}".encode()).hexdigest()[:15], 16)
