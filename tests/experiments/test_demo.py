import json

import pytest

from stepdpo.experiments.common import DemoConfig, mean_ci
from stepdpo.experiments.demo import run_demo


def test_mean_ci():
    r = mean_ci([0.5, 0.6, 0.7])
    assert r["mean"] == pytest.approx(0.6)
    assert r["ci95"][0] == pytest.approx(0.6 - 4.303 * 0.1 / 3**0.5, abs=1e-3)
    assert mean_ci([0.4])["ci95"] == [0.4, 0.4]
    # eleven seeds: t(0.975, 10) = 2.228, not the normal 1.96
    values = [0.5 + 0.01 * i for i in range(11)]
    sd = (sum((v - 0.55) ** 2 for v in values) / 10) ** 0.5
    assert mean_ci(values)["ci95"][1] == pytest.approx(0.55 + 2.2281 * sd / 11**0.5, abs=1e-4)


@pytest.mark.slow
def test_demo_writes_results_report_and_plots(tmp_path):
    cfg = DemoConfig(out=str(tmp_path), seeds=[0, 1], train_problems=40, eval_problems=24, n=4, epochs=1.0)
    res = run_demo(cfg)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["wall_s"] > 0
    for m in ("sft", "dpo", "step_dpo", "step_dpo_ood"):
        a = saved["accuracy"][m]
        assert len(a["values"]) == 2 and a["ci95"][0] <= a["mean"] <= a["ci95"][1]
    # each seed draws its own held-out problems
    assert (tmp_path / "seed0" / "eval-sft" / "results.jsonl").read_text() != (
        tmp_path / "seed1" / "eval-sft" / "results.jsonl"
    ).read_text()
    for f in (
        "report.md",
        "accuracy.png",
        "curves.png",
        "data/pairs.jsonl",
        "data/pairs_dpo.jsonl",
        "data/pairs_ood.jsonl",
        "seed0/step_dpo/log.jsonl",
    ):
        assert (tmp_path / f).exists(), f
    ood = [json.loads(line) for line in (tmp_path / "data" / "pairs_ood.jsonl").read_text().splitlines()]
    ind = [json.loads(line) for line in (tmp_path / "data" / "pairs.jsonl").read_text().splitlines()]
    assert ood and all(" the count is now " in p["chosen"] for p in ood)
    assert not any(" the count is now " in p["chosen"] for p in ind)
    assert "Table 3" in (tmp_path / "report.md").read_text() and res["stage_seconds"]["data pipeline"] > 0
