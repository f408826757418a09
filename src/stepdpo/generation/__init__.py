"""Text generation behind one small interface (:class:`Generator`), with a transformers backend and
a vLLM backend; stages call :func:`load_generator` and never know which one runs."""

from .base import Completion, Generator, SamplingConfig, SamplingOptions, load_generator

__all__ = ["Completion", "Generator", "SamplingConfig", "SamplingOptions", "load_generator"]
