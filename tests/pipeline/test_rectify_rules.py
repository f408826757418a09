"""Rectification under the step rule (step k sampled alone, kept when the exact checker passes it)
and the pairs of one error: several s_win and s_lose, the prefix counted once."""

import pytest

from stepdpo.pipeline.run import run_build, run_collect, run_locate, run_rectify
from stepdpo.recordio import read_records
from stepdpo.records import LocatedError, Rectification, Solution
from stepdpo.stages.collect import CollectConfig
from stepdpo.stages.locate import make_judge
from stepdpo.stages.pairs import BuildConfig, _combinations, build_pairs
from stepdpo.stages.rectify import RectifyConfig, _step_verdict
from stepdpo.tasks import get_task
from stepdpo.tasks.arithmetic import canonical_step, check_solution


def _problem():
    p = get_task("synthetic").generate(1, seed=21, min_steps=3, max_steps=3)[0]
    return p, [canonical_step(p, i) for i in range(1, 4)]


def _error(p, steps, k, wrong_step, dataset=None):
    parts = [*steps[: k - 1], wrong_step]
    sol = Solution(
        "w", p.id, p.problem, p.answer, "".join(parts), parts, False, dataset=dataset or p.source, meta=p.meta
    )
    return LocatedError(sol, k, "verifier")


def test_the_step_verdict_reads_step_k_after_the_prior_steps():
    p, steps = _problem()
    err2 = _error(p, steps, 2, steps[1].replace(" = ", " = 1", 1))
    assert _step_verdict(err2, steps[1]) is None
    assert "arithmetic" in _step_verdict(err2, steps[1].replace(" = ", " = 1", 1))
    assert "too early" in _step_verdict(err2, steps[1] + "The answer is \\boxed{108}.\n")
    err3 = _error(p, steps, 3, "Step 3: 108 + 5 = 114.\n")
    assert _step_verdict(err3, steps[2]) is None  # the last step, with its final answer
    # the last operation done right, but no final answer: the solution cannot end right from here
    assert _step_verdict(err3, steps[2].split("The answer")[0]) is not None


def test_the_step_rule_needs_a_task_with_a_checker():
    p, steps = _problem()
    err = _error(p, steps, 2, "Step 2: x\n", dataset="gsm8k")
    with pytest.raises(ValueError, match="rule answer"):
        _step_verdict(err, steps[1])


def test_combinations_are_distinct_and_start_with_the_located_s_lose():
    for nw in range(1, 5):
        for nl in range(1, 5):
            combos = _combinations(nw, nl, 100)
            assert len(set(combos)) == nw * nl and combos[0] == (0, 0)
    assert _combinations(2, 3, 3) == [(0, 0), (1, 0), (0, 1)]
    assert _combinations(0, 3, 5) == []


def test_an_error_gives_several_pairs_and_its_prefix_counts_once():
    p, steps = _problem()
    wrong = steps[1].replace(" = ", " = 1", 1)
    err = _error(p, steps, 2, wrong)
    other_win = steps[1].replace("He ends up with", "Then he has")
    rect = Rectification(
        err,
        [{"step": s, "continuation": s} for s in (steps[1], other_win)],
        sampled=4,
        rule="step",
        rejected_candidates=[{"step": "Step 2: 27 * 4 = 100 stickers.\n", "why": "arithmetic"}],
    )
    pairs, dropped = build_pairs([rect], BuildConfig(max_per_error=8, max_per_problem=1, recheck=True))
    assert len(pairs) == 4 and {x.meta["error_id"] for x in pairs} == {err.id}
    assert {x.meta["rule"] for x in pairs} == {"step"} and not dropped["chosen_fails_recheck"]
    assert pairs[0].rejected == wrong and pairs[0].full_rejected.endswith(wrong)
    assert {x.rejected for x in pairs} == {wrong, "Step 2: 27 * 4 = 100 stickers.\n"}
    one, _ = build_pairs([rect], BuildConfig(max_per_error=1))
    assert [(x.chosen, x.rejected) for x in one] == [(steps[1], wrong)]
    # no whole continuation under the step rule: the shared-prefix whole-solution pairs are counted out
    dpo, dropped = build_pairs([rect], BuildConfig(pair_format="dpo"))
    assert dpo == [] and dropped["no_whole_solution"] == 2


def test_the_step_rule_end_to_end_on_the_embedded_model(gen, problems, tmp_path):
    run_collect(gen, problems, tmp_path / "errors.jsonl", CollectConfig(k=4, temperature=1.0, max_new_tokens=160))
    run_locate(make_judge("verifier"), tmp_path / "errors.jsonl", tmp_path / "located.jsonl")
    cfg = RectifyConfig(n=8, temperature=1.0, max_new_tokens=160, seed=2, rule="step")
    s = run_rectify(gen, tmp_path / "located.jsonl", tmp_path / "rect.jsonl", cfg)
    rects, _ = read_records(tmp_path / "rect.jsonl", "rectification")
    assert rects and s.counters["correct_step"] >= len(rects)
    for rect in rects:
        k = rect.error.first_error_step
        assert rect.rule == "step"
        for c in rect.candidates:  # one step, k, that the checker passes after the prior steps
            assert c["step"].startswith(f"Step {k}:") and "\nStep " not in c["step"]
            text = "".join(rect.error.prior_steps) + c["step"]
            assert (
                check_solution(
                    next(q for q in problems if q.id == rect.error.solution.problem_id), text, True
                ).first_error_step
                is None
            )
        for r in rect.rejected_candidates:
            assert r["step"].startswith(f"Step {k}:") and r["why"]
    b = run_build(tmp_path / "rect.jsonl", tmp_path / "pairs.jsonl", BuildConfig(max_per_error=4, recheck=True))
    pairs, _ = read_records(tmp_path / "pairs.jsonl", "step_pair")
    assert b.rows_out == len(pairs) >= len(rects) and all(x.meta["rule"] == "step" for x in pairs)
