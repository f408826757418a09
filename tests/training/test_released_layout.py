"""Rows in the released Math-Step-DPO-10K layout train on exactly the tokens the Step-DPO authors'
trainer builds (train.py's templates, then TRL's tokenize_row as their StepDPOTrainer overrides it)."""

import copy
import json
from pathlib import Path

import pytest

from stepdpo.recordio import read_records
from stepdpo.text.prompts import REFERENCE_TEMPLATES, build_prompt
from stepdpo.training.packing import encode_pairs

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "math_step_dpo_10k.jsonl"

# train.py of dvlab-research/Step-DPO, apply_step_wise_chat_template (the templates without input)
REF_TEMPLATES = {
    "alpaca": (
        "Below is an instruction that describes a task. Write a response that appropriately completes "
        "the request.\n\n### Instruction:\n{instruction}\n\n### Response:",
        "\n",
    ),
    "deepseek-math": (
        "User: {instruction}\nPlease reason step by step, and put your final answer within \\boxed{{}}.\n\nAssistant:",
        " ",
    ),
    "qwen2-boxed": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{instruction}\n"
        "Please reason step by step, and put your final answer within \\boxed{{}}.<|im_end|>\n"
        "<|im_start|>assistant\n",
        "",
    ),
}


def reference_prompt(row: dict, template: str) -> str:
    text, sep = REF_TEMPLATES[template]
    prompt = text.format(instruction=row["prompt"])
    return prompt if len(row["initial_reason_steps"]) == 0 else prompt + sep + row["initial_reason_steps"]


def reference_tokens(tok, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """TRL's build_tokenized_answer and the authors' tokenize_row: (prompt ids, answer ids), BOS in front
    whenever the tokenizer has one, no EOS."""
    full = tok(prompt + answer, add_special_tokens=False)["input_ids"]
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    start = len(p) if full[: len(p)] == p else len(p) - 1
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    return bos + full[:start], full[start:]


def rows():
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_the_fixture_loads_as_is():
    pairs, report = read_records(FIXTURE, "step_pair")
    assert report.kept == 5 and len(pairs) == 5


def _tokenizers(tokenizer):
    with_bos = copy.deepcopy(tokenizer)
    with_bos.bos_token = "<|im_start|>"
    return [tokenizer, with_bos]


@pytest.mark.parametrize("template", list(REFERENCE_TEMPLATES))
def test_each_reference_template_trains_on_the_reference_tokens(tokenizer, template):
    pairs, _ = read_records(FIXTURE, "step_pair")
    for tok in _tokenizers(tokenizer):
        for row, pair in zip(rows(), pairs):
            prompt = reference_prompt(row, template)
            assert build_prompt(pair.prompt, pair.initial_reason_steps, tokenizer=tok, prompt_format=template) == prompt
            (enc,) = encode_pairs(tok, [pair], add_eos=False, prompt_format=template)
            cp, ca = reference_tokens(tok, prompt, row["chosen"])
            rp, ra = reference_tokens(tok, prompt, row["rejected"])
            assert enc.prompt + enc.chosen == cp + ca  # the whole chosen sequence, token for token
            assert enc.prompt + enc.rejected == rp + ra
            assert tok.eos_token_id not in enc.chosen + enc.rejected  # a step ends with no EOS
            if cp == rp:  # the scored tokens too, where both sides split the prompt alike
                assert (enc.chosen, enc.rejected) == (ca, ra)


def test_the_prefix_is_not_given_a_newline_after_the_marker(tokenizer):
    pairs, _ = read_records(FIXTURE, "step_pair")
    for fmt in ("base", "qwen2-boxed"):
        text = build_prompt(pairs[0].prompt, pairs[0].initial_reason_steps, tokenizer=tokenizer, prompt_format=fmt)
        assert text.endswith("\nStep 3:") and not text.endswith("Step 3:\n")
        (enc,) = encode_pairs(tokenizer, [pairs[0]], add_eos=False, prompt_format=fmt)
        # the chosen sequence is the text as sampling continues it, in one piece
        assert enc.prompt + enc.chosen == tokenizer(text + pairs[0].chosen)["input_ids"]


def test_a_merge_across_the_boundary_is_tokenized_as_the_model_reads_it(tokenizer):
    """ ":\\n" is one piece for Qwen2's pre-tokenizer: "Step 3:" then "\\nThe" apart would be other ids."""
    pairs, _ = read_records(FIXTURE, "step_pair")
    pair = pairs[0]
    assert pair.chosen.startswith("\n")
    text = build_prompt(pair.prompt, pair.initial_reason_steps, tokenizer=tokenizer, prompt_format="base")
    apart = tokenizer(text)["input_ids"] + tokenizer(pair.chosen, add_special_tokens=False)["input_ids"]
    joint = tokenizer(text + pair.chosen)["input_ids"]
    (enc,) = encode_pairs(tokenizer, [pair], add_eos=False, prompt_format="base")
    assert enc.prompt + enc.chosen == joint
    assert apart != joint  # the case this guards against does occur with this tokenizer


def test_dpo_format_reads_the_continuations(tokenizer):
    pairs, _ = read_records(FIXTURE, "step_pair")
    for row, pair in zip(rows(), pairs):
        assert pair.dpo_completions() == (row["full_chosen"], row["full_rejected"])
        (enc,) = encode_pairs(tokenizer, [pair], add_eos=True, prompt_format="qwen2-boxed", pair_format="dpo")
        cp, ca = reference_tokens(tokenizer, reference_prompt(row, "qwen2-boxed"), row["full_chosen"])
        assert enc.prompt + enc.chosen == cp + ca + [tokenizer.eos_token_id]


def test_this_projects_pairs_cut_the_prior_steps_for_dpo():
    from helpers import toy_pairs

    pair = toy_pairs(1)[0]
    pair.full_chosen = pair.initial_reason_steps + pair.chosen + "Step 9: more.\n"
    pair.full_rejected = pair.initial_reason_steps + pair.rejected
    assert pair.dpo_completions() == (pair.chosen + "Step 9: more.\n", pair.rejected)
