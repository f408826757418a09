"""Training part of a model: the last decoder layers only (LLaMA-Factory's "freeze" tuning), or LoRA
adapters (PEFT)."""

from __future__ import annotations

from typing import Any


def freeze_below(model: Any, trainable_layers: int) -> None:
    """Train only the last ``trainable_layers`` decoder layers and the final norm (0: leave every
    parameter trainable). The embeddings (and an LM head tied to them) and the layers below stay
    frozen, so no activation below the first trained layer needs a gradient and backward stops
    there: the cost of a step falls towards that of a forward pass (LLaMA-Factory's "freeze"
    tuning). A model without a ``layers`` list in its decoder is refused."""
    if trainable_layers <= 0:
        return
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ValueError(f"--trainable-layers: cannot find the decoder layers of {type(base).__name__}")
    if trainable_layers > len(layers):
        raise ValueError(f"--trainable-layers {trainable_layers}: the model has {len(layers)} layers")
    for p in base.parameters():
        p.requires_grad_(False)
    for module in [*layers[-trainable_layers:], getattr(decoder, "norm", None)]:
        if module is not None:
            for p in module.parameters():
                p.requires_grad_(True)


def wrap_lora(model: Any, r: int, alpha: float, dropout: float) -> Any:
    """The model with LoRA adapters of rank ``r`` on every linear layer (PEFT), the rest frozen."""
    from peft import LoraConfig, get_peft_model

    lcfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lcfg)
