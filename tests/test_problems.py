import json

import pytest

from stepdpo.problems import gsm8k_solution_to_steps, load_problem_file, load_problems
from stepdpo.recordio import DataError
from stepdpo.text.grading import grade


def test_gsm8k_file_loads_with_step_solutions(shared_data):
    problems, report = load_problem_file(shared_data / "gsm8k_test.jsonl")
    assert len(problems) == 1319 and report.kept == 1319
    p = problems[0]
    assert p.solution.startswith("Step 1: ") and "<<" not in p.solution
    assert grade(p.solution, p.answer)


def test_math500_file_loads(shared_data):
    problems = load_problems(str(shared_data / "math500_test.jsonl"), limit=20)
    assert len(problems) == 20 and problems[0].id.startswith("test/")
    assert all(grade(p.solution, p.answer) for p in problems)


def test_bad_gsm8k_row_names_the_line(tmp_path):
    f = tmp_path / "g.jsonl"
    f.write_text(
        json.dumps({"question": "q", "answer": "12\n#### 3"})
        + "\n"
        + json.dumps({"question": "q2", "answer": "no marker"})
        + "\n"
    )
    with pytest.raises(DataError, match="g.jsonl:2: GSM8K answer has no"):
        load_problem_file(f)
    problems, report = load_problem_file(f, skip_invalid=True)
    assert len(problems) == 1 and report.skipped == {"unparsable_answer": 1}


def test_gsm8k_steps():
    steps, answer = gsm8k_solution_to_steps("A has 2<<1+1=2>>\nB has 4\n#### 1,004")
    assert answer == "1004"
    assert steps == "Step 1: A has 2\nStep 2: B has 4\nThe answer is \\boxed{1004}."


@pytest.mark.parametrize("spec", ["synthetic", "synthetic-long"])
def test_synthetic_splits_do_not_overlap(spec):
    train = load_problems(spec, split="train", limit=300)
    test = load_problems(spec, split="test", limit=100)
    assert len(test) == 100 and not {p.problem for p in train} & {p.problem for p in test}


def test_unknown_source_is_clear():
    with pytest.raises(DataError, match="no such file"):
        load_problems("nope.jsonl")


def test_a_problem_record_with_a_solution_keeps_its_source_meta_and_id(tmp_path):
    from stepdpo.recordio import write_records
    from stepdpo.tasks import get_task, step_checker

    problems = get_task("synthetic").problems("train", 3)
    assert all(p.solution for p in problems)
    write_records(tmp_path / "problems.jsonl", problems)
    back = load_problems(str(tmp_path / "problems.jsonl"))
    assert [(p.id, p.source, p.meta) for p in back] == [(p.id, p.source, p.meta) for p in problems]
    assert step_checker(back[0].source, back[0].meta) is not None  # the verifier judge can check them


def test_a_hub_name_without_a_network_says_how_to_pass_a_local_file(monkeypatch):
    from typer.testing import CliRunner

    from stepdpo.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", "/nonexistent-stepdpo-cache")
    with pytest.raises(DataError, match=r"loads from the Hugging Face Hub.*pass a local file"):
        load_problems("hub:someone/no-such-set")
    res = CliRunner().invoke(app, ["eval", "--data", "gsm8k", "--limit", "2", "--out", "/tmp/stepdpo-eval-offline"])
    assert res.exit_code == 2 and "pass a local file" in res.output and "Traceback" not in res.output
