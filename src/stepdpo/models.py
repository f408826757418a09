"""Loading models and tokenizers by name.

``"default"`` names the embedded default model (:mod:`stepdpo.default_model`), ``"default-long"``
its long-chain counterpart; anything else is a local folder or a Hugging Face hub id, loaded with
``AutoModelForCausalLM`` / ``AutoTokenizer``. ``"smollm2-135m-instruct"`` is a real pretrained
instruct model built offline from an installed package (:mod:`stepdpo.default_model.smollm2`).
Tokenizing prompts and completions is in
:mod:`stepdpo.text.encoding`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

DEFAULT_MODEL = "default"
LONG_MODEL = "default-long"


NAMED_MODELS = (DEFAULT_MODEL, LONG_MODEL, "smollm2-135m-instruct")
"""Models available offline by name: the embedded tiny ones and SmolLM2-135M-Instruct."""


class ModelNotFound(ValueError):
    """A model that is neither a named model, nor a folder, nor a hub id that can be loaded."""


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model


def resolve_model_path(model: str) -> str:
    """The folder or hub id behind a model name; a named model is built into the cache if needed.
    A path that does not exist is refused here, before anything is loaded."""
    if model in (DEFAULT_MODEL, LONG_MODEL):
        from stepdpo.default_model import default_model_path

        return str(default_model_path(long=model == LONG_MODEL))
    if model == "smollm2-135m-instruct":
        from stepdpo.default_model.smollm2 import smollm2_path

        return str(smollm2_path())
    if _looks_like_path(model) and not Path(model).expanduser().exists():
        raise ModelNotFound(f"--model {model}: no such folder (named models: {', '.join(NAMED_MODELS)})")
    return model


def _from_pretrained(load: Any, model: str, **kwargs: Any) -> Any:
    """``load(path)`` with a clear error for a folder that is not a model or a hub id that cannot
    be fetched (no network and not in the local hub cache)."""
    path = resolve_model_path(model)
    try:
        return load(path, **kwargs)
    except OSError as e:
        if Path(path).exists():
            raise ModelNotFound(f"--model {model}: the folder holds no loadable model ({e})") from None
        raise ModelNotFound(
            f"--model {model}: not a named model or a folder, and the Hugging Face hub could not provide it "
            "(offline, or no such repository, and not in the local hub cache)"
        ) from None


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on a GPU that supports it, else fp32."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }[dtype]


def load_tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    tok = _from_pretrained(AutoTokenizer.from_pretrained, model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(model: str, dtype: str = "auto", device: str = "auto") -> Any:
    """A causal LM in eval mode on ``device``."""
    from transformers import AutoModelForCausalLM

    dev = pick_device(device)
    lm = _from_pretrained(AutoModelForCausalLM.from_pretrained, model, dtype=pick_dtype(dtype, dev))
    return lm.to(dev).eval()


def absolute_model(model: str) -> str:
    """A local model folder as an absolute path (names and hub ids as they are): what is shipped to
    Ray workers, which start in the folder where ``ray start`` ran, not in the driver's."""
    if model in NAMED_MODELS or not Path(model).expanduser().exists():
        return model
    return str(Path(model).expanduser().resolve())


def model_name(model: str) -> str:
    """A short, stable name for records and reports."""
    p = Path(model)
    return p.name if p.exists() else model
