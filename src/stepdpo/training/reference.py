"""The reference model's log-probs of eq. 2, computed once before training and cached.

No reference model is in memory while training: before the first step, the model to be trained
(still equal to the reference) scores every pair's chosen and rejected completion, and the
trainer reads the table. The cache file lets several runs on the same pairs share that work.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from stepdpo.progress import progress
from stepdpo.recordio import atomic_write_text
from stepdpo.records import content_id
from stepdpo.training.packing import EncodedPair, completion_logps, micro_batches


@torch.no_grad()
def reference_logps(
    model: Any, pairs: list[EncodedPair], cfg: Any, device: torch.device, dtype: torch.dtype, show: bool = True
) -> torch.Tensor:
    """(pairs, 2) reference log-probs of chosen and rejected, computed once before training."""
    model.eval()
    table = torch.zeros(len(pairs), 2, dtype=torch.float64)
    batches = micro_batches(pairs, list(range(len(pairs))), cfg)
    with progress("reference log-probs", len(pairs), unit="pair", enabled=show) as bar:
        for order, batch in batches:
            c, r = completion_logps(model, batch.to(device, dtype))
            table[order, 0], table[order, 1] = c.double().cpu(), r.double().cpu()
            bar.update(len(order))
    return table


def weights_fingerprint(model: Any) -> str:
    """A hash of every tensor of the model's state (name, dtype, shape and bytes): what the
    reference log-probs depend on besides the tokens, so that new weights in the same folder, or
    the same weights in another dtype, never reuse the old model's numbers."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in model.state_dict().items():
        t = tensor.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def pair_key(pair: EncodedPair) -> str:
    """A pair's cache key: the exact token ids scored (prompt, chosen, rejected). It changes with the
    pair's text, the tokenizer, the prompt template, the EOS rule and truncation."""
    return content_id(pair.prompt, pair.chosen, pair.rejected)


def reference_tables(model, enc, venc, cfg, out, accelerator, dtype):
    """Reference log-probs for training and validation pairs: read from the cache file where it holds
    them, the rest computed (each process a share) and added to it.

    The cache (``cfg.ref_cache``, default ``out/ref_logps.json``) maps a model key (a hash of the
    weights as loaded, their dtype included) to ``{pair key: [chosen, rejected]}``, where a pair's key
    is the hash of its token ids (:func:`pair_key`), so several runs on the same pairs share one file
    and nothing stale is ever read."""
    import torch.distributed as dist

    key = content_id(weights_fingerprint(model), str(dtype))
    path = Path(cfg.ref_cache) if cfg.ref_cache else out / "ref_logps.json"
    allenc = enc + venc
    keys = [pair_key(p) for p in allenc]
    hit = _read_ref_cache(path).get(key, {})
    table = torch.zeros(len(allenc), 2, dtype=torch.float64)
    missing = [j for j, k in enumerate(keys) if k not in hit]
    for j, k in enumerate(keys):
        if k in hit:
            table[j] = torch.tensor(hit[k], dtype=torch.float64)
    if missing:
        rank, world = accelerator.process_index, accelerator.num_processes
        mine = [missing[i] for i in rank_index(len(missing), rank, world)]
        part = reference_logps(
            model,
            [allenc[j] for j in mine],
            cfg,
            accelerator.device,
            dtype,
        )
        computed = torch.zeros(len(allenc), 2, dtype=torch.float64)
        computed[mine] = part
        if world > 1:
            computed = computed.to(accelerator.device)
            dist.all_reduce(computed)
            computed = computed.cpu()
        table[missing] = computed[missing]
        if accelerator.is_main_process:
            cache = _read_ref_cache(path)  # another run may have added to it meanwhile
            cache.setdefault(key, {}).update({keys[j]: table[j].tolist() for j in missing})
            atomic_write_text(path, json.dumps({"entries": cache}))
    return table[: len(enc)], table[len(enc) :]


def _read_ref_cache(path: Path) -> dict[str, dict[str, list[float]]]:
    """The cache's ``{model key: {pair key: [chosen, rejected]}}``; empty if absent or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def rank_index(n: int, rank: int, world: int) -> list[int]:
    """The items of ``n`` that process ``rank`` of ``world`` handles (every world-th from rank)."""
    return list(range(rank, n, world))
