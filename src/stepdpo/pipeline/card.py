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
    trl = [f for f in pair_files if f.endswith(TRL_SUFFIX)]
    rest = [f for f in pair_files if not f.endswith(TRL_SUFFIX)]
    configs = [{"config_name": "default", "data_files": Path(f).name} for f in trl]
    meta: dict[str, Any] = {
        "tags": CARD_TAGS,
        "license": licence,
        "configs": configs + [{"config_name": Path(f).stem, "data_files": Path(f).name} for f in rest],
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
        *(_trl_route(Path(trl[0]).name, cfg) if trl else []),
        "With stepdpo (`stepdpo train --data FILE` trains on the step pairs; a step completion gets no EOS):",
        "",
        "```python",
        "from datasets import load_dataset",
        *(f'{Path(f).stem} = load_dataset("json", data_files="{Path(f).name}", split="train")' for f in rest),
        "```",
        "",
        "Each row is a step pair: `prompt` (the problem), `initial_reason_steps` (the prompt's step-wise "
        "opener and the correct prior steps s1..s(k-1)), `chosen` (s_win) and `rejected` (s_lose), and the "
        "whole solutions `full_chosen` / `full_rejected`.",
    ]
    return card_text(meta, lines)


TRL_SUFFIX = ".trl.jsonl"
"""The TRL-ready preference file a pipeline writes beside its step pairs (``pairs.trl.jsonl``)."""


def _trl_route(name: str, cfg: Any) -> list[str]:
    return [
        f"With TRL's `DPOTrainer`: the default config, `{name}`, whose `prompt` holds the problem and the prior "
        f"steps s1..s(k-1) as `{cfg.model}` read them when sampling, with `chosen`/`rejected` the step k after them.",
        "",
        "```python",
        "from datasets import load_dataset",
        f'train_dataset = load_dataset("json", data_files="{name}", split="train")  # or load_dataset(THIS_FOLDER)',
        "```",
        "",
        "Do not give TRL `pairs.jsonl` itself: it has `prompt`, `chosen` and `rejected` columns too, but its "
        "`prompt` is the problem alone (the prior steps are in `initial_reason_steps`, which TRL ignores), so TRL "
        "would train step k as if it were step 1. TRL also appends EOS to every completion, where a step has "
        "none (the solution goes on after it): `stepdpo train` trains without it.",
        "",
    ]


def write_trl_pairs(pairs: str | Path, out: str | Path, model: str, prompt_format: str) -> int:
    """The step pairs in ``pairs`` as TRL's DPOTrainer reads them (``prompt`` with the prior steps
    folded in under the model's prompt format, ``chosen``, ``rejected``); returns the row count."""
    import json

    from stepdpo.exchange import to_preference
    from stepdpo.models import load_tokenizer
    from stepdpo.recordio import read_records
    from stepdpo.text.prompts import resolve_format

    tokenizer = load_tokenizer(model)
    fmt = resolve_format(tokenizer, prompt_format)
    rows, _ = read_records(pairs, "step_pair")
    text = "".join(json.dumps(to_preference(p, fmt, tokenizer), ensure_ascii=False) + "\n" for p in rows)
    atomic_write_text(Path(out), text)
    return len(rows)


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
