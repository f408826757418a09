"""Prefix sharing and packing: the log-probs of eq. 2 with the shared prefix computed once.

A pair is packed as one sequence ``[prompt | chosen | rejected]``. The attention mask is causal
except that rejected tokens cannot see chosen tokens, and position ids restart for the rejected
part right after the prompt, so every token sees exactly what it would in its own sequence
``[prompt | completion]``. The prompt (problem x and prior steps s1..s(k-1), the long part in
Step-DPO, where completions are single steps) is computed once instead of twice.

Several pairs are packed into one row (first-fit decreasing) with a block-diagonal mask, so no
compute goes to padding, and the LM head runs only at positions that predict completion tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from stepdpo.recordio import read_records
from stepdpo.records import StepPair
from stepdpo.text.encoding import encode_pair_text
from stepdpo.text.prompts import build_prompt
from stepdpo.training.metrics import logit_stats


@dataclass
class EncodedPair:
    """Token ids of one pair: the prompt, the chosen and the rejected completion."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]

    def length(self, shared: bool = True) -> int:
        p = len(self.prompt)
        return (p if shared else 2 * p) + len(self.chosen) + len(self.rejected)


def encode_pairs(
    tokenizer: Any,
    pairs: Sequence[StepPair],
    *,
    add_eos: bool,
    prompt_format: str = "auto",
    max_prompt_tokens: int = 1024,
    max_completion_tokens: int = 512,
    pair_format: str = "step",
) -> list[EncodedPair]:
    """Tokenize pairs with the project's prompt builder (the text sampling saw).

    ``pair_format`` ``step`` trains on s_win / s_lose (``chosen`` / ``rejected``); ``dpo`` on whole
    continuations (:meth:`~stepdpo.records.StepPair.dpo_completions`). The prompt keeps its last
    ``max_prompt_tokens`` tokens, a completion its first ``max_completion_tokens``. ``add_eos``:
    whole solutions end with EOS; steps do not (eq. 2). With a named reference template the
    tokens are those the Step-DPO authors' trainer builds.
    """
    from stepdpo.text.prompts import REFERENCE_TEMPLATES

    if pair_format not in ("step", "dpo"):
        raise ValueError(f"unknown pair format {pair_format!r}; use step or dpo")
    out = []
    for pair in pairs:
        prompt = build_prompt(pair.prompt, pair.initial_reason_steps, tokenizer=tokenizer, prompt_format=prompt_format)
        chosen, rejected = (pair.chosen, pair.rejected) if pair_format == "step" else pair.dpo_completions()
        p, c, r = encode_pair_text(
            tokenizer, prompt, chosen, rejected, add_eos=add_eos, reference_bos=prompt_format in REFERENCE_TEMPLATES
        )
        p, c, r = p[-max_prompt_tokens:], c[:max_completion_tokens], r[:max_completion_tokens]
        if not c or not r:
            raise ValueError(f"pair {pair.id}: a completion has no tokens")
        out.append(EncodedPair(p, c, r))
    return out


