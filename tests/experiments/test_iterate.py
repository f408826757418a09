import json

import pytest

from stepdpo.experiments.iterate import IterateConfig, run_iterate


@pytest.mark.slow
def test_each_round_starts_from_the_last_model(tmp_path):
    res = run_iterate(
        IterateConfig(out=str(tmp_path), rounds=2, train_problems=30, eval_problems=20, epochs=1.0, k=3, n=4)
    )
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
    # the sampling options reach the pipeline: 3 solutions per problem, 4 continuations per error
    collect = json.loads((tmp_path / "round1" / "data" / "summary.json").read_text())[0]
    assert collect["stage"] == "collect" and collect["counters"]["wrong"] + collect["counters"]["correct"] == 3 * 30
    rect = [json.loads(x) for x in (tmp_path / "round1" / "data" / "rectified.jsonl").read_text().splitlines()]
    assert rect and all(r["sampled"] == 4 for r in rect)


def test_rounds_take_fresh_slices_of_a_problem_file(tmp_path):
    from stepdpo.experiments.iterate import round_problems
    from stepdpo.recordio import read_records

    data = tmp_path / "problems.jsonl"
    data.write_text(
        "".join(json.dumps({"problem": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(5))
    )
    cfg = IterateConfig(data=str(data), eval_data=str(data), judge="rollout", train_problems=2)
    seen = []
    for r in (1, 2, 3):
        path, seed = round_problems(cfg, r, tmp_path / f"round{r}")
        assert seed is None
        seen += [p.answer for p in read_records(path, "problem")[0]]
    assert seen == ["1", "2", "3", "4", "5"]
    with pytest.raises(ValueError, match="no problems left for round 4"):
        round_problems(cfg, 4, tmp_path / "round4")
    # a generated task draws a new set per round instead
    assert round_problems(IterateConfig(), 1, tmp_path)[1] != round_problems(IterateConfig(), 2, tmp_path)[1]


def test_impossible_combinations_are_refused_before_any_model_loads(tmp_path):
    with pytest.raises(ValueError, match="needs a generated task's exact checker"):
        IterateConfig(data="gsm8k", eval_data="gsm8k").check()
    with pytest.raises(ValueError, match="--eval-data is needed"):
        IterateConfig(data=str(tmp_path / "x.jsonl"), judge="rollout").check()
