import json

import pytest
from typer.testing import CliRunner

from stepdpo.cli import app
from stepdpo.default_model.build import train_tokenizer

TEXTS = [
    "Step 1: She gets 12 more marbles, so 5 + 12 = 17 marbles.\n",
    "The answer is \\boxed{17}.",
    "Below is an instruction that describes a task.\n\n### Instruction:\nMia has 5 marbles.",
]


def test_tokenizer_reloads_identically(tmp_path):
    from transformers import AutoTokenizer

    tok = train_tokenizer(TEXTS * 20, vocab_size=300)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert type(again).__name__ == "Qwen2Tokenizer"
    probe = TEXTS + ["  spaces\t\ttabs\r\nCRLF", "unicode: ünïcødé ∑ √18 😀", "12345 + 67890 = 80235", "'s 're 've"]
    for text in probe:
        assert again(text)["input_ids"] == tok(text)["input_ids"]
        assert again.decode(again(text)["input_ids"]) == text


def test_default_model_is_a_normal_model_folder(default_model):
    from transformers import AutoConfig, AutoModelForCausalLM

    assert AutoConfig.from_pretrained(default_model).model_type == "qwen2"
    assert sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(default_model).parameters()) < 5_000_000


def test_sft_command_fine_tunes_and_saves(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "sft",
            "--model",
            "default",
            "--data",
            "synthetic",
            "--limit",
            "32",
            "--max-steps",
            "3",
            "--batch-size",
            "8",
            "--lr",
            "1e-4",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    log = [json.loads(line) for line in (tmp_path / "sft_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and log[-1]["loss"] > 0
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "tokenizer.json").exists()
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "README.md")  # every saved model folder carries its card
    assert card.data.library_name == "transformers" and "supervised fine-tuning" in card.text


def test_long_chain_labels_tokenize_alike_in_the_problem_and_the_steps():
    # the model looks each operation up by its label: the label and operation must be the same
    # tokens in the problem's line and in the step that restates them, or the lookup is per letter
    from stepdpo.tasks.arithmetic import CHAIN_LABELS, generate_chain_problems
    from stepdpo.text.prompts import build_prompt

    problems = generate_chain_problems(200, seed=3)
    tok = train_tokenizer(
        [build_prompt(p.problem, prompt_format="base") + p.solution for p in problems], vocab_size=400
    )
    p = problems[0]
    problem_ids, solution_ids = tok(p.problem)["input_ids"], tok(p.solution)["input_ids"]
    for i, (op, b) in enumerate(p.meta["ops"]):
        ids = tok(f" ({CHAIN_LABELS[i]}) {op}{b}")["input_ids"]
        for seq in (problem_ids, solution_ids):
            assert any(seq[j : j + len(ids)] == ids for j in range(len(seq))), (CHAIN_LABELS[i], op, b)


@pytest.mark.slow
def test_sft_command_builds_the_long_chain_model(tmp_path):
    from transformers import AutoConfig

    res = CliRunner().invoke(
        app,
        [
            "sft",
            "--model",
            "tiny",
            "--data",
            "synthetic-long",
            "--limit",
            "64",
            "--max-steps",
            "2",
            "--slip-rate",
            "0.5",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert AutoConfig.from_pretrained(tmp_path).model_type == "qwen2" and (tmp_path / "tokenizer.json").exists()
    bad = CliRunner().invoke(
        app, ["sft", "--model", "tiny", "--data", "synthetic-long", "--slip-rate", "2", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "--slip-rate" in bad.output and not (tmp_path / "x").exists()
    other = CliRunner().invoke(
        app, ["sft", "--model", "tiny", "--data", "synthetic", "--slip-rate", "0.1", "--out", str(tmp_path / "y")]
    )
    assert other.exit_code == 2 and "long-chain model only" in other.output


@pytest.mark.slow
def test_the_packaged_long_chain_model_solves_held_out_chains_and_slips_anywhere_when_sampled():
    from stepdpo.generation import SamplingConfig
    from stepdpo.generation.hf import HFGenerator
    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.problems import load_problems
    from stepdpo.tasks.arithmetic import check_solution
    from stepdpo.text.prompts import generation_prompt

    tok = load_tokenizer("default-long")
    gen = HFGenerator(load_model("default-long", dtype="fp32", device="cpu"), tok, batch_size=64)
    problems = load_problems("synthetic-long", split="test", limit=16, seed=7)
    prompts = [generation_prompt(p.problem, [], tokenizer=tok) for p in problems]
    outs = gen.generate([q for q, _ in prompts], SamplingConfig(n=1, temperature=0.0, max_new_tokens=400))
    results = [check_solution(p, primer + c[0].text) for p, (_, primer), c in zip(problems, prompts, outs)]
    assert sum(r.first_error_step is None for r in results) >= 14, [r.message for r in results]
    # sampled, it slips now and then, at any step of the chain (not at one step it cannot read)
    outs = gen.generate([q for q, _ in prompts], SamplingConfig(n=4, temperature=1.0, max_new_tokens=400, seed=0))
    firsts = [
        check_solution(p, primer + c.text).first_error_step
        for p, (_, primer), cs in zip(problems, prompts, outs)
        for c in cs
    ]
    wrong = [k for k in firsts if k is not None]
    assert 8 <= len(wrong) <= 48 and len(set(wrong)) >= 6, sorted(wrong)
