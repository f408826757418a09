"""The step-wise chain-of-thought prompt, shared byte for byte by sampling, training and evaluation.

Sec. 3.2 prompts the model with "Let's think step by step. Step 1:". The text a model sees before
step k is: the problem in the model's prompt format, then the assistant turn pre-filled with the
CoT opener and the prior steps s1..s(k-1). For generation the marker "Step k:" is appended; as
training data, the step s_k itself starts with that marker. Base models get an Alpaca-style
template (the format of the paper's base-model code); chat models get the tokenizer's own chat
template with the assistant turn pre-filled (``continue_final_message``), never hand-written markup.

The released Math-Step-DPO-10K data stores the prior steps ending with the next step's marker
("...\nStep k:") and s_win / s_lose as that step's body; such a prefix is kept verbatim. Its
authors' trainer formats it with named templates (:data:`REFERENCE_TEMPLATES`: ``alpaca``,
``deepseek-math``, ``qwen2-boxed``); those names are prompt formats here too and give the same
text byte for byte.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from stepdpo.text.steps import (
    COT_TRIGGER,
    has_step_markers,
    prior_text,
    split_steps,
    step_marker,
)

PromptFormatName = Literal["auto", "base", "chat", "alpaca", "deepseek-math", "qwen2-boxed"]

BASE_TEMPLATE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{problem}\n\n### Response: "
)
CHAT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

REFERENCE_TEMPLATES = {
    # the prompt templates of the Step-DPO authors' train.py, and what joins the template to a non-empty
    # initial_reason_steps there
    "alpaca": (
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Response:",
        "\n",
    ),
    "deepseek-math": (
        "User: {instruction}\nPlease reason step by step, and put your final answer within \\boxed{{}}.\n\nAssistant:",
        " ",
    ),
    "qwen2-boxed": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n{instruction}\nPlease reason step by step, and put your final answer within "
        "\\boxed{{}}.<|im_end|>\n<|im_start|>assistant\n",
        "",
    ),
}
"""Named templates: ``(template, separator)``; the prompt is ``template + separator +
initial_reason_steps`` (the template alone when there are no prior steps)."""
FORMATS = ("auto", "base", "chat", *REFERENCE_TEMPLATES)
_ENDS_WITH_MARKER = re.compile(r"(?:^|\n)[ \t]*Step[ \t]+\d+[ \t]*:[ \t]*$")


def ends_with_marker(text: str) -> bool:
    """Whether ``text`` ends with a step's marker ("...\nStep k:"), as the released data's
    ``initial_reason_steps`` do: the step's body follows directly."""
    return _ENDS_WITH_MARKER.search(text) is not None


def resolve_format(tokenizer: Any | None, prompt_format: str = "auto") -> str:
    """``auto`` picks ``chat`` when the tokenizer has a chat template, else ``base``."""
    if prompt_format not in FORMATS:
        raise ValueError(f"unknown prompt format {prompt_format!r}; use {', '.join(FORMATS)}")
    if prompt_format != "auto":
        if prompt_format == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt format 'chat' needs a tokenizer with a chat template")
        return prompt_format
    return "chat" if tokenizer is not None and getattr(tokenizer, "chat_template", None) else "base"


def reasoning_prefix(prior_steps: list[str] | str = ()) -> str:
    """The assistant's text before step k: the CoT opener, then s1..s(k-1), newline-terminated.

    A string is read as ``initial_reason_steps`` of the Step-DPO schema, kept verbatim; the CoT
    opener is added only if it does not already start with it. A string that ends with the next
    step's marker (the released data's layout) is not newline-terminated: the step's body follows.
    """
    if isinstance(prior_steps, str):
        done = not prior_steps.strip() or prior_steps.endswith("\n") or ends_with_marker(prior_steps)
        text = prior_steps if done else prior_steps + "\n"
        return text if text.lstrip().lower().startswith(COT_TRIGGER.strip().lower()) else COT_TRIGGER + text
    return COT_TRIGGER + prior_text(list(prior_steps))


def count_steps(prior_steps: list[str] | str) -> int:
    """Number of steps in ``prior_steps`` (a list or an ``initial_reason_steps`` string)."""
    if isinstance(prior_steps, str):
        return len(split_steps(prior_steps)[1]) if has_step_markers(prior_steps) else 0
    return len(prior_steps)


def build_prompt(
    problem: str,
    prior_steps: list[str] | str = (),
    *,
    tokenizer: Any | None = None,
    prompt_format: str = "auto",
) -> str:
    """The text before the next step: problem x in the model's format, then CoT opener and s<k.

    This is what training prepends to ``chosen``/``rejected`` and what generation continues from
    (after :func:`generation_prompt` adds the next step's marker), so both see the same bytes.
    A named reference template (``alpaca``, ``deepseek-math``, ``qwen2-boxed``) gives the text the
    Step-DPO authors' trainer builds: template, separator, then ``prior_steps`` verbatim.
    """
    prompt_format = resolve_format(tokenizer, prompt_format)
    if prompt_format in REFERENCE_TEMPLATES:
        template, sep = REFERENCE_TEMPLATES[prompt_format]
        prior = prior_steps if isinstance(prior_steps, str) else reasoning_prefix(prior_steps)
        return template.format(instruction=problem) + (sep + prior if prior else "")
    assistant_prefix = reasoning_prefix(prior_steps)
    if prompt_format == "base":
        return BASE_TEMPLATE.format(problem=problem.strip()) + assistant_prefix
    messages = [
        {"role": "user", "content": f"{problem.strip()}\n{CHAT_INSTRUCTION}"},
        {"role": "assistant", "content": assistant_prefix},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    # templates that trim the assistant's content (Llama-3's "| trim") drop the prefix's trailing
    # newline; put it back, or step k would be glued to the end of step k-1
    kept = assistant_prefix.rstrip()
    if not text.endswith(assistant_prefix) and text.endswith(kept):
        text += assistant_prefix[len(kept) :]
    return text


def generation_prompt(
    problem: str, prior_steps: list[str] | str = (), *, tokenizer: Any | None = None, prompt_format: str = "auto"
) -> tuple[str, str]:
    """``(prompt, primer)``: the prompt ending with the next step's marker, and that marker.

    The generated text is ``primer + completion``: the paper primes with "Step 1:", here for any k.
    """
    primer = step_marker(count_steps(prior_steps) + 1)
    return build_prompt(problem, prior_steps, tokenizer=tokenizer, prompt_format=prompt_format) + primer, primer
