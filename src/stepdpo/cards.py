"""Cards in the Hugging Face Hub's format (``README.md``: YAML front matter, then Markdown), as
every model folder and pair folder of this project carries one; one writer, one test of whose
card it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CARD_TAGS = ["step-dpo", "stepdpo"]


def card_text(meta: dict[str, Any], lines: list[str]) -> str:
    """A card: ``meta`` as front matter (None values left out), then ``lines``."""
    import yaml

    front = yaml.safe_dump({k: v for k, v in meta.items() if v is not None}, sort_keys=False)
    return f"---\n{front}---\n\n" + "\n".join(lines) + "\n"


def dropped_text(dropped: dict[str, int]) -> str:
    """A stage's dropped counts by reason, in one phrase."""
    return ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none"


def is_our_card(path: str | Path) -> bool:
    """Whether ``path`` is a card stepdpo wrote (its front matter is tagged ``stepdpo``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return False
    text = path.read_text(errors="replace")
    if not text.startswith("---"):
        return False
    try:
        meta = yaml.safe_load(text.split("---", 2)[1])
    except yaml.YAMLError:
        return False
    return isinstance(meta, dict) and "stepdpo" in (meta.get("tags") or [])
