"""Loss, reward and logit statistics of the first steps match TRL's DPOTrainer on the same data and weights."""

import json

import pytest
import trl_harness as bench


def test_matches_trl_dpotrainer(default_model, tmp_path):
    pytest.importorskip("trl")
    rows = [
        {
            "prompt": "Mia has 5 marbles. She gets 3 more. How many?\n" * (1 + i % 3),
            "chosen": f"Step 1: 5 + 3 = 8 marbles, and {i} more words here.",
            "rejected": f"Step 1: 5 + 3 = {9 + i} marbles, wrong.",
        }
        for i in range(6)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ours = bench.run_ours(default_model, str(data), steps=3, batch=6, lr=1e-4)
    trl = bench.run_trl(default_model, str(data), steps=3, batch=6, lr=1e-4)
    assert len(ours["losses"]) == len(trl["losses"]) == 3
    assert ours["losses"] == pytest.approx(trl["losses"], abs=1e-3)
    assert ours["losses"][-1] < ours["losses"][0]  # training moved, and TRL moved the same way
    for a, b in zip(ours["metrics"], trl["metrics"]):
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-3, abs=2e-3), k
