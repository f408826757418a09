"""The dataset card beside the pairs a pipeline builds (``README.md`` in the Hub's format): the
model the data came from, the problems, the sampling, the judge, what each stage kept and
dropped and why, the problems' licence, and how to load the pairs with ``datasets``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from stepdpo.cards import CARD_TAGS, card_text, dropped_text, is_our_card
from stepdpo.progress import log
from stepdpo.recordio import atomic_write_text


def pipeline_card(cfg: Any, summaries: list[dict[str, Any]], pair_files: list[str]) -> str:
    """The card of a pipeline run with ``cfg`` (a :class:`~stepdpo.pipeline.run.PipelineConfig`);
    ``summaries`` are its stages' summaries as ``summary.json`` holds them."""
    from stepdpo.problems import problems_license

    licence = problems_license(cfg.data)
    meta: dict[str, Any] = {
        "tags": CARD_TAGS,
        "license": licence,
        "configs": [{"config_name": Path(f).stem, "data_files": Path(f).name} for f in pair_files],
    }
    locate = {k: v for k, v in asdict(cfg.locate).items() if not (cfg.locate.judge != "llm" and k in _LLM_ONLY)}
    locate.pop("api_key_env", None)  # where a key is read from is nobody's business; the key never is here
    lines = [
        f"# Step-DPO pairs from {cfg.model}",
        "",
        f"Built by `stepdpo pipeline` from the model's own mistakes (Sec. 3.2 of Step-DPO): error "
        f"collection, step localization by the `{cfg.locate.judge}` judge, rectification, pairs.",
        "",
        f"- Source model: `{cfg.model}` ({cfg.backend} backend)",
        f"- Problems: `{cfg.data}` ({cfg.split} split{f', first {cfg.limit}' if cfg.limit else ''}); licence: "
        + (licence or "that of the problems (not known to stepdpo)"),
        f"- Error collection: {_settings(asdict(cfg.collect))}",
        f"- Localization: {_settings(locate)}",
        f"- Rectification: {_settings(asdict(cfg.rectify))}",
        f"- Pairs: {_settings(asdict(cfg.build))}",
        "",
        "## What each stage kept",
        "",
        "| stage | in | out | dropped, by reason |",
        "|---|---|---|---|",
        *(f"| {s['stage']} | {s['rows_in']} | {s['rows_out']} | {dropped_text(s['dropped'])} |" for s in summaries),
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        *(f'{Path(f).stem} = load_dataset("json", data_files="{Path(f).name}", split="train")' for f in pair_files),
        "```",
        "",
        "Each row is a step pair: `prompt` (the problem), `initial_reason_steps` (the prompt's step-wise "
        "opener and the correct prior steps s1..s(k-1)), `chosen` (s_win) and `rejected` (s_lose), and the "
        "whole solutions `full_chosen` / `full_rejected`. `stepdpo train --data FILE` trains on it; a step "
        "completion gets no EOS.",
    ]
    return card_text(meta, lines)


_LLM_ONLY = ("llm_model", "base_url", "concurrency", "reply_format", "cache", "request_timeout")


def _settings(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items() if v not in (None, ""))


def write_card(folder: Path, text: str) -> bool:
    """Write ``folder/README.md`` unless a README that is not one of our cards is there (it is kept)."""
    path = Path(folder) / "README.md"
    if path.exists() and not is_our_card(path):
        log.warning(f"{path}: a README that is not a stepdpo card is there; the dataset card is not written")
        return False
    atomic_write_text(path, text)
    return True


def build_card(inp: str | Path, out: str | Path, summary: dict[str, Any], settings: dict[str, Any]) -> str:
    """The card of pairs built by ``stepdpo build`` alone: how its input says it was made (the
    sampling model and settings, the judge, the problems), the build settings and counts."""
    from collections import Counter

    from stepdpo.exchange import provenance
    from stepdpo.recordio import iter_raw_rows

    made: Counter = Counter()
    for _, row in iter_raw_rows(inp):
        if isinstance(row, dict):
            for part in (row, row.get("error")):
                if isinstance(part, dict):
                    provenance(part, made)
    lines = [
        f"# Step-DPO pairs: {Path(out).name}",
        "",
        f"Built by `stepdpo build` from `{Path(inp).name}`.",
        "",
        *(f"- {what}: {n} rows" for what, n in made.most_common()),
        f"- Pairs: {_settings(settings)}",
        f"- {summary['rows_in']} rows in, {summary['rows_out']} pairs out; dropped: {dropped_text(summary['dropped'])}",
        "",
        "```python",
        "from datasets import load_dataset",
        f'pairs = load_dataset("json", data_files="{Path(out).name}", split="train")',
        "```",
    ]
    meta = {"tags": CARD_TAGS, "configs": [{"config_name": Path(out).stem, "data_files": Path(out).name}]}
    return card_text(meta, lines)
