"""The Slurm example without Slurm: the array's shard script run for each task id, then its merge
script, give the pairs of one unsharded pipeline run (examples/slurm)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
model: default
backend: hf
limit: 10
collect: {k: 2, max_new_tokens: 200}
locate: {judge: verifier}
rectify: {n: 2, max_new_tokens: 200}
"""


def _records(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))  # pairs carry no id field


def test_the_array_then_the_merge_give_the_unsharded_pairs(tmp_path):
    (tmp_path / "p.yaml").write_text(CONFIG)
    env = {**os.environ, "CONFIG": str(tmp_path / "p.yaml"), "OUT": str(tmp_path / "sharded"), "SHARDS": "2"}
    for i in range(2):
        task = {**env, "SLURM_ARRAY_TASK_ID": str(i), "SLURM_ARRAY_TASK_COUNT": "2"}
        subprocess.run(["bash", "examples/slurm/data_shard.sh"], cwd=ROOT, env=task, check=True, capture_output=True)
    subprocess.run(["bash", "examples/slurm/data_merge.sh"], cwd=ROOT, env=env, check=True, capture_output=True)
    whole = tmp_path / "whole"
    subprocess.run(
        ["stepdpo", "pipeline", "--config", str(tmp_path / "p.yaml"), "--out", str(whole)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    for name in ("errors.jsonl", "located.jsonl", "rectified.jsonl", "pairs.jsonl", "pairs_dpo.jsonl"):
        merged = _records(tmp_path / "sharded" / name)
        assert merged == _records(whole / name), name
    assert _records(whole / "pairs.jsonl"), "no pairs to compare"
