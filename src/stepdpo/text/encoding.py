"""Tokenizing prompt and completion text the same way everywhere (sampling, training, SFT).

A prompt gets the tokenizer's BOS token unless its text already starts with it (chat templates
write it); a completion is tokenized without special tokens, and only a whole solution ends with
EOS: a step is not the end of an answer (Sec. 3.1, eq. 2).
"""

from __future__ import annotations

from typing import Any


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt; a BOS token is added only if the tokenizer uses one and the text
    (e.g. from a chat template) does not already start with it."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and text.startswith(bos))
    return tokenizer(text, add_special_tokens=add_special)["input_ids"]


def encode_completion(tokenizer: Any, text: str, add_eos: bool) -> list[int]:
    """Token ids of a completion (a step or a whole solution) that follows a prompt.

    A step gets no EOS: a step is not the end of an answer (Sec. 3.1, eq. 2); a whole solution does.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if add_eos and tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    return ids


def _encode(tokenizer: Any, text: str, reference_bos: bool) -> list[int]:
    if not reference_bos:
        return encode_prompt(tokenizer, text)
    # the Step-DPO authors' trainer: no special tokens, then BOS in front whenever the tokenizer has one
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []) + ids


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def encode_pair_text(
    tokenizer: Any, prompt: str, chosen: str, rejected: str, *, add_eos: bool, reference_bos: bool = False
) -> tuple[list[int], list[int], list[int]]:
    """Token ids ``(prompt, chosen, rejected)`` such that ``prompt + chosen`` are exactly the ids of
    the text ``prompt + chosen`` tokenized in one piece (and likewise for rejected), as the
    sequences are at sampling time.

    Tokenizing the parts apart would differ where a merge crosses the boundary: Qwen2's tokenizer
    reads ":\n" as one token, so "Step k:" then "\nThe step" would not be the ids the model sees.
    The prompt is the longest start the two sequences share that lies within the prompt text (as
    TRL's DPOTrainer splits a merged boundary token off to the completion). ``reference_bos``
    places BOS as the Step-DPO authors' trainer does (always, when the tokenizer has one).
    """
    p = _encode(tokenizer, prompt, reference_bos)
    full_c = _encode(tokenizer, prompt + chosen, reference_bos)
    full_r = _encode(tokenizer, prompt + rejected, reference_bos)
    bound = min(len(p) - (full_c[: len(p)] != p), len(p) - (full_r[: len(p)] != p))
    n = min(_common_prefix(full_c, full_r), bound)
    eos = [tokenizer.eos_token_id] if add_eos and tokenizer.eos_token_id is not None else []
    return full_c[:n], full_c[n:] + eos, full_r[n:] + eos
