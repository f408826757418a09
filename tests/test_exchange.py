"""stepdpo convert: every format round-trips on what it carries; bad input is named by line."""

import json
from pathlib import Path

import pytest
from helpers import toy_pairs
from typer.testing import CliRunner

from stepdpo.cli import app
from stepdpo.exchange import convert, detect_format, read_rows
from stepdpo.experiments.judge_eval import load_cases
from stepdpo.models import load_tokenizer
from stepdpo.recordio import DataError, read_records, write_records
from stepdpo.records import NO_WRONG_STEP, LocatedError
from stepdpo.text.prompts import build_prompt
from stepdpo.training.inspect import decoded_pairs

RELEASED = Path(__file__).resolve().parent / "data" / "math_step_dpo_10k.jsonl"
runner = CliRunner()


def _rows(path):
    return [row for _, row in read_rows(path)]


@pytest.fixture(scope="module")
def located(tmp_path_factory):
    """Located errors as the exact checker writes them: located ones and no-wrong-step ones."""
    from stepdpo.exchange import case_to_located

    cases = load_cases("synthetic", 12)
    path = tmp_path_factory.mktemp("located") / "located.jsonl"
    errs = [case_to_located(c, judge="verifier") for c in cases]
    errs.append(LocatedError(errs[0].solution, None, "rollout", reason="unsolvable_by_policy"))  # no label
    write_records(path, errs)
    return path


def test_the_released_layout_round_trips_and_trains_on_the_same_sequences(tmp_path, default_model):
    ours, back = tmp_path / "ours.jsonl", tmp_path / "released.jsonl"
    assert convert(RELEASED, ours, "step-pair").rows_out == 5
    assert detect_format(_rows(ours)[1]) == "step-pair"
    convert(ours, back, "step-dpo")
    keys = ("prompt", "initial_reason_steps", "chosen", "rejected", "full_chosen", "full_rejected", "answer")
    assert [{k: r[k] for k in keys} for r in _rows(back)] == [{k: r[k] for k in keys} for r in _rows(RELEASED)]
    tok = load_tokenizer(default_model)
    a = decoded_pairs(tok, read_records(RELEASED, "step_pair")[0], prompt_format="base")
    b = decoded_pairs(tok, read_records(ours, "step_pair")[0], prompt_format="base")
    # the same token sequences; the released layout puts the step's marker in the prompt, this
    # project's in both completions, where its log-probs cancel in eq. 2 (same tokens, same context)
    for x, y in zip(a, b):
        for side in ("chosen", "rejected"):
            assert x["prompt"] + x[side] == y["prompt"] + y[side]
            assert x["tokens"]["prompt"] + x["tokens"][side] == y["tokens"]["prompt"] + y["tokens"][side]
    dpo_a = decoded_pairs(tok, read_records(RELEASED, "step_pair")[0], pair_format="dpo", prompt_format="base")
    dpo_b = decoded_pairs(tok, read_records(ours, "step_pair")[0], pair_format="dpo", prompt_format="base")
    assert [x["prompt"] + x["chosen"] for x in dpo_a] == [x["prompt"] + x["chosen"] for x in dpo_b]


def test_this_projects_pairs_round_trip_through_the_released_layout(tmp_path):
    pairs = toy_pairs(6)
    src, mid, back = tmp_path / "pairs.jsonl", tmp_path / "released.jsonl", tmp_path / "back.jsonl"
    write_records(src, pairs)
    convert(src, mid, "step-dpo")
    assert all(r["initial_reason_steps"].rstrip().endswith(":") for r in _rows(mid))
    convert(mid, back, "step-pair")
    assert read_records(back, "step_pair")[0] == pairs


