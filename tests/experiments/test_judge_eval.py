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


def _pb(tmp_path, cases, name="pb.jsonl", **change):
    path = tmp_path / name
    rows = [{k: v for k, v in case_to_processbench(c).items() if k != "final_answer_correct"} for c in cases]
    write_records(path, [{**r, **change.get(r["id"], {})} for r in rows])
    return path


def test_a_judge_never_sees_the_label(tmp_path):
    """A case's correctness comes from its final answer against the gold answer, as in locate: a
    solution labelled all-correct whose final answer is wrong is graded wrong, and the rollout judge
    has to roll out to say anything about it."""
    from stepdpo.experiments.judge_eval import judged_as_in_locate

    cases = load_cases("synthetic", 12)
    wrong = next(c for c in cases if c.label >= 0 and c.label == len(c.steps) - 1)  # the slip changes the answer
    right = next(c for c in cases if c.label < 0)
    pb = _pb(tmp_path, [wrong, right], **{wrong.id: {"label": -1}})  # the label lies; the judge must not know
    got = load_cases(str(pb), None)
    assert [judged_as_in_locate(c).solution.correct for c in got] == [False, True]
    cfg = EvalJudgeConfig(
        data=str(pb), judge="rollout", m=2, max_new_tokens=120, batch_size=64, out=str(tmp_path / "o")
    )
    run_eval_judge(cfg)
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "o" / "cases.jsonl").read_text().splitlines())}
    assert rows[wrong.id]["rollouts"] + rows[wrong.id]["root_rollouts"] > 0 and rows[right.id]["rollouts"] == 0


def test_a_case_without_a_gold_answer_is_graded_nothing_and_counted(tmp_path):
    cases = load_cases("synthetic", 6)
    pb = _pb(tmp_path, cases, **{c.id: {"answer": None} for c in cases[:2]})
    summary = run_eval_judge(EvalJudgeConfig(data=str(pb), judge="verifier", out=str(tmp_path / "o")))
    assert summary["without_gold_answer"] == 2
    sols = [json.loads(x) for x in (tmp_path / "o" / "solutions.jsonl").read_text().splitlines()]
    assert [s["correct"] for s in sols[:2]] == [False, False]


def test_judgements_must_judge_the_cases_own_steps_once(tmp_path):
    from stepdpo.exchange import case_to_located
    from stepdpo.recordio import DataError

    cases = load_cases("synthetic", 4)
    pb = _pb(tmp_path, cases)
    judged = [case_to_located(c) for c in cases]
    j = tmp_path / "j.jsonl"
    # another step split: the first two steps judged as one
    sol = judged[1].solution
    merged = [sol.steps[0] + sol.steps[1], *sol.steps[2:]]
    other = LocatedError(type(sol)(**{**sol.__dict__, "steps": merged}), 1, "mine")
    write_records(j, [judged[0], other])
    with pytest.raises(DataError, match=r"j.jsonl:2: case .*: the judged steps \(\d+\) are not the case's steps"):
        run_eval_judge(EvalJudgeConfig(data=str(pb), judgements=str(j), out=str(tmp_path / "o")))
    stranger = LocatedError(type(sol)(**{**sol.__dict__, "id": "nobody"}), 1, "mine")
    write_records(j, [judged[0], stranger])
    res = runner.invoke(app, ["eval-judge", "--data", str(pb), "--judgements", str(j), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "j.jsonl:2: solution id 'nobody' is no case" in res.output
    write_records(j, [judged[0], judged[0]])
    with pytest.raises(DataError, match=r"j.jsonl:2: .* is judged twice \(line 1\)"):
        run_eval_judge(EvalJudgeConfig(data=str(pb), judgements=str(j), out=str(tmp_path / "o")))


def test_repeated_case_ids_are_refused(tmp_path):
    from stepdpo.recordio import DataError

    cases = load_cases("synthetic", 3)
    pb = _pb(tmp_path, [cases[0], cases[1], cases[0]])
    with pytest.raises(DataError, match=r"pb.jsonl:3: case id .* repeats line 1's"):
        load_cases(str(pb), None)


def test_a_file_is_read_whole_unless_limited_and_the_plot_stays_small(tmp_path):
    cases = load_cases("synthetic", 230)
    pb = _pb(tmp_path, cases)
    res = runner.invoke(app, ["eval-judge", "--data", str(pb), "--limit", "none", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["cases"] == 230
    assert len(load_cases(str(pb), EvalJudgeConfig().limit)) == 230
    from matplotlib.image import imread

    from stepdpo.experiments.judge_eval import confusion_plot

    path = confusion_plot([3, 4000, -1, 25], [5, 3999, None, 1], tmp_path / "c.png")
    assert imread(path).shape[1] < 1200  # steps past 20 share one bucket
