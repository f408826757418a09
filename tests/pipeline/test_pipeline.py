import json

import pytest

from stepdpo.pipeline.run import (
    PipelineConfig,
    run_build,
    run_collect,
    run_locate,
    run_pipeline,
    run_rectify,
)
from stepdpo.pipeline.runner import ledger_path, merge_shards
from stepdpo.recordio import read_records
from stepdpo.stages.collect import CollectConfig
from stepdpo.stages.locate import make_judge
from stepdpo.stages.pairs import BuildConfig, build_pairs
from stepdpo.stages.rectify import RectifyConfig
from stepdpo.tasks.arithmetic import check_solution

CCFG = CollectConfig(k=4, temperature=1.0, max_new_tokens=160, seed=1)


def _ids(path):
    return [json.loads(line)["id"] for line in open(path)]


def test_collect_keeps_wrong_solutions_and_records_settings(gen, problems, tmp_path):
    s = run_collect(gen, problems, tmp_path / "errors.jsonl", CCFG)
    sols, _ = read_records(tmp_path / "errors.jsonl", "solution")
    assert s.rows_in == 12 and s.rows_out == len(sols) > 0
    assert s.counters["correct"] + s.counters["wrong"] + sum(s.dropped.values()) == 48
    assert all(not x.correct for x in sols)
    g = sols[0].generator
    assert g["prompt_format"] == "base" and g["sampling"]["n"] == 4 and g["sampling"]["temperature"] == 1.0
    assert all(x.completion.startswith("Step 1:") for x in sols)


