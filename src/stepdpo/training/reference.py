"""The reference model's log-probs of eq. 2, computed once before training and cached.

No reference model is in memory while training: before the first step, the model to be trained
(still equal to the reference) scores every pair's chosen and rejected completion, and the
trainer reads the table. The cache file lets several runs on the same pairs share that work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from stepdpo.records import content_id
from stepdpo.training.packing import EncodedPair, completion_logps, micro_batches


@torch.no_grad()
def reference_logps(model: Any, pairs: list[EncodedPair], cfg: Any, device: torch.device,
                    dtype: torch.dtype, quiet: bool = True) -> torch.Tensor:
    """(pairs, 2) reference log-probs of chosen and rejected, computed once before training."""
    from tqdm.auto import tqdm

    model.eval()
    table = torch.zeros(len(pairs), 2, dtype=torch.float64)
    batches = micro_batches(pairs, list(range(len(pairs))), cfg)
    for order, batch in tqdm(batches, desc="reference log-probs", disable=quiet):
        c, r = completion_logps(model, batch.to(device, dtype))
        table[order, 0], table[order, 1] = c.double().cpu(), r.double().cpu()
    return table


def reference_tables(model, enc, venc, train_pairs, val, cfg, out, accelerator, dtype, quiet):
    """Reference log-probs for training and validation pairs: read from the cache file when it
    holds every pair for this model and these settings, else computed (each process a share) and
    added to it. The cache (``cfg.ref_cache``, default ``out/ref_logps.json``) maps a settings key
    to ``{pair id: [chosen, rejected]}``, so several runs on the same pairs can share one file."""
    import torch.distributed as dist

    key = content_id(cfg.model, cfg.eos, cfg.prompt_format, cfg.max_prompt_tokens, cfg.max_completion_tokens)
    path = Path(cfg.ref_cache) if cfg.ref_cache else out / "ref_logps.json"
    ids = [p.id for p in train_pairs] + [p.id for p in val]
    cache = _read_ref_cache(path)
    hit = cache.get(key, {})
    if all(i in hit for i in ids):
        table = torch.tensor([hit[i] for i in ids], dtype=torch.float64).reshape(len(ids), 2)
    else:
        allenc = enc + venc
        rank, world = accelerator.process_index, accelerator.num_processes
        idx = rank_index(len(allenc), rank, world)
        part = reference_logps(model, [allenc[i] for i in idx], cfg, accelerator.device, dtype,
                               quiet=quiet or not accelerator.is_main_process)
        table = torch.zeros(len(allenc), 2, dtype=torch.float64)
        table[idx] = part
        if world > 1:
            table = table.to(accelerator.device)
            dist.all_reduce(table)
            table = table.cpu()
        if accelerator.is_main_process:
            cache = _read_ref_cache(path)  # another run may have added to it meanwhile
            cache.setdefault(key, {}).update({i: table[j].tolist() for j, i in enumerate(ids)})
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"entries": cache}))
            os.replace(tmp, path)
    return table[: len(enc)], table[len(enc) :]


def _read_ref_cache(path: Path) -> dict[str, dict[str, list[float]]]:
    """The cache's ``{settings key: {pair id: [chosen, rejected]}}``; empty if absent or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def rank_index(n: int, rank: int, world: int) -> list[int]:
    """The items of ``n`` that process ``rank`` of ``world`` handles (every world-th from rank)."""
    return list(range(rank, n, world))
