"""stepdpo eval-judge: ProcessBench's metrics, every judge able to say "no wrong step"."""

import json

import pytest
from typer.testing import CliRunner

from stepdpo.cli import app
from stepdpo.exchange import case_to_located, case_to_processbench
from stepdpo.experiments.judge_eval import EvalJudgeConfig, load_cases, run_eval_judge, score
from stepdpo.recordio import write_records
from stepdpo.records import NO_WRONG_STEP, LocatedError

runner = CliRunner()


def test_processbench_metrics():
    s = score([2, 0, 3, 1, -1, -1], [2, 1, None, -1, -1, 0])
    assert s["acc_erroneous"] == 0.25 and s["acc_correct"] == 0.5
    assert s["f1"] == pytest.approx(2 * 0.25 * 0.5 / 0.75)
    assert s["erroneous_placement"] == {"exact": 1, "too_late": 1, "abstained": 1, "said_no_wrong_step": 1}
    assert s["correct_cases"] == {"no_wrong_step": 1, "false_alarm": 1} and s["abstained"] == 1


@pytest.mark.parametrize("data", ["synthetic", "synthetic-long"])
def test_the_verifier_scores_f1_one_on_generated_cases(data, tmp_path):
    res = runner.invoke(app, ["eval-judge", "--data", data, "--limit", "60", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["f1"] == 1.0 and summary["acc_erroneous"] == 1.0 and summary["acc_correct"] == 1.0
    assert 0 < summary["correct"] < summary["cases"] == 60
    assert (tmp_path / "confusion.png").stat().st_size > 1000
    rows = [json.loads(x) for x in (tmp_path / "cases.jsonl").read_text().splitlines()]
    assert all(r["predicted"] == r["label"] for r in rows)


def test_a_judgement_file_on_processbench_cases(tmp_path):
    cases = load_cases("synthetic", 9)
    pb = tmp_path / "pb.jsonl"
    write_records(pb, [case_to_processbench(c) for c in cases])
    # a judge's output: right on the first three, one step late on the next three, abstaining on the rest
    judged = []
    for i, c in enumerate(cases):
        err = case_to_located(c)
        if 3 <= i < 6 and c.label >= 0 and c.label + 1 < len(c.steps):
            err = LocatedError(err.solution, c.label + 2, "mine")
        elif i >= 6:
            err = LocatedError(err.solution, None, "mine", reason="timeout")
        judged.append(err)
    jfile = tmp_path / "judged.jsonl"
    write_records(jfile, judged)
    summary = run_eval_judge(EvalJudgeConfig(data=str(pb), judgements=str(jfile), out=str(tmp_path / "o")))
    labels = [c.label for c in cases]
    late = sum(1 for i in range(3, 6) if labels[i] >= 0 and labels[i] + 1 < len(cases[i].steps))
    assert summary["erroneous_placement"].get("too_late", 0) == late
    assert summary["abstained"] == 3 and summary["judge"] == "file:judged.jsonl"


def test_the_rollout_judge_says_no_wrong_step_for_a_right_solution(tmp_path):
    cfg = EvalJudgeConfig(
        data="synthetic", limit=6, judge="rollout", m=2, max_new_tokens=120, batch_size=64, out=str(tmp_path)
    )
    summary = run_eval_judge(cfg)
    rows = [json.loads(x) for x in (tmp_path / "cases.jsonl").read_text().splitlines()]
    right = [r for r in rows if r["label"] == -1]
    assert right and all(r["predicted"] == -1 and r["reason"] == NO_WRONG_STEP for r in right)
    assert summary["cost_per_case"]["rollouts"] > 0 and summary["settings"]["m"] == 2


def test_the_rollout_judge_needs_answers(tmp_path):
    pb = tmp_path / "pb.jsonl"
    pb.write_text(json.dumps({"id": "a", "problem": "p?", "steps": ["x", "y"], "label": 0}) + "\n")
    res = runner.invoke(app, ["eval-judge", "--data", str(pb), "--judge", "rollout", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "needs each case's gold answer" in res.output
