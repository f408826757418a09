"""Supervised fine-tuning on step-by-step solutions (the starting point of Step-DPO, Sec. 4.1).

Works for any causal LM: the loss is next-token cross-entropy on the solution tokens only, with
the prompt built by :mod:`stepdpo.text.prompts` (the same text sampling and Step-DPO training see) and
an EOS at the end of each whole solution.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from stepdpo.options import option
from stepdpo.progress import Bar
from stepdpo.text.encoding import encode_pair_text
from stepdpo.training.freeze import freeze_below


@dataclass
class SFTConfig:
    """Options of supervised fine-tuning."""

    max_steps: int = option(0, "Optimizer steps of the schedule (0: use --epochs).", min=0)
    stop_after: int = option(0, "Stop after this many steps of the schedule (0: run it all).", min=0)
    epochs: float = option(3.0, "Passes over the data when --max-steps is 0.", min=1e-9)
    batch_size: int = option(16, "Sequences per optimizer step.", min=1)
    lr: float = option(1e-5, "Peak learning rate (AdamW, linear warmup then cosine decay).", min=0.0)
    warmup_ratio: float = option(0.05, "Share of the steps spent warming up.", min=0.0, max=1.0)
    weight_decay: float = option(0.0, "AdamW weight decay.", min=0.0)
    max_length: int = option(1024, "Sequences are truncated to this many tokens.", min=8)
    seed: int = option(0, "Shuffling and initialisation seed.")
    log_every: int = option(50, "Steps between log lines.", min=1)
    trainable_layers: int = option(
        0, "Train only the last N decoder layers and the final norm (0: all parameters).", min=0
    )


def _encode(tokenizer: Any, pairs: list[tuple[str, str]], max_length: int) -> list[tuple[list[int], int]]:
    """``(ids, prompt_len)`` per example, truncated to ``max_length``. Prompt and solution are
    tokenized in one piece, as the model reads them (:func:`~stepdpo.text.encoding.encode_pair_text`)."""
    out = []
    for prompt, completion in pairs:
        p, c, _ = encode_pair_text(tokenizer, prompt, completion, completion, add_eos=True)
        out.append(((p + c)[:max_length], len(p)))
    return out


def _collate(batch: list[tuple[list[int], int]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    attn = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (ids, plen) in enumerate(batch):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, plen : len(ids)] = torch.tensor(ids[plen:])
        attn[i, : len(ids)] = 1
    return {"input_ids": input_ids.to(device), "labels": labels.to(device), "attention_mask": attn.to(device)}


def _loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over the solution tokens. The LM head runs only at the
    positions that predict a solution token (a 49k-vocabulary head over every prompt position
    costs a fifth of a small model's step), where the model exposes its decoder and head."""
    from stepdpo.training.packing import _decoder_and_head

    parts = _decoder_and_head(model)
    if parts is None:
        return model(**batch).loss
    dec, head = parts
    hidden = dec(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    rows, cols = (labels != -100).nonzero(as_tuple=True)
    logits = head(hidden[:, :-1][rows, cols]).float()
    return torch.nn.functional.cross_entropy(logits, labels[rows, cols])


def sft_train(
    model: Any,
    tokenizer: Any,
    pairs: list[tuple[str, str]],
    cfg: SFTConfig,
    on_log: Callable[[int, Any], None] | None = None,
) -> list[dict]:
    """Fine-tune ``model`` in place on ``(prompt, solution)`` pairs; returns the log rows.

    ``on_log(step, model)`` is called at every log step (e.g. to save a checkpoint)."""
    from transformers import get_cosine_schedule_with_warmup

    if not pairs:
        raise ValueError("SFT needs at least one (prompt, solution) example")
    device = next(model.parameters()).device
    freeze_below(model, cfg.trainable_layers)
    data = _encode(tokenizer, pairs, cfg.max_length)
    steps_per_epoch = max(1, len(data) // cfg.batch_size)
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, int(cfg.epochs * steps_per_epoch))
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95)
    )
    sched = get_cosine_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.train()
    log, order, t0, running = [], [], time.time(), None
    last = min(total, cfg.stop_after) if cfg.stop_after > 0 else total
    bar = Bar("sft", last, unit="step")
    for step in range(1, last + 1):
        if len(order) < cfg.batch_size:
            order = list(range(len(data)))
            rng.shuffle(order)
        batch = [data[i] for i in order[: cfg.batch_size]]
        order = order[cfg.batch_size :]
        loss = _loss(model, _collate(batch, pad, device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        bar.note(loss=f"{running:.3f}")
        bar.update(1)
        if step % cfg.log_every == 0 or step == last:
            log.append({"step": step, "loss": running, "lr": sched.get_last_lr()[0], "elapsed_s": time.time() - t0})
            if on_log is not None:
                model.eval()
                on_log(step, model)
                model.train()
    bar.close()
    model.eval()
    if not math.isfinite(running or 0.0):
        raise FloatingPointError("SFT loss is not finite; lower the learning rate")
    return log