def test_collect_resumes_after_a_kill(gen, problems, tmp_path):
    full = tmp_path / "full.jsonl"
    run_collect(gen, problems, full, CCFG)
    part = tmp_path / "part.jsonl"
    run_collect(gen, problems, part, CCFG)
    # simulate a kill: the output ends in a torn line, the ledger lost its last entries
    text = part.read_text()
    part.write_text(text[: len(text) * 2 // 3])
    led = ledger_path(part)
    led.write_text("".join(line + "\n" for line in led.read_text().splitlines()[:5]))
    s = run_collect(gen, problems, part, CCFG)
    assert s.resumed == 5
    assert sorted(_ids(part)) == sorted(_ids(full))  # nothing lost, nothing twice


def test_shards_merge_to_the_whole(gen, problems, tmp_path):
    run_collect(gen, problems, tmp_path / "all.jsonl", CCFG)
    for i in range(2):
        run_collect(gen, problems, tmp_path / "e.jsonl", CCFG, shard=(i, 2))
    shards = [tmp_path / "e.shard-0-of-2.jsonl", tmp_path / "e.shard-1-of-2.jsonl"]
    n = merge_shards(shards, tmp_path / "merged.jsonl", "solution")
    assert n == len(_ids(tmp_path / "all.jsonl"))
    assert sorted(_ids(tmp_path / "merged.jsonl")) == sorted(_ids(tmp_path / "all.jsonl"))


def test_locate_rectify_build(gen, problems, tmp_path):
    run_collect(gen, problems, tmp_path / "errors.jsonl", CCFG)
    s = run_locate(make_judge("verifier"), tmp_path / "errors.jsonl", tmp_path / "located.jsonl")
    located, _ = read_records(tmp_path / "located.jsonl", "located_error")
    assert s.counters["located"] == sum(e.first_error_step is not None for e in located) > 0
    for e in located:
        if e.first_error_step:
            p = next(p for p in problems if p.id == e.solution.problem_id)
            assert check_solution(p, e.solution.completion).first_error_step == e.first_error_step
    r = run_rectify(
        gen,
        tmp_path / "located.jsonl",
        tmp_path / "rect.jsonl",
        RectifyConfig(n=8, temperature=1.0, max_new_tokens=160, seed=2),
    )
    rects, _ = read_records(tmp_path / "rect.jsonl", "rectification")
    assert r.rows_out == len(rects) > 0
    for rect in rects:
        for c in rect.candidates:  # s_win is the first step of a continuation that reached the answer
            assert c["continuation"].startswith(c["step"])
            assert c["step"].startswith(f"Step {rect.error.first_error_step}:")
    b = run_build(tmp_path / "rect.jsonl", tmp_path / "pairs.jsonl", BuildConfig(recheck=True))
    pairs, _ = read_records(tmp_path / "pairs.jsonl", "step_pair")
    assert b.rows_out == len(pairs) > 0
    for pair in pairs:
        assert pair.initial_reason_steps.startswith("Let's think step by step.\n")
        assert pair.chosen != pair.rejected and pair.full_chosen.startswith(pair.initial_reason_steps)
    dpo, _ = build_pairs(rects, BuildConfig(pair_format="dpo"))
    assert dpo and all(p.chosen.startswith("Step 1:") for p in dpo)


def test_rollout_judge_binary_and_linear(gen, problems, tmp_path):
    run_collect(gen, problems, tmp_path / "errors.jsonl", CCFG)
    sols, _ = read_records(tmp_path / "errors.jsonl", "solution")
    sols = sols[:6]
    res = {}
    for search in ("binary", "linear", "full"):
        judge = make_judge("rollout", gen, m=4, search=search, max_new_tokens=160, temperature=1.0)
        res[search] = judge.locate(sols)
    for e in res["binary"]:
        if e.first_error_step is None:
            assert e.reason == "unsolvable_by_policy"
        else:
            assert 1 <= e.first_error_step <= len(e.solution.steps)
            assert e.evidence["rollouts"] > 0 or len(e.solution.steps) == 1
    assert sum(e.evidence["rollouts"] for e in res["full"]) >= sum(e.evidence["rollouts"] for e in res["linear"])


def test_pipeline_from_yaml_and_partial_runs(tmp_path):
    cfg_file = tmp_path / "p.yaml"
    cfg_file.write_text(f"""
model: default
limit: 6
out: {tmp_path / "run"}
backend: hf
collect: {{k: 4, temperature: 1.0, max_new_tokens: 160}}
locate: {{judge: verifier}}
rectify: {{n: 4, temperature: 1.0, max_new_tokens: 160}}
""")
    cfg = PipelineConfig.from_yaml(cfg_file)
    first = run_pipeline(cfg, "collect", "locate")
    assert [s.stage for s in first] == ["collect", "locate"]
    rest = run_pipeline(cfg, "rectify", "build")
    assert [s.stage for s in rest] == ["rectify", "build (step)", "build (dpo)"]
    assert (tmp_path / "run" / "pairs.jsonl").exists() and (tmp_path / "run" / "pairs_dpo.jsonl").exists()
    # a dataset card beside the pairs, every stage's counts in it (the partial runs' too)
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(tmp_path / "run" / "README.md")
    assert "stepdpo" in card.data.tags and card.data.license == "apache-2.0"
    assert [c["data_files"] for c in card.data.configs] == ["pairs.trl.jsonl", "pairs.jsonl", "pairs_dpo.jsonl"]
    assert card.data.configs[0]["config_name"] == "default"  # load_dataset(folder) gives TRL's layout
    for stage in ("| collect |", "| locate |", "| rectify |", "| build (step) |", "judge verifier", "load_dataset("):
        assert stage in card.text, stage
    assert "api_key" not in card.text
    (tmp_path / "run" / "README.md").write_text("my own notes\n")
    run_pipeline(cfg, "build", "build")
    assert (tmp_path / "run" / "README.md").read_text() == "my own notes\n"  # a foreign README is kept
    # `stepdpo build` alone writes a card from what its input says of how it was made
    from typer.testing import CliRunner

    from stepdpo.cli import app

    out = tmp_path / "alone" / "pairs.jsonl"
    res = CliRunner().invoke(app, ["build", "--in", str(tmp_path / "run" / "rectified.jsonl"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    card = DatasetCard.load(out.parent / "README.md")
    assert (
        "stepdpo" in card.data.tags
        and "sampled by default" in card.text
        and "located by the verifier judge" in card.text
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("collect: {kk: 3}\n")
    with pytest.raises(ValueError, match="bad.yaml: section .collect.: unknown option"):
        PipelineConfig.from_yaml(bad)


def test_a_second_writer_of_the_same_output_fails_at_once(gen, problems, tmp_path):
    import os

    from stepdpo.recordio import OutputLocked, exclusive

    out = tmp_path / "errors.jsonl"
    # as if another process were running the stage
    with exclusive(out), pytest.raises(OutputLocked, match=f"being written by process {os.getpid()}"):
        run_collect(gen, problems[:2], out, CCFG)
    assert not out.exists() or out.read_text() == ""
    run_collect(gen, problems[:2], out, CCFG)  # the lock is free again
    assert out.exists()


def test_holistic_pairs_set_a_correct_against_a_wrong_whole_solution(gen, problems, tmp_path):
    """Holistic DPO (Sec. 3.1, the baseline of Table 3): both sides are the model's own whole
    solutions of one problem, one reaching the gold answer and one not."""
    run_collect(gen, problems, tmp_path / "all.jsonl", CollectConfig(**{**CCFG.__dict__, "keep_correct": True}))
    s = run_build(tmp_path / "all.jsonl", tmp_path / "pairs.jsonl", BuildConfig(pair_format="holistic"))
    pairs, _ = read_records(tmp_path / "pairs.jsonl", "step_pair")
    sols = {x.id: x for x in read_records(tmp_path / "all.jsonl", "solution")[0]}
    assert s.rows_out == len(pairs) > 0
    for p in pairs:
        good, bad = sols[p.meta["chosen_id"]], sols[p.meta["rejected_id"]]
        assert good.correct and not bad.correct and good.problem_id == bad.problem_id
        assert (p.chosen, p.rejected, p.initial_reason_steps) == (good.completion, bad.completion, "")
    outcomes = {}
    for x in sols.values():
        outcomes.setdefault(x.problem_id, set()).add(x.correct)
    assert {sols[p.meta["chosen_id"]].problem_id for p in pairs} == {k for k, v in outcomes.items() if len(v) == 2}
    with pytest.raises(ValueError, match="set collect.keep_correct"):
        run_pipeline(PipelineConfig(out=str(tmp_path / "p"), build=BuildConfig(pair_format="holistic")))


def test_every_pair_format_passes_the_same_checker_filter():
    """With recheck, a chosen side with a wrong step is dropped in every format: a right answer
    reached through a wrong step (holistic), an s_win whose continuation errs later (step and
    shared-prefix pairs)."""
    from stepdpo.records import LocatedError, Rectification, Solution
    from stepdpo.stages.pairs import holistic_pairs
    from stepdpo.tasks import get_task
    from stepdpo.tasks.arithmetic import canonical_step

    p = get_task("synthetic").generate(1, seed=21, min_steps=4, max_steps=4)[0]
    steps = [canonical_step(p, i) for i in range(1, 5)]
    slip = steps[1].replace(" = ", " = 1", 1)  # step 2's arithmetic is wrong; step 3 goes on from the right value

    def sol(sid, parts, correct):
        text = "".join(parts)
        return Solution(sid, p.id, p.problem, p.answer, text, list(parts), correct, dataset=p.source, meta=p.meta)

    good, sneaky, bad = (
        sol("g", steps, True),
        sol("s", [steps[0], slip, *steps[2:]], True),
        sol("b", [steps[0], slip], False),
    )
    assert check_solution(p, sneaky.completion).first_error_step == 2
    pairs, dropped = holistic_pairs([sneaky, bad, good], BuildConfig(pair_format="holistic", recheck=True))
    assert [x.meta["chosen_id"] for x in pairs] == ["g"] and dropped["chosen_fails_recheck"] == 1
    assert holistic_pairs([sneaky, bad], BuildConfig(pair_format="holistic"))[0][0].meta["chosen_id"] == "s"

    wrong = sol("w", [steps[0], slip, *steps[2:]], False)
    err = LocatedError(wrong, 2, "verifier")
    later_slip = steps[2].replace(" = ", " = 1", 1)
    cands = [
        {"step": steps[1], "continuation": steps[1] + later_slip + steps[3]},  # s_win right, step 3 wrong
        {"step": steps[1], "continuation": "".join(steps[1:])},
    ]
    rect = Rectification(err, cands, sampled=2)
    for fmt in ("step", "dpo"):
        built, dropped = build_pairs([rect], BuildConfig(pair_format=fmt, recheck=True, max_per_error=2))
        assert len(built) == 1 and dropped["chosen_fails_recheck"] == 1, fmt
        assert later_slip not in (built[0].full_chosen or built[0].chosen)
