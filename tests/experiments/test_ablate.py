import json

import pytest
import torch
from helpers import toy_pairs

from stepdpo.experiments.ablate import (
    AblateConfig,
    error_kind,
    error_position,
    run_ablations,
    select,
)
from stepdpo.experiments.common import DemoConfig
from stepdpo.experiments.demo import run_demo
from stepdpo.records import StepPair
from stepdpo.tasks.arithmetic import canonical_step, generate_problems
from stepdpo.text.steps import COT_TRIGGER
from stepdpo.training.packing import collate, completion_logps, encode_pairs


def _pair_both_ways(p, k, wrong):
    """The same error as a step pair and as a whole-solution pair (wrong step k, then the rest)."""
    steps = [canonical_step(p, i) for i in range(1, len(p.meta["ops"]) + 1)]
    bad = steps[k - 1].replace(" = ", f" = {wrong}", 1)
    prior = "".join(steps[: k - 1])
    step = StepPair(
        prompt=p.problem,
        initial_reason_steps=COT_TRIGGER + prior,
        chosen=steps[k - 1],
        rejected=bad,
        answer=p.answer,
        full_chosen=COT_TRIGGER + "".join(steps),
        full_rejected=COT_TRIGGER + prior + bad + "".join(steps[k:]),
        meta={"problem_id": p.id},
    )
    whole = StepPair(
        prompt=p.problem,
        initial_reason_steps=COT_TRIGGER,
        chosen="".join(steps),
        rejected=prior + bad + "".join(steps[k:]),
        answer=p.answer,
        meta={"problem_id": p.id},
    )
    return step, whole


def test_error_position_reads_both_formats():
    p = generate_problems(1, seed=5, min_steps=5, max_steps=5)[0]
    step, whole = _pair_both_ways(p, 3, 7)
    assert error_position(step) == (3, 5) and error_position(whole) == (3, 5)
    last_step, last_whole = _pair_both_ways(p, 5, 7)
    assert error_position(last_whole) == (5, 5)
    assert select([step, last_step], "errors", "last_step") == [last_step]
    assert select([whole, last_whole], "errors", "mid_chain") == [whole]
    with pytest.raises(ValueError, match="unknown error subset"):
        select([step], "errors", "late")


def test_pair_shares_are_drawn_by_problem_and_nest():
    pairs = toy_pairs(200)
    quarter, half = select(pairs, "pairs", 0.25), select(pairs, "pairs", 0.5)
    assert 20 < len(quarter) < 80 and set(p.id for p in quarter) <= set(p.id for p in half)


def test_error_kinds():
    assert error_kind("arithmetic: 16 - 7 is 9, not 19") == "arithmetic slip"
    assert error_kind("expected 17 - 11 = 6") == "wrong operand or operation"
    assert error_kind("final answer 4 is not 40") == "answer or stopping"


def test_shared_steps_cancel_in_the_dpo_margin(tokenizer, model):
    """What the ablation report states: on an error in the last step, a whole-solution pair's
    log-prob difference equals the step pair's (the shared steps cancel); earlier errors differ."""
    p = generate_problems(1, seed=9, min_steps=4, max_steps=4)[0]
    diffs = {}
    for k in (2, 4):
        step, whole = _pair_both_ways(p, k, 3)
        for name, pair in (("step", step), ("whole", whole)):
            enc = encode_pairs(tokenizer, [pair], add_eos=False)
            with torch.no_grad():
                c, r = completion_logps(model, collate(enc, [[0]], shared=True))
            diffs[name, k] = (c - r).item()
    assert diffs["whole", 4] == pytest.approx(diffs["step", 4], abs=1e-4)
    assert abs(diffs["whole", 2] - diffs["step", 2]) > 1e-2


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(out=str(out), seeds=[0, 1], collect_problems=60, eval_problems=24, val_pairs=8, n=4, epochs=1.0)
    run_demo(cfg)
    return out


@pytest.mark.slow
def test_demo_then_ablations_resume_and_report(demo_dir):
    res = json.loads((demo_dir / "results.json").read_text())
    assert "stepdpo ablate" in (demo_dir / "report.md").read_text()
    cfg = AblateConfig(demo=str(demo_dir), fractions=[0.5], betas=[1.0], epochs=[], errors=[])
    ab = run_ablations(cfg)
    rows = [json.loads(line) for line in (demo_dir / "ablations.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2  # 2 factor values x 2 methods x 2 seeds
    assert {r["id"] for r in rows} == {
        f"{f}/seed{s}/{m}" for f in ("pairs=0.5", "beta=1.0") for s in (0, 1) for m in ("dpo_shared_prefix", "step_dpo")
    }
    half = [r for r in rows if r["factor"] == "pairs"]
    assert all(r["pairs"] < res["pairs"][r["method"]][r["seed"]] for r in half)
    beta = ab["factors"]["beta"]
    assert [e["value"] for e in beta] == ["picked", 1.0] and beta[0]["baseline"]
    # the demo's runs are the baseline
    assert beta[0]["dpo_shared_prefix"]["values"] == res["accuracy"]["dpo_shared_prefix"]["values"]
    # a rerun finds everything done: it trains nothing and keeps every row once
    (demo_dir / "ablations.jsonl").open("a").write('{"id": "torn')  # as if killed mid-write
    run_ablations(cfg)
    again = [json.loads(line) for line in (demo_dir / "ablations.jsonl").read_text().splitlines()]
    assert again == rows
    report = (demo_dir / "report.md").read_text()
    assert "## Step-DPO against DPO on whole solutions sharing" in report and "| beta | 1.0 |" in report
    assert (demo_dir / "ablations.png").stat().st_size > 1000
    assert not any(demo_dir.glob("ablations/*/seed*/*/model"))
