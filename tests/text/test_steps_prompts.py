import pytest

from stepdpo.text.prompts import (
    BASE_TEMPLATE,
    build_prompt,
    generation_prompt,
    reasoning_prefix,
)
from stepdpo.text.steps import COT_TRIGGER, join_steps, split_steps, step_body

SOLUTION = "Let's think step by step.\nStep 1: 2 + 3 = 5.\nStep 2: 5 * 4 = 20.\nThe answer is \\boxed{20}."


@pytest.mark.parametrize(
    "text",
    [
        SOLUTION,
        "Step 1: a\n\nStep 2: b\n",
        "first line\nsecond line\nthird",
        "para one\nstill one\n\npara two\n",
        "",
        "**Step 1:** bold\n**Step 2:** more",
    ],
)
def test_split_join_is_lossless(text):
    assert join_steps(*split_steps(text)) == text


def test_split_markers_and_fallbacks():
    pre, steps = split_steps(SOLUTION)
    assert pre == COT_TRIGGER
    assert steps == ["Step 1: 2 + 3 = 5.\n", "Step 2: 5 * 4 = 20.\nThe answer is \\boxed{20}."]
    assert step_body(steps[0]) == "2 + 3 = 5."
    assert split_steps("a\n\nb\n")[1] == ["a\n\n", "b\n"]
    assert split_steps("a\nb")[1] == ["a\n", "b"]


def test_base_prompt_with_prior_steps():
    steps = split_steps(SOLUTION)[1]
    p = build_prompt("What is it?", steps[:1], prompt_format="base")
    assert p == BASE_TEMPLATE.format(problem="What is it?") + COT_TRIGGER + "Step 1: 2 + 3 = 5.\n"
    # the Step-DPO schema's initial_reason_steps string gives the same text
    assert build_prompt("What is it?", COT_TRIGGER + "Step 1: 2 + 3 = 5.\n", prompt_format="base") == p
    assert build_prompt("What is it?", "Step 1: 2 + 3 = 5.", prompt_format="base") == p
    gp, primer = generation_prompt("What is it?", steps[:1], prompt_format="base")
    assert primer == "Step 2:" and gp == p + "Step 2:"
    assert generation_prompt("What is it?", prompt_format="base")[1] == "Step 1:"
    assert generation_prompt("What is it?", COT_TRIGGER, prompt_format="base")[1] == "Step 1:"
    assert reasoning_prefix([]) == COT_TRIGGER


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "{% if not loop.last or m['role'] != 'assistant' %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_chat_prompt_uses_the_tokenizers_template(tokenizer):
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = CHATML
    p = build_prompt("What is it?", ["Step 1: 2 + 3 = 5.\n"], tokenizer=tok)
    assert p.startswith("<|im_start|>user\nWhat is it?\nPlease reason step by step")
    assert p.endswith("<|im_start|>assistant\n" + COT_TRIGGER + "Step 1: 2 + 3 = 5.\n")
    assert build_prompt("What is it?", tokenizer=tokenizer) == build_prompt("What is it?", prompt_format="base")
    with pytest.raises(ValueError):
        build_prompt("x", tokenizer=tokenizer, prompt_format="chat")


def test_prompt_and_step_tokenize_at_the_boundary(tokenizer):
    from stepdpo.text.encoding import encode_completion, encode_prompt

    p = build_prompt("Mia has 5 marbles.", ["Step 1: 5 + 3 = 8 marbles.\n"], prompt_format="base")
    step = "Step 2: 8 - 2 = 6 marbles.\n"
    assert encode_prompt(tokenizer, p) + encode_completion(tokenizer, step, add_eos=False) == encode_prompt(
        tokenizer, p + step
    )
    assert encode_completion(tokenizer, step, add_eos=True)[-1] == tokenizer.eos_token_id
    assert tokenizer.eos_token_id not in encode_completion(tokenizer, step, add_eos=False)


# Llama-3's template trims each message's content
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def test_a_trimming_chat_template_keeps_the_prefix_newline(tokenizer):
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = LLAMA3
    p = build_prompt("What is it?", ["Step 1: 2 + 3 = 5.\n"], tokenizer=tok)
    assert p.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n" + COT_TRIGGER + "Step 1: 2 + 3 = 5.\n")
    gp, primer = generation_prompt("What is it?", ["Step 1: 2 + 3 = 5.\n"], tokenizer=tok)
    assert gp.endswith("= 5.\nStep 2:")
