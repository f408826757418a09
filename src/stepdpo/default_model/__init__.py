"""The embedded default models: tiny Qwen2 causal LMs with locally trained BPE tokenizers.

``default`` (SFT'd on the synthetic task's short stories) and ``default-long`` (on its long-chain
form) ship with the package as normal model folders under ``assets/`` that
``AutoModelForCausalLM`` and ``AutoTokenizer`` load like any hub model, so every code path a real
model takes runs on them, offline, on a CPU. :mod:`stepdpo.default_model.build` rebuilds them.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGED_DEFAULT = Path(__file__).parent / "assets" / "default-model"
PACKAGED_LONG = Path(__file__).parent / "assets" / "default-long-model"


def default_model_path(long: bool = False) -> Path:
    """The default model folder (``long``: the long-chain one): the packaged one, else a cached
    rebuild (built on first use)."""
    packaged = PACKAGED_LONG if long else PACKAGED_DEFAULT
    if (packaged / "config.json").exists():
        return packaged
    cache = Path(os.environ.get("STEPDPO_CACHE", Path.home() / ".cache" / "stepdpo")) / packaged.name
    if not (cache / "config.json").exists():
        from stepdpo.default_model.build import build_default_model, build_long_model

        (build_long_model if long else build_default_model)(cache)
    return cache
