"""The transformers generation backend: batched sampling with the prompt encoded once for n samples.

``model.generate(num_return_sequences=n)`` copies each prompt n times before the prefill, so the
shared prompt is computed n times. Here the batch of prompts is prefilled once, the KV cache is
then repeated n times, and decoding continues from it; finished rows leave the batch. The cache
then grows in place (:mod:`stepdpo.generation.kv`) instead of being copied at every step. With
``share_prompt=False`` the prompts are repeated before the prefill instead, and with
``in_place_cache=False`` transformers' own cache is kept (both for measuring).
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import torch

from stepdpo.generation.base import PROMPT_TOO_LONG, Completion, SamplingConfig, row_seed, too_long
from stepdpo.generation.kv import grow_in_place
from stepdpo.models import load_model, load_tokenizer, model_name
from stepdpo.text.encoding import encode_prompt


def _sample(logits: torch.Tensor, cfg: SamplingConfig, gens: list[torch.Generator]) -> torch.Tensor:
    """The next token of each row: greedy, or drawn from the tempered (and nucleus-cut) distribution
    by inverting its CDF at one uniform number per row, each from the row's own generator (so a
    sample does not depend on the batch it is in), all rows at once."""
    if cfg.temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / cfg.temperature, dim=-1)
    if cfg.top_p < 1.0:
        sorted_p, idx = probs.sort(dim=-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < cfg.top_p
        sorted_p = sorted_p * keep
        probs = torch.zeros_like(probs).scatter_(-1, idx, sorted_p)
    cdf = probs.double().cumsum(-1)
    u = torch.stack([torch.rand((), generator=g, dtype=torch.float64, device=g.device) for g in gens]).to(cdf.device)
    # the first token whose cumulative probability exceeds u (of the total: the cut leaves less than 1)
    picked = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).squeeze(-1)
    return picked.clamp(max=probs.shape[-1] - 1)


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token that ends a completion: the tokenizer's EOS and each id of the model's generation
    config (Llama-3 ends a turn with ``<|eot_id|>``, a second id there)."""
    ids = {tokenizer.eos_token_id}
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids |= set(gen) if isinstance(gen, (list, tuple)) else {gen}
    return {int(i) for i in ids if i is not None}


def _cache_of(out: Any) -> Any:
    cache = out.get("cache") if hasattr(out, "get") else None
    return cache if cache is not None else out.past_key_values


