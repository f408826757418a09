"""Text generation behind one small interface (:class:`Generator`), with a transformers backend and
a vLLM backend; stages call :func:`load_generator` and never know which one runs."""

from __future__ import annotations

from typing import Any

from stepdpo.generation.base import (
    PROMPT_TOO_LONG,
    Completion,
    Generator,
    SamplingConfig,
    SamplingOptions,
    row_seed,
)

__all__ = [
    "PROMPT_TOO_LONG",
    "Completion",
    "Generator",
    "SamplingConfig",
    "SamplingOptions",
    "load_generator",
    "row_seed",
]


def load_generator(model: str, backend: str = "auto", **kwargs: Any) -> Generator:
    """A generator for ``model`` (a local folder or a hub id).

    ``backend``: ``"hf"`` (transformers), ``"vllm"``, or ``"auto"`` (vLLM when it is installed and
    a GPU is present, else transformers).
    """
    if backend == "auto":
        backend = "hf"
        try:
            import importlib.util

            import torch

            if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None:
                backend = "vllm"
        except ImportError:
            pass
    if backend == "hf":
        from stepdpo.generation.hf import HFGenerator

        return HFGenerator(model, **kwargs)
    if backend == "vllm":
        from stepdpo.generation.vllm import VLLMGenerator

        return VLLMGenerator(model, **kwargs)
    raise ValueError(f"unknown generation backend {backend!r}; use auto, hf or vllm")