def test_preference_rows_hold_exactly_the_training_text(tmp_path):
    pairs = toy_pairs(4)
    src, out = tmp_path / "pairs.jsonl", tmp_path / "pref.parquet"
    write_records(src, pairs)
    convert(src, out, "preference", prompt_format="qwen2-boxed")
    rows = _rows(out)
    for p, r in zip(pairs, rows):
        assert set(r) == {"prompt", "chosen", "rejected"}
        assert (
            r["prompt"] + r["chosen"]
            == build_prompt(p.prompt, p.initial_reason_steps, prompt_format="qwen2-boxed") + p.chosen
        )
    with pytest.raises(DataError, match=r"pref.parquet:1: preference rows cannot be read back"):
        convert(out, tmp_path / "x.jsonl", "step-pair")


def test_labels_round_trip_through_processbench_and_trl(located, tmp_path):
    pb, trl, back1, back2 = (tmp_path / n for n in ("pb.jsonl", "trl.jsonl", "back1.jsonl", "back2.jsonl"))
    report = convert(located, pb, "processbench")
    assert report.rows_in == 13 and report.rows_out == 12 and report.skipped == {"unlocated (no label)": 1}
    rows = _rows(pb)
    assert all(not s.startswith("Step") for r in rows for s in r["steps"])  # bodies, as ProcessBench has them
    convert(pb, trl, "trl-stepwise")
    for r, t in zip(rows, _rows(trl)):
        k = r["label"]
        assert t["labels"] == [k < 0 or i < k for i in range(len(r["steps"]))]
    convert(trl, back1, "located")
    convert(pb, back2, "located")
    orig = read_records(located, "located_error")[0][:12]
    for back in (back1, back2):
        got = read_records(back, "located_error")[0]
        assert [e.first_error_step for e in got] == [e.first_error_step for e in orig]
        assert [e.solution.steps for e in got] == [e.solution.steps for e in orig]
        assert [(e.solution.problem, e.solution.answer, e.solution.id) for e in got] == [
            (e.solution.problem, e.solution.answer, e.solution.id) for e in orig
        ]
        assert all(e.reason == NO_WRONG_STEP for e in got if e.first_error_step is None)


def test_a_dataset_folder_with_its_card(located, tmp_path):
    out = tmp_path / "pb-dataset"
    res = runner.invoke(app, ["convert", str(located), str(out), "--to", "processbench"])
    assert res.exit_code == 0, res.output
    assert "13 located rows -> 12 processbench rows" in res.output
    card = (out / "README.md").read_text()
    assert "located by the verifier judge: 12 rows" in card and "skipped: unlocated (no label) 1" in card
    assert [r["label"] for r in _rows(out)] == [r["label"] for r in _rows(convert_to(located, tmp_path))]
    convert(out, tmp_path / "again.jsonl", "trl-stepwise")  # a dataset folder reads back
    assert len(_rows(tmp_path / "again.jsonl")) == 12


def convert_to(located, tmp_path):
    convert(located, tmp_path / "pb.jsonl", "processbench")
    return tmp_path / "pb.jsonl"


def test_bad_input_is_named_by_file_and_line(tmp_path):
    bad = tmp_path / "pb.jsonl"
    good = {"id": "a", "problem": "p", "steps": ["x", "y"], "label": 1, "final_answer_correct": False}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "label": 5}) + "\n")
    with pytest.raises(DataError, match=r"pb.jsonl:2: label 5 is not -1 or a step index 0..1"):
        convert(bad, tmp_path / "o.jsonl", "trl-stepwise")
    bad.write_text(json.dumps(good) + "\n")
    with pytest.raises(DataError, match=r"pb.jsonl:1: a located error needs the gold answer"):
        convert(bad, tmp_path / "o.jsonl", "located")
    with pytest.raises(DataError, match=r"pb.jsonl:1: processbench rows are step labels"):
        convert(bad, tmp_path / "o.jsonl", "step-dpo")
    bad.write_text(json.dumps(good) + "\n{oops\n")
    res = runner.invoke(app, ["convert", str(bad), str(tmp_path / "o.jsonl"), "--to", "trl-stepwise"])
    assert res.exit_code == 2 and "pb.jsonl:2" in res.output and "Traceback" not in res.output