class HFGenerator:
    """Generation with a transformers causal LM (any device)."""

    backend = "hf"

    def __init__(
        self,
        model: str | Any,
        tokenizer: Any | None = None,
        *,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int = 16,
        share_prompt: bool = True,
        in_place_cache: bool = True,
    ):
        if isinstance(model, str):
            self.model_name = model_name(model)
            self.model = load_model(model, dtype=dtype, device=device)
            self.tokenizer = tokenizer or load_tokenizer(model)
        else:
            self.model, self.tokenizer = model, tokenizer
            self.model_name = getattr(model.config, "_name_or_path", "model") or "model"
        self.batch_size = batch_size
        self.share_prompt = share_prompt
        self.in_place_cache = in_place_cache
        self.eos_ids = eos_ids(self.model, self.tokenizer)
        params = inspect.signature(self.model.forward).parameters
        # transformers renamed the cache argument (past_key_values -> cache); use what the model takes
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        self._last_only = {keep: 1} if keep else {}
        self.stats = {"prompt_tokens": 0, "prefill_tokens": 0, "generated_tokens": 0}
        # positions the model has (None: no fixed limit)
        self.context = getattr(self.model.config, "max_position_embeddings", None)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> str:
        """The weights' dtype, as vLLM names it (``float32``, ``bfloat16``)."""
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    @torch.inference_mode()
    def generate(self, prompts: list[str], sampling: SamplingConfig) -> list[list[Completion]]:
        """``sampling.n`` completions per prompt; prompts are batched by length to limit padding.

        Sampling is seeded per (prompt, sample), so a repeated prompt would give the same
        completions: each distinct prompt is generated once and its result shared.
        """
        unique = list(dict.fromkeys(prompts))
        encoded = [encode_prompt(self.tokenizer, p) for p in unique]
        results: dict[str, list[Completion]] = {}
        if self.context:
            over = [i for i, ids in enumerate(encoded) if len(ids) >= self.context]
            for i in over:
                results[unique[i]] = [Completion("", 0, PROMPT_TOO_LONG) for _ in range(sampling.n)]
            if over:
                too_long(len(over), max(len(encoded[i]) for i in over), self.context)
        fits = [i for i in range(len(unique)) if unique[i] not in results]
        seeds = [[row_seed(sampling.seed, unique[i], j) for j in range(sampling.n)] for i in fits]
        outs = self.generate_seeded([encoded[i] for i in fits], seeds, sampling)
        results.update((unique[i], out) for i, out in zip(fits, outs))
        return [list(results[p]) for p in prompts]

    @torch.inference_mode()
    def generate_seeded(
        self, encoded: list[list[int]], seeds: list[list[int]], sampling: SamplingConfig
    ) -> list[list[Completion]]:
        """One completion per seed for each prompt given as token ids (``len(seeds[i])`` samples of
        prompt i, the same count for every prompt; ``sampling.n`` is ignored). Sample j of a prompt
        draws from its own stream seeded ``seeds[i][j]``, so a sample does not depend on the batch
        it runs in: :meth:`generate` seeds sample j with :func:`row_seed`, and a Ray Data replica
        (:mod:`stepdpo.generation.raydata`) handed the same seeds returns the same text."""
        if not encoded:
            return []
        n = len(seeds[0])
        if any(len(s) != n for s in seeds):
            raise ValueError("generate_seeded: every prompt needs the same number of seeds")
        cfg = replace(sampling, n=n)
        results: list[list[Completion]] = [[] for _ in encoded]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        per_batch = max(1, self.batch_size // max(1, n)) if n > 1 else self.batch_size
        for start in range(0, len(order), per_batch):
            idx = order[start : start + per_batch]
            gens = (
                [torch.Generator(device=self.device).manual_seed(seeds[i][j]) for i in idx for j in range(n)]
                if cfg.temperature > 0
                else []
            )
            outs = self._generate_batch([encoded[i] for i in idx], cfg, gens)
            for j, i in enumerate(idx):
                results[i] = outs[j * n : (j + 1) * n]
        return results

    def _generate_batch(
        self, batch: list[list[int]], cfg: SamplingConfig, gens: list[torch.Generator]
    ) -> list[Completion]:
        tok, dev, n = self.tokenizer, self.device, cfg.n
        if not self.share_prompt and n > 1:
            batch, n_after = [ids for ids in batch for _ in range(n)], 1
        else:
            n_after = n
        width = max(len(ids) for ids in batch)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in batch], device=dev)
        attn = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in batch], device=dev)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        # prompt tokens the samples condition on, and prompt tokens actually run through the model
        self.stats["prompt_tokens"] += sum(len(x) for x in batch) * n_after
        self.stats["prefill_tokens"] += sum(len(x) for x in batch)
        # at prefill only the last position's logits are needed (a 152k vocabulary over a whole batch of
        # prompts would be gigabytes)
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, **self._last_only)
        cache, logits = _cache_of(out), out.logits[:, -1, :]
        next_pos = pos[:, -1] + 1
        if n_after > 1:
            cache.batch_repeat_interleave(n_after)
            logits = logits.repeat_interleave(n_after, 0)
            attn = attn.repeat_interleave(n_after, 0)
            next_pos = next_pos.repeat_interleave(n_after, 0)
        if self.in_place_cache:
            grow_in_place(cache, width + cfg.max_new_tokens)
        rows = logits.shape[0]
        tokens: list[list[int]] = [[] for _ in range(rows)]
        done: list[Completion | None] = [None] * rows
        active = list(range(rows))  # row ids still decoding, in cache order
        eos = self.eos_ids
        for step in range(cfg.max_new_tokens):
            nxt = _sample(logits, cfg, [gens[r] for r in active] if gens else []).tolist()
            # a row whose next token would be past the model's last position ends there
            full = (next_pos + 1 >= self.context).tolist() if self.context else [False] * len(active)
            keep = []
            for j, r in enumerate(active):
                tokens[r].append(nxt[j])
                last = step == cfg.max_new_tokens - 1 or full[j]
                finished = self._finished(tokens[r], nxt[j] in eos, cfg, last_step=last)
                if finished is None:
                    keep.append(j)
                else:
                    done[r] = finished
            if not keep:
                break
            if len(keep) < len(active):
                sel = torch.tensor(keep, device=dev)
                cache.batch_select_indices(sel)
                attn, next_pos = attn[sel], next_pos[sel]
                nxt = [nxt[j] for j in keep]
                active = [active[j] for j in keep]
            attn = torch.cat([attn, attn.new_ones(len(active), 1)], dim=1)
            out = self.model(
                input_ids=torch.tensor(nxt, device=dev)[:, None],
                attention_mask=attn,
                position_ids=next_pos[:, None],
                use_cache=True,
                **{self._cache_arg: cache},
            )
            cache, logits = _cache_of(out), out.logits[:, -1, :]
            next_pos = next_pos + 1
        self.stats["generated_tokens"] += sum(c.num_tokens for c in done if c is not None)
        return [c if c is not None else self._finish(tokens[r], "length") for r, c in enumerate(done)]

    def _finished(self, toks: list[int], hit_eos: bool, cfg: SamplingConfig, last_step: bool) -> Completion | None:
        if hit_eos:
            return self._finish(toks[:-1], "eos", num_tokens=len(toks))
        if cfg.stop:
            # only the tail can contain a new stop string: decode a window, not the whole row
            tail = self.tokenizer.decode(toks[-16:], skip_special_tokens=False)
            if any(s in tail for s in cfg.stop):
                text = self.tokenizer.decode(toks, skip_special_tokens=False)
                cut = min(text.find(s) for s in cfg.stop if s in text)
                return Completion(text[:cut], len(toks), "stop")
        if last_step:
            return self._finish(toks, "length")
        return None

    def _finish(self, toks: list[int], reason: str, num_tokens: int | None = None) -> Completion:
        text = self.tokenizer.decode(toks, skip_special_tokens=True)
        return Completion(text, num_tokens if num_tokens is not None else len(toks), reason)
