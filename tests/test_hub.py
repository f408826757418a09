"""``stepdpo push`` and ``train --push-to-hub`` without a Hub: one line saying what failed and what to
do, exit 2, before any training; a pipeline folder's resume journals stay behind."""

import os
import subprocess
import sys

import pytest
from helpers import toy_pairs

from stepdpo.recordio import write_records

STEPDPO = [sys.executable, "-m", "stepdpo.cli"]


@pytest.fixture
def pair_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_records(folder / "pairs.jsonl", toy_pairs(8))
    (folder / "pairs.done.jsonl").write_text("{}\n")  # a stage's resume journal
    (folder / "README.md").write_text("---\ntags: [stepdpo]\n---\n")
    return folder


def _run(args, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return subprocess.run([*STEPDPO, *args], capture_output=True, text=True, env={**full, **env}, timeout=300)


def _one_error_line(res) -> str:
    assert res.returncode == 2, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_push_offline_by_choice_is_one_line(pair_folder):
    line = _one_error_line(_run(["push", str(pair_folder), "me/d"], HF_HUB_OFFLINE="1"))
    assert "HF_HUB_OFFLINE" in line


def test_push_to_an_unreachable_hub_is_one_line(pair_folder):
    # a closed port on this machine: the connection is refused at once
    res = _run(["push", str(pair_folder), "me/d"], HF_ENDPOINT="http://127.0.0.1:9", HF_TOKEN="hf_x" * 9)
    line = _one_error_line(res)
    assert "could not be reached" in line and "check the network" in line and "hf_x" not in line


@pytest.mark.parametrize(
    ("repo", "env", "says"),
    [
        ("me/m", {"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE"),
        ("me/m", {"HF_TOKEN": "", "HF_HOME": "/nonexistent-hf-home"}, "no Hugging Face token"),
        ("me/m", {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_x" * 9}, "could not be reached"),
        ("a/b/c", {}, "not a Hub repo id"),
    ],
)
def test_train_push_to_hub_fails_before_training(tmp_path, pair_folder, repo, env, says):
    out = tmp_path / "run"
    res = _run(["train", "--data", str(pair_folder / "pairs.jsonl"), "--out", str(out), "--push-to-hub", repo], **env)
    assert says in _one_error_line(res)
    assert not (out / "log.jsonl").exists()  # nothing trained


def test_a_pipeline_folders_push_leaves_the_resume_journals(pair_folder):
    from stepdpo.hub import plan_upload

    plan = plan_upload(pair_folder, "me/d")
    assert "pairs.jsonl" in plan.files and "pairs.done.jsonl" not in plan.files
