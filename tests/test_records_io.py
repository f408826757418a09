import json

import pytest

from stepdpo.recordio import (
    AppendWriter,
    DataError,
    read_records,
    validate_file,
    write_records,
)
from stepdpo.records import LocatedError, Problem, Solution, StepPair

PAIR = {
    "prompt": "What is 2+3*4?",
    "initial_reason_steps": "Let's think step by step.\nStep 1: 3*4 = 12.\n",
    "chosen": "Step 2: 2 + 12 = 14.",
    "rejected": "Step 2: 2 + 12 = 15.",
    "full_chosen": "x",
    "full_rejected": "y",
    "answer": "14",
    "dataset": "toy",
}


def _write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return p


def test_released_schema_loads_as_is(tmp_path):
    p = _write(tmp_path, "pairs.jsonl", [PAIR, dict(PAIR, chosen="Step 2: 14.")])
    pairs, report = read_records(p, "step_pair")
    assert len(pairs) == 2 and report.kept == 2
    assert isinstance(pairs[0], StepPair) and pairs[0].answer == "14"
    for suffix in (".json", ".parquet"):
        out = tmp_path / f"copy{suffix}"
        write_records(out, pairs)
        again, _ = read_records(out, "step_pair")
        assert [a.to_dict() for a in again] == [a.to_dict() for a in pairs]


@pytest.mark.parametrize(
    "bad,reason,msg",
    [
        ("{not json", "malformed_json", "malformed JSON"),
        ({k: v for k, v in PAIR.items() if k != "chosen"}, "missing_field", "missing field 'chosen'"),
        (dict(PAIR, rejected="   "), "empty_rejected", "'rejected' is empty"),
        (dict(PAIR, rejected=PAIR["chosen"]), "chosen_equals_rejected", "same step"),
        ([1, 2], "not_an_object", "JSON object"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, bad, reason, msg):
    p = _write(tmp_path, "pairs.jsonl", [PAIR, bad, PAIR])
    with pytest.raises(DataError) as e:
        read_records(p, "step_pair")
    assert "pairs.jsonl:2:" in str(e.value) and msg in str(e.value)
    pairs, report = read_records(p, "step_pair", skip_invalid=True)
    assert len(pairs) == 2 and report.skipped == {reason: 1}
    assert validate_file(p, "step_pair").skipped == {reason: 1}


def test_solution_and_located_error_round_trip(tmp_path):
    sol = Solution(
        id="s1",
        problem_id="p1",
        problem="q",
        answer="3",
        completion="Step 1: a\nStep 2: b",
        steps=["Step 1: a\n", "Step 2: b"],
        correct=False,
    )
    err = LocatedError(solution=sol, first_error_step=2, judge="verifier", evidence={"m": 1})
    write_records(tmp_path / "e.jsonl", [err])
    (back,), _ = read_records(tmp_path / "e.jsonl", "located_error")
    assert back.prior_steps == ["Step 1: a\n"] and back.rejected_step == "Step 2: b"
    bad = dict(err.to_dict(), first_error_step=5)
    _write(tmp_path, "bad.jsonl", [bad])
    with pytest.raises(DataError, match="bad.jsonl:1: first_error_step 5"):
        read_records(tmp_path / "bad.jsonl", "located_error")
    empty = dict(sol.to_dict(), steps=["Step 1: a\n", "  "])
    _write(tmp_path, "s.jsonl", [empty])
    with pytest.raises(DataError, match="step 2 is empty"):
        read_records(tmp_path / "s.jsonl", "solution")


def test_problem_numbers_become_strings():
    p = Problem.from_dict({"problem": "1+1?", "answer": 2})
    assert p.answer == "2" and p.id


def test_append_writer_repairs_a_torn_line(tmp_path):
    path = tmp_path / "out.jsonl"
    with AppendWriter(path) as w:
        w.write({"id": "a", "v": 1})
        w.write({"id": "b", "v": 2})
    with open(path, "a") as fh:
        fh.write('{"id": "c", "v"')  # killed mid-write
    w = AppendWriter(path)
    assert w.done == {"a", "b"}
    w.write({"id": "c", "v": 3})
    w.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_records(tmp_path / "nope.jsonl")


def test_bom_bad_bytes_folders_and_empty_files(tmp_path):
    from stepdpo.recordio import DataError, read_records, validate_file

    good = json.dumps(PAIR)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\n")
    assert read_records(bom, "step_pair")[1].kept == 1  # a byte-order mark is not an error
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(good.encode() + b"\n" + b'{"prompt": "\xff\xfe"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not UTF-8"):
        read_records(bad, "step_pair")
    with pytest.raises(DataError, match="is a folder, not a data file"):
        read_records(tmp_path, "step_pair")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    report = validate_file(empty)
    assert report.skipped["empty_file"] == 1 and "empty" in report.summary()


def test_merge_refuses_mixed_kinds(tmp_path):
    from stepdpo.pipeline.runner import merge_shards

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(PAIR) + "\n")
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    with pytest.raises(ValueError, match="different kinds"):
        merge_shards([pairs, problems], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_mapping_field_of_the_wrong_type_is_named_by_file_and_line(tmp_path):
    sol = Solution(
        id="s1", problem_id="p1", problem="q", answer="3", completion="Step 1: a", steps=["Step 1: a"], correct=False
    )
    err = LocatedError(solution=sol, first_error_step=1, judge="verifier")
    _write(tmp_path, "m.jsonl", [err.to_dict(), {**err.to_dict(), "solution": {**sol.to_dict(), "meta": 5}}])
    with pytest.raises(DataError, match=r"m.jsonl:2: field 'meta' must be a mapping"):
        read_records(tmp_path / "m.jsonl", "located_error")
    _write(tmp_path, "e.jsonl", [{**err.to_dict(), "evidence": "abc"}])
    with pytest.raises(DataError, match=r"e.jsonl:1: field 'evidence' must be a mapping"):
        read_records(tmp_path / "e.jsonl", "located_error")


def test_review_reads_a_solutions_file_against_its_own_schema(tmp_path):
    from stepdpo.review import load_items

    sol = Solution(
        id="s1", problem_id="p1", problem="q", answer="3", completion="Step 1: a", steps=["Step 1: a"], correct=False
    )
    rows = [sol.to_dict(), {**sol.to_dict(), "id": "s2"}, {**sol.to_dict(), "id": "s3", "steps": []}]
    _write(tmp_path, "sols.jsonl", rows)
    with pytest.raises(DataError, match=r"sols.jsonl:3: field 'steps' must be a non-empty list"):
        load_items(tmp_path / "sols.jsonl", "locate")
