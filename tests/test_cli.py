import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdpo.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    out = runner.invoke(app, ["--help"]).output
    for cmd in (
        "eval",
        "sft",
        "validate",
        "collect",
        "locate",
        "rectify",
        "build",
        "pipeline",
        "merge",
        "train",
        "demo",
        "ablate",
        "iterate",
        "review",
        "eval-judge",
        "convert",
    ):
        assert cmd in out


def test_validate_reports_every_problem(tmp_path):
    good = {"prompt": "q", "initial_reason_steps": "", "chosen": "Step 1: a", "rejected": "Step 1: b"}
    f = tmp_path / "pairs.jsonl"
    f.write_text(
        "\n".join([json.dumps(good), "{oops", json.dumps({**good, "rejected": "Step 1: a"}), json.dumps(good)]) + "\n"
    )
    res = runner.invoke(app, ["validate", str(f)])
    assert res.exit_code == 1
    assert "pairs.jsonl:2: malformed JSON" in res.output and "pairs.jsonl:3:" in res.output
    f.write_text(json.dumps(good) + "\n")
    assert runner.invoke(app, ["validate", str(f)]).exit_code == 0


def test_eval_writes_summary_and_results(tmp_path):
    res = runner.invoke(
        app, ["eval", "--limit", "8", "--max-new-tokens", "160", "--backend", "hf", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_problems"] == 8 and 0 <= summary["accuracy"] <= 1
    assert summary["prompt_format"] == "base" and summary["sampling"]["temperature"] == 0.0
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and "first_error_step" in rows[0]["samples"][0]


def test_bad_input_is_one_clear_line(tmp_path):
    f = tmp_path / "problems.jsonl"
    f.write_text(json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    res = runner.invoke(app, ["eval", "--data", str(f), "--backend", "hf"])
    assert res.exit_code == 2
    assert "problems.jsonl:1: GSM8K answer has no '#### N' line" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["build", "--in", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "p.jsonl")])
    assert res.exit_code == 2 and "missing.jsonl: no such file" in res.output
    res = runner.invoke(app, ["ablate", "--demo", str(tmp_path / "no-demo")])
    assert res.exit_code == 2 and "run `stepdpo demo --out" in res.output


def test_paths_and_models_that_cannot_work_are_refused_before_any_work(tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({"problem": "What is 1 + 1?", "answer": "2"}) + "\n")
    blocker = tmp_path / "afile"
    blocker.write_text("a file, not a folder")
    cases = [
        (["collect", "--data", str(problems), "--out", str(blocker / "c.jsonl")], "afile is a file, not a folder"),
        (["eval", "--data", str(problems), "--out", str(blocker / "e")], "afile is a file, not a folder"),
        (["collect", "--model", str(tmp_path / "no-model"), "--data", str(problems)], "no-model: no such folder"),
        (["eval", "--data", str(tmp_path / "empty.jsonl"), "--backend", "hf"], "empty.jsonl: no problems in the file"),
    ]
    (tmp_path / "empty.jsonl").write_text("")
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and message in res.output, (args, res.output)
        assert "Traceback" not in res.output
    # a hub id with no network and no local copy (in a process of its own, as a user runs it)
    import subprocess
    import sys

    args = ["collect", "--model", "SomeOrg/not-cached-model", "--data", str(problems), "--out", str(tmp_path / "c")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "stepdpo.cli", *args], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "the Hugging Face hub could not provide it" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_inspect_shows_the_trained_tokens(tmp_path, tokenizer):
    from helpers import toy_pairs

    from stepdpo.recordio import write_records
    from stepdpo.text.prompts import build_prompt

    ours = tmp_path / "pairs.jsonl"
    write_records(ours, toy_pairs(2))
    released = Path(__file__).parent / "data" / "math_step_dpo_10k.jsonl"
    for path, fmt in ((ours, "auto"), (released, "qwen2-boxed")):
        res = runner.invoke(app, ["inspect", str(path), "--limit", "2", "--json", "--prompt-format", fmt])
        assert res.exit_code == 0, res.output
        items = [json.loads(line) for line in res.stdout.splitlines()]
        pairs = [json.loads(line) for line in path.read_text().splitlines()][:2]
        assert len(items) == 2
        for item, pair in zip(items, pairs):
            prompt = build_prompt(pair["prompt"], pair["initial_reason_steps"], tokenizer=tokenizer, prompt_format=fmt)
            # prompt + chosen is the chosen sequence: the prompt text and the step, nothing added
            assert item["prompt"] + item["chosen"] == prompt + pair["chosen"]
            assert item["prompt"] + item["rejected"] == prompt + pair["rejected"]
    res = runner.invoke(app, ["inspect", str(released), "--limit", "1"])
    assert res.exit_code == 0 and "── chosen" in res.stdout and "── rejected" in res.stdout


def test_eval_prints_no_library_warning(tmp_path):
    """No deprecation warning and no library progress bar reach the user: their causes are fixed (the
    cache argument transformers renamed), and library chatter is silenced by the command line."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONWARNINGS": "default"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stepdpo.cli",
            "eval",
            "--limit",
            "20",
            "--max-new-tokens",
            "160",
            "--backend",
            "hf",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for noise in ("Warning", "deprecated", "Loading weights"):
        assert noise not in proc.stderr, proc.stderr[-2000:]
    assert "eval: 20 problems" in proc.stderr


def test_demo_prints_the_arms_and_whether_each_ordering_holds(monkeypatch, tmp_path):
    import stepdpo.experiments.demo as demo
    from stepdpo.experiments.common import ARMS, TRAINED, mean_ci

    acc = {a: mean_ci([0.5 + 0.02 * i, 0.52 + 0.02 * i, 0.51 + 0.02 * i]) for i, a in enumerate(ARMS)}
    res = {
        "task": "default",
        "seeds": [0, 1, 2],
        "accuracy_kind": "greedy",
        "accuracy": acc,
        "differences": {
            k: mean_ci(v)
            for k, v in {
                "step_dpo_matched_minus_dpo": [0.02, 0.03, 0.025],
                "step_dpo_minus_sft": [0.1, -0.1, 0.0],
                "step_dpo_minus_step_dpo_ood": [0.1, 0.0, 0.0],
            }.items()
        },
        "arms": [a for a in ARMS if a != "step_dpo_ood"],
        "secondary": {
            "step_dpo_matched_minus_dpo": {
                "seeds_scored": 3,
                "difference": 2.5,
                "bootstrap_ci95": [0.5, 4.4],
                "p": 0.04,
                "p_bonferroni": 0.12,
            }
        },  # fmt: skip
        "pairs": {a: [10, 11, 12] for a in TRAINED},
        "hyperparameters": {a: {"lr": 5e-5, "beta": 0.4} for a in TRAINED},
        "wall_s": 12.0,
    }
    monkeypatch.setattr(demo, "run_demo", lambda cfg: res)
    monkeypatch.setenv("COLUMNS", "200")  # the tables' width: a row on one line
    out = runner.invoke(app, ["demo", "--out", str(tmp_path)], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "SFT + DPO (holistic)" in out.output and "10, 11, 12" in out.output and "5e-05" in out.output
    assert "step_dpo_matched_minus_dpo" in out.output and "holds" in out.output and "not separable" in out.output
    assert "+2.5 [+0.5, +4.4], p 0.04 (0.12)" in out.output  # pooled, and corrected for the tests looked at
    assert "OOD" not in out.output and "step_dpo_minus_step_dpo_ood" not in out.output  # an arm not run

    tune = {
        "task": "default",
        "metric": "greedy accuracy",
        "val_problems": 30,
        "runs": [{"arm": "step_dpo", "lr": lr, "beta": 0.4, "accuracy": a} for lr, a in ((1e-5, 0.5), (5e-5, 0.6))],
        "picks": {"step_dpo": {"lr": 5e-5, "beta": 0.4, "val_accuracy": 0.6}},
    }
    monkeypatch.setattr(demo, "run_demo", lambda cfg: tune)
    out = runner.invoke(app, ["demo", "--tune", "--out", str(tmp_path)], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "60.0 *" in out.output and "50.0 *" not in out.output and "picks.json" in out.output


def test_long_work_logs_progress_lines_when_the_output_is_a_file(tmp_path):
    """Under nohup, in CI or a notebook no live display draws: a first line within a few seconds,
    then a line per open bar at the pace --progress-every sets."""
    import re
    import subprocess
    import sys

    log = tmp_path / "log"
    with open(log, "w") as fh:
        res = subprocess.run(
            [sys.executable, "-m", "stepdpo.cli", "--progress-every", "1", "eval", "--limit", "96", "--n", "4"]
            + ["--temperature", "0.8", "--max-new-tokens", "160", "--backend", "hf", "--out", str(tmp_path / "e")],
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    text = log.read_text()
    assert res.returncode == 0, text
    lines = [x for x in text.splitlines() if "eval: " in x and "/96 problems" in x and "elapsed" in x]
    assert len(lines) >= 2, text
    first = re.search(r"(\d+) s elapsed", lines[0])
    assert first and int(first.group(1)) <= 5, lines[0]  # not a whole interval of silence first


def test_push_plans_a_model_or_a_pair_folder_offline(tmp_path, default_model):
    import shutil

    from stepdpo.hub import plan_upload

    model = tmp_path / "model"
    shutil.copytree(default_model, model)
    with pytest.raises(ValueError, match="no README.md card"):
        plan_upload(model, "me/m")
    (model / "README.md").write_text("---\ntags: [stepdpo]\n---\n")
    (model / "checkpoints").mkdir()
    (model / "checkpoints" / "x.pt").write_text("x")
    plan = plan_upload(model, "me/m")
    assert plan.repo_type == "model" and "README.md" in plan.files and "config.json" in plan.files
    assert not any(f.startswith("checkpoints") for f in plan.files)
    data = tmp_path / "data"
    data.mkdir()
    (data / "README.md").write_text("---\ntags: [stepdpo]\n---\n")
    (data / "pairs.jsonl").write_text("{}\n")
    (data / "pairs.jsonl.lock").write_text("")
    plan = plan_upload(data, "me/d")
    assert plan.repo_type == "dataset" and plan.files == ["README.md", "pairs.jsonl"]
    with pytest.raises(ValueError, match="OWNER/NAME"):
        plan_upload(data, "nope")
    res = runner.invoke(app, ["push", str(data), "me/d", "--dry-run"])
    assert res.exit_code == 0 and "would upload 2 files" in res.output
