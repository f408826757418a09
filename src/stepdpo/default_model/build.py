"""Building the embedded default model: a tiny Qwen2 causal LM with a locally trained BPE tokenizer.

It is a normal model folder (``config.json``, ``model.safetensors``, tokenizer files) that
``AutoModelForCausalLM`` and ``AutoTokenizer`` load like any hub model, so every code path a real
model takes runs on it, offline, on a CPU. The tokenizer is trained with exactly the pipeline that
``Qwen2Tokenizer`` rebuilds on load (NFC, the Qwen2 split regex, byte-level BPE); a tokenizer
trained with another pre-tokenizer would silently tokenize differently after a reload.

The default model ships with the package; :func:`build_default_model` rebuilds it (deterministic
for a given seed and torch version): a fresh tiny model, SFT on synthetic solutions. A second
model of the same size, ``default-long`` (:func:`build_long_model`), is SFT'd on the task's
long-chain form (20 steps), then on solutions of which some carry one slip, so that, sampled, it
errs anywhere in the chain; the localization benchmark measures the rollout judge on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stepdpo.tasks import get_task
from stepdpo.tasks.arithmetic import (
    generate_chain_problems,
    generate_problems,
    slipped_demonstrations,
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tokenizer(texts: list[str], vocab_size: int = 640) -> Any:
    """A byte-level BPE tokenizer in Qwen2's exact pipeline, returned as a ``Qwen2Tokenizer``."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(
        models.BPE(
            unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False, byte_fallback=False
        )
    )
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    spec = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    return Qwen2Tokenizer(vocab=spec["vocab"], merges=merges, model_max_length=1024)


def tiny_config(vocab_size: int, **overrides: Any) -> Any:
    """A small Qwen2 config (about 2.5 M parameters by default)."""
    from transformers import Qwen2Config

    kw = dict(
        vocab_size=vocab_size,
        hidden_size=192,
        intermediate_size=576,
        num_hidden_layers=4,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=0,
    )
    kw.update(overrides)
    return Qwen2Config(**kw)


def build_default_model(
    out: str | Path,
    seed: int = 0,
    n_problems: int = 6000,
    schedule_steps: int = 1500,
    stop_after: int = 750,
) -> Path:
    """Build the embedded default from scratch: tokenizer, tiny Qwen2, SFT on synthetic solutions.

    The packaged model is step 750 of a 1500-step cosine schedule (batch 32, peak lr 3e-3), stopped
    halfway so that plenty of step errors are left for Step-DPO to fix (its accuracy: docs/index.md).
    """
    from stepdpo.training.sft import SFTConfig

    problems = generate_problems(n_problems, seed=get_task("synthetic").train_seed)
    return _build(
        out,
        problems,
        seed,
        [
            (
                None,
                SFTConfig(
                    max_steps=schedule_steps,
                    stop_after=stop_after,
                    batch_size=32,
                    lr=3e-3,
                    warmup_ratio=0.05,
                    seed=seed,
                ),
            )
        ],
    )


def build_long_model(
    out: str | Path,
    seed: int = 0,
    n_problems: int = 8000,
    schedule_steps: int = 1400,
    slip_rate: float = 0.3,
    slip_steps: int | None = None,
) -> Path:
    """Build the long-chain model: the same tiny Qwen2, SFT on the task's long-chain form, in two
    phases (batch 16, seed ``seed`` for both):

    1. ``schedule_steps`` steps (cosine, peak lr 3e-3) on the reference solutions. The model learns
       to look every operation up and compute it; greedy, it solves nearly every held-out chain.
    2. ``slip_steps`` more (default 3/14 of the first phase, 300; cosine, peak lr 3e-4) on the same
       problems' solutions of which a fraction ``slip_rate`` misstate one step's result, anywhere
       along the chain (:func:`~stepdpo.tasks.arithmetic.slipped_demonstrations`). Its greedy
       solutions stay right, and sampled at temperature 1 it slips now and then at any step: the
       errors, anywhere in a 20-step chain, that step localization has to find. (Slipped
       solutions from the start keep the model from learning the lookup of the later operations.)

    ``slip_rate`` 0 skips the second phase. The packaged model is this build with the defaults.
    """
    from stepdpo.training.sft import SFTConfig

    problems = generate_chain_problems(n_problems, seed=get_task("synthetic-long").train_seed)
    phases = [
        (None, SFTConfig(max_steps=schedule_steps, batch_size=16, lr=3e-3, warmup_ratio=0.05, seed=seed, log_every=100))
    ]
    if slip_rate > 0:
        steps = slip_steps if slip_steps is not None else max(1, schedule_steps * 3 // 14)
        phases.append(
            (
                slipped_demonstrations(problems, slip_rate, seed=seed),
                SFTConfig(max_steps=steps, batch_size=16, lr=3e-4, warmup_ratio=0.05, seed=seed, log_every=50),
            )
        )
    return _build(out, problems, seed, phases)


def _build(out: str | Path, problems: list, seed: int, phases: list[tuple[list[str] | None, Any]]) -> Path:
    """A tokenizer trained on ``problems`` and their reference solutions, and a fresh tiny Qwen2 SFT'd
    in ``phases``, each ``(solutions, SFTConfig)`` (solutions None: the reference ones); saved."""
    import torch
    from transformers import Qwen2ForCausalLM

    from stepdpo.text.prompts import build_prompt
    from stepdpo.training.sft import sft_train

    out = Path(out)
    prompts = [build_prompt(p.problem, prompt_format="base") for p in problems]
    tokenizer = train_tokenizer([pr + p.solution for pr, p in zip(prompts, problems)])
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(tiny_config(len(tokenizer)))
    for solutions, cfg in phases:
        solutions = solutions if solutions is not None else [p.solution for p in problems]
        sft_train(model, tokenizer, list(zip(prompts, solutions)), cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