def pack_rows(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Group item indices into rows of at most ``max_tokens`` (first-fit decreasing); an item
    longer than ``max_tokens`` gets a row of its own."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(max_tokens - lengths[i])
    return rows


@dataclass
class PackedBatch:
    """Model inputs for packed pairs, and where each completion token's log-prob comes from.

    ``pred_row``/``pred_pos`` are the positions whose logits predict ``targets``; ``segment`` maps
    each target to its completion: pair j's chosen is segment 2j, its rejected 2j + 1.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor  # (rows, 1, L, L), additive float
    pred_row: torch.Tensor
    pred_pos: torch.Tensor
    targets: torch.Tensor
    segment: torch.Tensor
    n_pairs: int
    n_tokens: int

    def to(self, device: torch.device, dtype: torch.dtype) -> PackedBatch:
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        moved["attention_mask"] = moved["attention_mask"].to(dtype)
        return PackedBatch(**moved)

    @property
    def tokens_per_completion(self) -> torch.Tensor:
        return torch.bincount(self.segment, minlength=2 * self.n_pairs)


def collate(
    pairs: Sequence[EncodedPair], rows: list[list[int]], *, shared: bool = True, pad_id: int = 0
) -> PackedBatch:
    """Build a :class:`PackedBatch`; ``rows`` lists the pairs (indices into ``pairs``) of each row.

    With ``shared=False`` each pair is packed as two sequences ``[prompt|chosen]`` and
    ``[prompt|rejected]`` (the usual DPO layout), for comparison.
    """
    width = max(sum(pairs[i].length(shared) for i in row) for row in rows)
    n = len(rows)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    pos = torch.zeros((n, width), dtype=torch.long)
    allowed = torch.zeros((n, width, width), dtype=torch.bool)
    pred_row, pred_pos, targets, segment = [], [], [], []
    order = [i for row in rows for i in row]
    seg_of = {i: j for j, i in enumerate(order)}  # pair index -> its position in the batch

    def put(r: int, o: int, tokens: list[int], positions: range) -> None:
        ids[r, o : o + len(tokens)] = torch.tensor(tokens)
        pos[r, o : o + len(tokens)] = torch.tensor(list(positions))

    for r, row in enumerate(rows):
        o = 0
        for i in row:
            pr, P, C, R = pairs[i], len(pairs[i].prompt), len(pairs[i].chosen), len(pairs[i].rejected)
            j = seg_of[i]
            if shared:
                n_tok = P + C + R
                put(r, o, pr.prompt + pr.chosen + pr.rejected, list(range(P + C)) + list(range(P, P + R)))
                block = torch.ones(n_tok, n_tok, dtype=torch.bool).tril_()
                block[P + C :, P : P + C] = False  # rejected tokens do not see chosen tokens
                allowed[r, o : o + n_tok, o : o + n_tok] = block
                c_from = [o + P - 1 + t for t in range(C)]
                r_from = [o + P - 1] + [o + P + C + t for t in range(R - 1)]
            else:
                n_tok = 2 * P + C + R
                put(r, o, pr.prompt + pr.chosen, range(P + C))
                put(r, o + P + C, pr.prompt + pr.rejected, range(P + R))
                allowed[r, o : o + P + C, o : o + P + C] = torch.ones(P + C, P + C, dtype=torch.bool).tril_()
                q = o + P + C
                allowed[r, q : q + P + R, q : q + P + R] = torch.ones(P + R, P + R, dtype=torch.bool).tril_()
                c_from = [o + P - 1 + t for t in range(C)]
                r_from = [q + P - 1 + t for t in range(R)]
            for src, toks, seg in ((c_from, pr.chosen, 2 * j), (r_from, pr.rejected, 2 * j + 1)):
                pred_row += [r] * len(toks)
                pred_pos += src
                targets += toks
                segment += [seg] * len(toks)
            o += n_tok
        allowed[r, torch.arange(o, width), torch.arange(o, width)] = True  # padding sees itself only
    mask = torch.zeros((n, 1, width, width))
    mask.masked_fill_(~allowed[:, None], torch.finfo(torch.float32).min)
    return PackedBatch(
        ids,
        pos,
        mask,
        torch.tensor(pred_row),
        torch.tensor(pred_pos),
        torch.tensor(targets),
        torch.tensor(segment),
        len(order),
        int(sum(pairs[i].length(shared) for i in order)),
    )


def _decoder_and_head(model: Any) -> tuple[Any, Any] | None:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    get_dec, get_head = getattr(base, "get_decoder", None), getattr(base, "get_output_embeddings", None)
    if get_dec is None or get_head is None:
        return None
    dec, head = get_dec(), get_head()
    if dec is None or head is None or getattr(base.config, "final_logit_softcapping", None):
        return None
    return dec, head


def completion_logps(model: Any, batch: PackedBatch, stats: bool = False) -> tuple[torch.Tensor, ...]:
    """Summed log-probs of each pair's chosen and rejected completion: two tensors of shape (pairs,),
    then, with ``stats``, :func:`logit_stats`' sums (no gradient).

    The LM head runs only at the positions that predict completion tokens (hidden states of the
    decoder, then the head), unless the model does not expose its decoder and head.
    """
    parts = _decoder_and_head(model)
    if parts is not None:
        dec, head = parts
        hidden = dec(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
        ).last_hidden_state
        logits = head(hidden[batch.pred_row, batch.pred_pos]).float()
    else:
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
        )
        logits = out.logits[batch.pred_row, batch.pred_pos].float()
    all_logps = torch.log_softmax(logits, dim=-1)
    token_logps = all_logps.gather(-1, batch.targets[:, None]).squeeze(-1)
    sums = torch.zeros(2 * batch.n_pairs, device=token_logps.device, dtype=token_logps.dtype)
    sums.index_add_(0, batch.segment, token_logps)
    if stats:
        return sums[0::2], sums[1::2], logit_stats(logits.detach(), all_logps.detach(), batch)
    return sums[0::2], sums[1::2]


class CompletionLogProbs(torch.nn.Module):
    """The policy as the trainer sees it: packed batch in, per-pair completion log-probs out.

    Wrapping the model in this module before ``accelerator.prepare`` keeps the forward inside
    DDP / DeepSpeed / FSDP (which hook their gradient synchronisation into the wrapped module's
    forward), while :func:`completion_logps` still calls the decoder and head directly.
    """

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, batch: PackedBatch) -> tuple[torch.Tensor, ...]:
        """Chosen and rejected log-probs, and the :func:`logit_stats` sums."""
        return completion_logps(self.model, batch, stats=True)


def batch_order(rows: list[list[int]]) -> list[int]:
    """The pair indices in the order :func:`completion_logps` returns them."""
    return [i for row in rows for i in row]


def micro_batches(pairs: list[EncodedPair], idx: list[int], cfg: Any) -> list[tuple[list[int], PackedBatch]]:
    """Pack pairs ``idx`` into micro-batches: ``(pair indices in output order, batch)``."""
    lengths = [pairs[i].length(cfg.prefix_sharing) for i in idx]
    rows = [[idx[j] for j in row] for row in pack_rows(lengths, cfg.max_seq_len)]
    out = []
    for start in range(0, len(rows), cfg.rows_per_micro):
        group = rows[start : start + cfg.rows_per_micro]
        sub = sorted({i for row in group for i in row})
        local = {i: k for k, i in enumerate(sub)}
        batch = collate([pairs[i] for i in sub], [[local[i] for i in row] for row in group], shared=cfg.prefix_sharing)
        out.append(([i for row in group for i in row], batch))
    return out


def read_val_sets(specs: list[str]) -> list[tuple[str, str, list[StepPair]]]:
    """``(name, format, pairs)`` of each ``--val-sets`` entry NAME=FORMAT:FILE."""
    out = []
    for spec in specs:
        name, sep, rest = spec.partition("=")
        fmt, sep2, path = rest.partition(":")
        if not sep or not sep2 or not name or fmt not in ("step", "dpo") or not path:
            raise ValueError(f"--val-sets entry {spec!r}: expected NAME=FORMAT:FILE with FORMAT step or dpo")
        pairs, _ = read_records(path, "step_pair")
        out.append((name, fmt, pairs))
    return out
