"""What a stage returns for each input: the records to write, and what it dropped and why.

A stage is a plain function from a chunk of input records to one :class:`ItemResult` per input
(in order); the runner (:mod:`stepdpo.pipeline.runner`) owns sharding, resuming and progress.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ItemResult:
    """A stage's output for one input: records to write, drops by reason, and extra counters."""

    key: str
    records: list[Any] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    counters: Counter = field(default_factory=Counter)
