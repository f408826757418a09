"""The primary comparison's pooled test: the exact sign test on discordant problems across seeds,
the two-level bootstrap, and the detectable effect from the design alone."""

import math

import pytest

from stepdpo.experiments.primary import (
    bootstrap_interval,
    declare,
    detectable_effect,
    discordant,
    exact_test,
    pooled_difference,
    score,
)


def test_discordant_problems_pool_across_seeds_into_one_exact_test():
    a = [[1, 1, 1, 0, 1], [1, 1, 0, 1]]
    b = [[0, 1, 0, 0, 1], [1, 0, 0, 0]]
    assert discordant(a, b) == (4, 0)
    res = exact_test(a, b)
    assert (res["a_only"], res["b_only"]) == (4, 0) and res["p"] == pytest.approx(2 * 0.5**4)  # two-sided
    assert exact_test(b, a)["p"] == pytest.approx(res["p"])
    assert pooled_difference(a, b) == pytest.approx(100 * 4 / 9)
    with pytest.raises(ValueError, match="same problems"):
        discordant([[1, 0]], [[1]])


def test_the_bootstrap_interval_covers_the_difference_and_narrows_with_more_problems():
    small = ([[1, 0, 1, 1, 0, 1]] * 3, [[0, 0, 1, 0, 0, 1]] * 3)
    lo, hi = bootstrap_interval(*small, draws=2000)
    assert lo <= pooled_difference(*small) <= hi
    big = ([[1, 0, 1, 1, 0, 1] * 10] * 3, [[0, 0, 1, 0, 0, 1] * 10] * 3)
    blo, bhi = bootstrap_interval(*big, draws=2000)
    assert bhi - blo < hi - lo
    same = ([[1, 0, 1]] * 2, [[1, 0, 1]] * 2)
    assert bootstrap_interval(*same, draws=200) == [0.0, 0.0]


def test_the_detectable_effect_comes_from_the_design_alone():
    # (1.96 + 0.84) * sqrt(0.5 / 300) = 11.4 points: three seeds of 100 problems cannot see 4 points
    assert detectable_effect(300) == pytest.approx(100 * 2.8016 * math.sqrt(0.5 / 300), rel=1e-3)
    assert detectable_effect(1200) == pytest.approx(detectable_effect(300) / 2, rel=1e-9)
    d = declare(("step_dpo", "sft"), 100, 3)
    assert d["arms"] == ["step_dpo", "sft"] and d["detectable_effect_80"] == pytest.approx(11.44, abs=0.01)


def test_scoring_leaves_out_seeds_without_both_arms():
    d = declare(("step_dpo", "sft"), 4, 3)
    res = score(d, {"step_dpo": [[1, 1, 0, 1], None, [1, 1, 1, 1]], "sft": [[0, 1, 0, 1], [1, 1, 1, 1], [1, 0, 1, 1]]})
    assert res["seeds_scored"] == 2 and (res["a_only"], res["b_only"]) == (2, 0)
    assert res["difference"] == pytest.approx(25.0) and res["bootstrap_ci95"][0] <= 25.0 <= res["bootstrap_ci95"][1]
    assert res["detectable_effect_80_at_observed_discordance"] < d["detectable_effect_80"]


def test_a_planning_discordance_from_a_pilot_sets_the_declared_effect(tmp_path):
    plan = {"discordance": 0.1, "source": "a pilot on 200 validation problems"}
    d = declare(("step_dpo", "sft"), 500, 3, tmp_path, planning=plan)
    assert (
        d["detectable_effect_80"] == pytest.approx(detectable_effect(1500, 0.1), abs=0.01)
        and d["detectable_effect_80"] < 4
    )
    assert d["detectable_effect_80_at_half"] == pytest.approx(detectable_effect(1500), abs=0.01)
    assert d["detectable_effect_80_at_half"] > 5
    assert "0.1 (planned: a pilot" in d["detectable_effect_assumes"]
    import json

    assert json.loads((tmp_path / "primary.json").read_text()) == d  # written before any arm is scored


def test_secondary_comparisons_are_pooled_and_corrected_for_how_many_were_looked_at():
    from stepdpo.experiments.primary import secondary

    a = [[1, 1, 1, 1, 1, 0] * 10, [1, 1, 1, 0] * 10]
    b = [[0, 0, 1, 1, 1, 0] * 10, [1, 0, 1, 0] * 10]
    outcomes = {"x": a, "y": b, "z": b, "w": [None, None]}
    one = secondary({"x_minus_y": ("x", "y")}, outcomes)["x_minus_y"]
    three = secondary({"x_minus_y": ("x", "y"), "x_minus_z": ("x", "z"), "x_minus_w": ("x", "w")}, outcomes)
    assert one["p"] == three["x_minus_y"]["p"] == exact_test(a, b)["p"] and one["p_bonferroni"] == one["p"]
    assert three["x_minus_y"]["p_bonferroni"] == pytest.approx(min(1.0, 3 * one["p"]))
    assert one["difference"] == pytest.approx(pooled_difference(a, b), abs=0.01) and one["tests"] == 1
    # a stricter level needs a larger effect for the same power
    assert three["x_minus_y"]["detectable_effect_80"] > one["detectable_effect_80"] == round(detectable_effect(100), 2)
    assert three["x_minus_w"] == {"arms": ["x", "w"], "tests": 3, "seeds_scored": 0}  # no outcomes: not scored
