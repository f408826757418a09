"""What the trainer sees: each pair's prompt, chosen and rejected completion decoded from the token
ids it trains on (``stepdpo inspect``), so a user can check the template, the boundary between
prior steps and the step, and that a step ends without EOS."""

from __future__ import annotations

from typing import Any

from stepdpo.records import StepPair
from stepdpo.training.packing import encode_pairs


def decoded_pairs(
    tokenizer: Any,
    pairs: list[StepPair],
    *,
    pair_format: str = "step",
    prompt_format: str = "auto",
    add_eos: bool | None = None,
    max_prompt_tokens: int = 1024,
    max_completion_tokens: int = 512,
) -> list[dict[str, Any]]:
    """Per pair: ``prompt``, ``chosen`` and ``rejected`` decoded from exactly the token ids training
    uses (special tokens kept), and their token counts. ``prompt + chosen`` is the chosen sequence."""
    eos = add_eos if add_eos is not None else pair_format == "dpo"
    enc = encode_pairs(
        tokenizer,
        pairs,
        add_eos=eos,
        prompt_format=prompt_format,
        pair_format=pair_format,
        max_prompt_tokens=max_prompt_tokens,
        max_completion_tokens=max_completion_tokens,
    )

    def text(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    return [
        {
            "id": pair.id,
            "prompt": text(e.prompt),
            "chosen": text(e.chosen),
            "rejected": text(e.rejected),
            "tokens": {"prompt": len(e.prompt), "chosen": len(e.chosen), "rejected": len(e.rejected)},
        }
        for pair, e in zip(pairs, enc)
    ]


def render(item: dict[str, Any], index: int) -> str:
    """A pair as text, each part under a rule that names it; ``⏎`` marks a part's trailing newline
    and ``∅`` an empty part, so every boundary shows."""

    def part(name: str) -> str:
        body = item[name] or "∅"
        shown = body[:-1] + "⏎\n" if body.endswith("\n") else body + "\n"
        return f"── {name} ({item['tokens'][name]} tokens) " + "─" * 20 + "\n" + shown

    return (
        f"══ pair {index} ({item['id']}) "
        + "═" * 30
        + "\n"
        + "".join(part(n) for n in ("prompt", "chosen", "rejected"))
    )
