import json

import pytest

from stepdpo.experiments.iterate import IterateConfig, run_iterate


@pytest.mark.slow
def test_each_round_starts_from_the_last_model(tmp_path):
    res = run_iterate(IterateConfig(out=str(tmp_path), rounds=2, train_problems=30, eval_problems=20, epochs=1.0))
    rounds = res["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert rounds[1]["model"] == str(tmp_path / "round1" / "train" / "model")
    cfg1 = json.loads((tmp_path / "round2" / "train" / "train_config.json").read_text())
    assert cfg1["model"] == rounds[1]["model"]  # round 2 trains the round-1 model
    errors1 = (tmp_path / "round1" / "data" / "errors.jsonl").read_text().splitlines()
    assert errors1 and json.loads(errors1[0])["generator"]["model"] == "default"
    errors2 = (tmp_path / "round2" / "data" / "errors.jsonl").read_text().splitlines()
    assert errors2 and json.loads(errors2[0])["generator"]["model"] == "model"  # collected from the new model
    assert "| 2 |" in (tmp_path / "iterate.md").read_text()
