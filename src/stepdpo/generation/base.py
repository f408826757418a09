"""The generation interface shared by the transformers and vLLM backends."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

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
    """Sampling options shared by the stages that sample (collect, locate, rectify, eval).

    Attributes:
        temperature: sampling temperature (0 = greedy).
        top_p: nucleus sampling threshold.
        max_new_tokens: length limit of one completion.
        prompt_format: ``auto``, ``base`` or ``chat`` (see :mod:`stepdpo.text.prompts`).
        seed: sampling seed.
    """

    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 512
    prompt_format: str = "auto"
    seed: int = 0

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
    (``"eos"``, ``"stop"`` for a stop string, ``"length"``)."""

    text: str
    num_tokens: int
    finish_reason: str


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
