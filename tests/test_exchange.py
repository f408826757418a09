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


# steps as real model solutions write them: leading and trailing spaces, a tab, CRLF, markers of
# their own, a "Step 1:" list after an introduction, and an id 0
REAL = [
    {
        "id": 0,
        "problem": "Sum the series 1 + 1/2 + 1/4 + ...",
        "steps": [
            "To sum it we need the number of terms.",
            "Step 1: The given series is geometric.\r\n",
            "  **Step 2:** its ratio is 1/2,\tso the sum is 2. ",
            "Step 3. The answer is $\\boxed{2}$.",
        ],
        "label": -1,
        "final_answer_correct": True,
        "answer": "2",
    },
    {
        "id": "b-7",
        "problem": "What is 3 * 4?",
        "steps": ["Step 1: 3 * 4 = 13", "\tSo the answer is \\boxed{13}.\n"],
        "label": 0,
        "final_answer_correct": None,
        "answer": "12",
    },
    {
        "id": "c",
        "problem": "What is 2 + 2?",
        "steps": ["2 + 2 = 5.", "The answer is \\boxed{4}."],
        "label": 0,
        "final_answer_correct": True,
        "answer": "4",
    },
]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("via", ["processbench", "trl-stepwise", "located"])
def test_real_step_texts_round_trip_byte_for_byte(tmp_path, via, suffix):
    rows = REAL if suffix == ".jsonl" else [{**r, "id": str(r["id"])} for r in REAL]  # one Arrow type a column
    src = tmp_path / f"pb{suffix}"
    write_records(src, rows)
    mid, back = tmp_path / f"mid{suffix}", tmp_path / f"back{suffix}"
    convert(src, mid, via)
    convert(mid, back, "processbench")
    if via == "located":  # a located error's id is a string
        rows = [{**r, "id": str(r["id"])} for r in rows]
    assert _rows(back) == rows


def test_a_step_that_opens_with_step_stays_one_step_with_its_own_number(tmp_path):
    src = tmp_path / "pb.jsonl"
    write_records(src, REAL[:1])
    convert(src, tmp_path / "loc.jsonl", "located")
    (err,) = read_records(tmp_path / "loc.jsonl", "located_error")[0]
    steps = err.solution.steps
    assert len(steps) == 4 and err.solution.completion == "".join(steps)
    assert steps[0] == "Step 1: To sum it we need the number of terms.\n"  # not glued to the next step
    assert steps[1] == "Step 2: Step 1: The given series is geometric.\r\n\n"
    assert steps[3].startswith("Step 4: Step 3.")


def test_located_errors_round_trip_through_parquet(located, tmp_path):
    convert(located, tmp_path / "loc.parquet", "located")  # empty and uneven meta mappings
    again = read_records(tmp_path / "loc.parquet", "located_error")[0]
    orig = [e for e in read_records(located, "located_error")[0] if e.first_error_step or e.reason == NO_WRONG_STEP]
    assert [e.to_dict() for e in again] == [e.to_dict() for e in orig]


def test_step_markers_with_a_period_convert_to_the_released_layout(tmp_path):
    pair = toy_pairs(1)[0].to_dict()
    pair.update(initial_reason_steps="Step 1. a = 2\n", chosen="Step 2. b = 3\n", rejected="Step 2. b = 4\n")
    pair.update(full_chosen=None, full_rejected=None)
    write_records(tmp_path / "p.jsonl", [pair])
    convert(tmp_path / "p.jsonl", tmp_path / "r.jsonl", "step-dpo")
    (row,) = _rows(tmp_path / "r.jsonl")
    assert row["initial_reason_steps"].endswith("Step 2.") and row["chosen"] == " b = 3\n"


def test_convert_refuses_to_overwrite_a_folder_or_guess_a_suffix(located, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    (folder / "state.json").write_text("{}")
    res = runner.invoke(app, ["convert", str(located), str(folder), "--to", "processbench"])
    assert res.exit_code == 2 and "not a dataset folder written by stepdpo" in res.output
    assert (folder / "README.md").read_text() == "my notes" and (folder / "state.json").exists()
    res = runner.invoke(app, ["convert", str(located), str(tmp_path / "x.txt"), "--to", "processbench"])
    assert res.exit_code == 2 and "unknown output suffix '.txt'" in res.output and not (tmp_path / "x.txt").exists()
    ours = tmp_path / "ds"
    for _ in range(2):  # our own dataset folder is rewritten
        assert runner.invoke(app, ["convert", str(located), str(ours), "--to", "processbench"]).exit_code == 0


def test_label_faults_are_named_or_counted(tmp_path):
    """A non-boolean final_answer_correct is refused with file:line (not read as null), an id used
    twice is refused, and true labels after a row's first false one are counted as read false."""

    def rows(path, *items):
        path.write_text("".join(json.dumps(r) + "\n" for r in items))
        return path

    ok = {"prompt": "p", "completions": ["a", "b"], "labels": [True, True]}
    yes = rows(tmp_path / "yes.jsonl", ok, {**ok, "final_answer_correct": "yes"})
    with pytest.raises(DataError, match=r"yes.jsonl:2: 'final_answer_correct' must be true, false or null, got 'yes'"):
        convert(yes, tmp_path / "o.jsonl", "processbench")
    twice = rows(tmp_path / "twice.jsonl", {**ok, "id": 7}, {**ok, "id": 7, "prompt": "q"})
    with pytest.raises(DataError, match=r"twice.jsonl:2: id 7 is used again \(first on line 1\)"):
        convert(twice, tmp_path / "o.jsonl", "processbench")
    flipped = rows(
        tmp_path / "flipped.jsonl",
        {"prompt": "p", "completions": ["a", "b", "c", "d"], "labels": [True, False, True, True]},
        {"prompt": "q", "completions": ["a", "b"], "labels": [True, False]},
    )
    report = convert(flipped, tmp_path / "o.jsonl", "processbench")
    assert (report.relabelled, report.relabelled_rows) == (2, 1)
    assert "2 true step labels in 1 rows came after the row's first false one" in report.text()
    assert [json.loads(x)["label"] for x in (tmp_path / "o.jsonl").read_text().splitlines()] == [1, 1]
