"""How close a throughput is to what the cores can do: a model's FLOPs per token, the machine's
measured matmul FLOP/s, and the spread of a figure over rounds.

A forward pass costs 2 FLOPs per parameter a token passes through (a multiply and an add), plus
attention's two products with the ``ctx`` tokens it attends to (4 x layers x ctx x width), plus
the LM head (2 x vocabulary x width) where logits are computed; a training step adds the backward
pass, twice the forward. ``share`` is achieved FLOP/s (FLOPs per token times tokens per second)
over the FLOP/s of one large matrix product at the same dtype on the same threads: the fraction of
the physical limit a run reaches (1.0 is every core doing nothing but multiply-adds).
"""

from __future__ import annotations

import statistics
import time


def model_shape(model: str) -> dict[str, int]:
    """Parameters outside the embeddings and LM head (``body``), the LM head's (``head``), layers and
    width of ``model`` (a folder or a name), read from its config without loading weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from stepdpo.models import resolve_model_path

    cfg = AutoConfig.from_pretrained(resolve_model_path(model))
    with torch.device("meta"):
        lm = AutoModelForCausalLM.from_config(cfg)
    emb = lm.get_input_embeddings().weight
    head = lm.get_output_embeddings().weight
    total = sum(p.numel() for p in lm.parameters())  # tied weights are counted once
    body = total - emb.numel() - (0 if head is emb else head.numel())
    return {
        "body": body,
        "head": head.numel(),
        "layers": cfg.num_hidden_layers,
        "width": cfg.hidden_size,
    }


def forward_flops(shape: dict[str, int], ctx: float, head: bool = True) -> float:
    """FLOPs of one token's forward pass attending to ``ctx`` tokens, with or without the LM head."""
    return 2 * shape["body"] + 4 * shape["layers"] * ctx * shape["width"] + (2 * shape["head"] if head else 0)


def matmul_flops(dtype: str = "fp32", size: int = 2048, repeats: int = 5) -> float:
    """The best FLOP/s of a ``size`` x ``size`` matrix product at ``dtype`` over ``repeats`` runs
    (after one warm-up), on torch's current threads."""
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    a = torch.randn(size, size, dtype=dt)
    b = torch.randn(size, size, dtype=dt)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - t))
    return best


def spread(values: list[float]) -> dict[str, float | int]:
    """Rounds, min, median and max of a figure measured over rounds."""
    return {
        "rounds": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }
