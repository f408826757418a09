import json

from typer.testing import CliRunner

from stepdpo.cli import app
from stepdpo.tiny import train_tokenizer

TEXTS = ["Step 1: She gets 12 more marbles, so 5 + 12 = 17 marbles.\n", "The answer is \\boxed{17}.",
         "Below is an instruction that describes a task.\n\n### Instruction:\nMia has 5 marbles."]


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
    res = CliRunner().invoke(app, ["sft", "--model", "default", "--data", "synthetic", "--limit", "32",
                                   "--max-steps", "3", "--batch-size", "8", "--lr", "1e-4", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    log = [json.loads(l) for l in (tmp_path / "sft_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and log[-1]["loss"] > 0
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "tokenizer.json").exists()
