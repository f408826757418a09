"""Splitting a solution into reasoning steps and joining them back, losslessly.

Step-DPO's unit of preference is one step (Sec. 3.1). Solutions are written as "Step i:" steps
after the prompt "Let's think step by step." (Sec. 3.2); a solution without markers falls back to
blank-line paragraphs, then to lines. Every split keeps the text verbatim, so
``join_steps(*split_steps(text)) == text`` always holds.
"""

from __future__ import annotations

import re

COT_TRIGGER = "Let's think step by step.\n"
"""The step-wise chain-of-thought opener that precedes "Step 1:" (Sec. 3.2)."""

_MARKER = re.compile(r"(?m)^[ \t]*(?:\*\*|#{1,6}[ \t]*)?Step[ \t]+(\d+)[ \t]*[:.]")
_MARKER_PREFIX = re.compile(r"^[ \t]*(?:\*\*|#{1,6}[ \t]*)?Step[ \t]+\d+[ \t]*[:.](?:\*\*)?[ \t]*")


def split_steps(text: str) -> tuple[str, list[str]]:
    """Split ``text`` into ``(preamble, steps)``; each step keeps its marker and trailing newline.

    The preamble is whatever precedes the first "Step i:" marker (e.g. the CoT opener). Without
    markers, the steps are blank-line separated paragraphs, or lines if there is one paragraph.
    """
    starts = [m.start() for m in _MARKER.finditer(text)]
    if starts:
        bounds = starts + [len(text)]
        steps = [text[a:b] for a, b in zip(bounds, bounds[1:])]
        return text[: starts[0]], steps
    pieces = re.split(r"(?<=\n\n)(?=[^\n])", text)
    if len(pieces) == 1:
        pieces = re.split(r"(?<=\n)(?=[^\n])", text)
    return "", [p for p in pieces if p]


def has_step_markers(text: str) -> bool:
    """Whether ``text`` contains at least one "Step i:" marker at a line start."""
    return _MARKER.search(text) is not None


def join_steps(preamble: str, steps: list[str]) -> str:
    """Inverse of :func:`split_steps`."""
    return preamble + "".join(steps)


def step_body(step: str) -> str:
    """The content of a step without its "Step i:" marker and surrounding space."""
    return _MARKER_PREFIX.sub("", step, count=1).strip()


def strip_marker(step: str) -> str:
    """``step`` without the "Step i:" marker that opens it (and the spaces after it), nothing else."""
    return _MARKER_PREFIX.sub("", step, count=1)


def step_marker(k: int) -> str:
    """The marker that opens step k (1-based); generation is primed with it."""
    return f"Step {k}:"


def prior_text(steps: list[str]) -> str:
    """The text of the prior steps s1..s(k-1) as they follow the CoT opener, newline-terminated."""
    text = "".join(steps)
    if text and not text.endswith("\n"):
        text += "\n"
    return text
