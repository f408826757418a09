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
