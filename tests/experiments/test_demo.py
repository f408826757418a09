import json

import pytest

from stepdpo.experiments.arms import cap, matched_pairs, problem_sets
from stepdpo.experiments.common import (
    ARMS,
    PICKS_FILE,
    TRAINED,
    TUNED,
    DemoConfig,
    hyperparameters,
    mean_ci,
    ood_pairs,
)
from stepdpo.experiments.demo import DIFFERENCES, run_demo
from stepdpo.experiments.report import verdict
from stepdpo.experiments.tune import pick
from stepdpo.records import StepPair
from stepdpo.tasks import get_task
from stepdpo.tasks.arithmetic import canonical_step, check_solution


def test_mean_ci():
    r = mean_ci([0.5, 0.6, 0.7])
    assert r["mean"] == pytest.approx(0.6)
    assert r["ci95"][0] == pytest.approx(0.6 - 4.303 * 0.1 / 3**0.5, abs=1e-3)
    assert mean_ci([0.4])["ci95"] is None  # one seed: no interval
    from stepdpo.experiments.report import pct, signed

    assert pct(mean_ci([0.4])) == "40.0 (one seed)" and signed(mean_ci([0.1, 0.3])).startswith("+20.0 [")
    # eleven seeds: t(0.975, 10) = 2.228, not the normal 1.96
    values = [0.5 + 0.01 * i for i in range(11)]
    sd = (sum((v - 0.55) ** 2 for v in values) / 10) ** 0.5
    assert mean_ci(values)["ci95"][1] == pytest.approx(0.55 + 2.2281 * sd / 11**0.5, abs=1e-4)


@pytest.mark.parametrize("task", ["default", "long"])
def test_problem_sets_are_disjoint_from_sft_and_from_each_other(task):
    cfg = DemoConfig(task=task, collect_problems=50, eval_problems=40, val_problems=30, val_pairs=10)
    sets = problem_sets(cfg, [0, 1])
    t = get_task(cfg.setting["data"])
    sft = {p.problem for p in t.generate(t.train_size, seed=t.train_seed)}
    named = {
        "val": sets["val"],
        "common": sets["common"],
        "tune": sets["tune"],
        "collect0": sets["collect"][0],
        "collect1": sets["collect"][1],
    }
    tests = {p.problem for ps in sets["test"].values() for p in ps}
    seen: set[str] = set()
    for name, ps in named.items():
        texts = {p.problem for p in ps}
        assert len(texts) == len(ps) > 0, name
        assert not texts & sft and not texts & tests and not texts & seen, name
        seen |= texts
    assert {p.problem for p in sets["test"][0]} != {p.problem for p in sets["test"][1]}
    assert all(not {p.problem for p in ps} & sft for ps in sets["test"].values())


def _pair(i: int) -> StepPair:
    return StepPair(prompt=f"p{i}", initial_reason_steps="", chosen=f"c{i}", rejected=f"r{i}")


def test_cap_keeps_a_fixed_subset_in_order():
    pairs = [_pair(i) for i in range(20)]
    kept = cap(pairs, 7)
    assert len(kept) == 7 and kept == cap(list(pairs), 7)
    assert [pairs.index(p) for p in kept] == sorted(pairs.index(p) for p in kept)
    assert cap(pairs, 20) == pairs and cap(pairs, 30) == pairs
    assert cap(pairs, 7) != cap(pairs, 7, salt="other")


@pytest.mark.parametrize("data", ["synthetic", "synthetic-long"])
def test_ood_s_win_is_a_correct_step_in_another_voice(data):
    problems = get_task(data).problems("train", 30)
    pairs = []
    for p in problems:
        k = 2
        prior = "".join(canonical_step(p, j) for j in range(1, k))
        pairs.append(
            StepPair(
                prompt=p.problem,
                initial_reason_steps=prior,
                chosen=canonical_step(p, k),
                rejected=f"Step {k}: wrong.\n",
                meta={"problem_id": p.id, "first_error_step": k},
            )
        )
    ood = ood_pairs(pairs, {p.id: p for p in problems})
    assert len(ood) == len(pairs)
    for p, o, problem in zip(pairs, ood, problems):
        assert o.chosen != p.chosen and o.chosen.startswith("Step 2: ") and o.rejected == p.rejected
        res = check_solution(problem, o.initial_reason_steps + o.chosen, partial=True)
        # the task's checker accepts it: right, only worded otherwise
        assert res.first_error_step is None, (o.chosen, res.message)
        assert o.full_chosen is None and o.meta["format"] == "step_ood"


def test_after_sft_the_reference_step_is_the_models_own_text_so_smollm2_keeps_the_paraphrase():
    """The SmolLM2 arms start from an SFT on the reference solutions, so the reference step for a
    state is what the model itself writes: as Table 4's other voice it would train the Step-DPO
    arm's pairs again. The setting keeps the paraphrase, and the report says when the other voice
    is the model's own text."""
    from stepdpo.experiments.report import _same_as_own

    assert DemoConfig(model="smollm2-135m-instruct").setting["ood_style"] == "paraphrase"
    assert DemoConfig(model="smollm2-135m-instruct", ood_style="sft").setting["ood_style"] == "sft"
    problems = [p for p in get_task("synthetic-short").problems("train", 10) if len(p.meta["ops"]) >= 2]
    pairs = [
        StepPair(
            prompt=p.problem,
            initial_reason_steps=canonical_step(p, 1),
            chosen=canonical_step(p, 2),  # the SFT model's own wording: the reference's
            rejected="Step 2: wrong.\n",
            meta={"problem_id": p.id, "first_error_step": 2},
        )
        for p in problems
    ]
    by_id = {p.id: p for p in problems}
    assert [o.chosen for o in ood_pairs(pairs, by_id, style="sft")] == [p.chosen for p in pairs]
    assert all(o.chosen != p.chosen for o, p in zip(ood_pairs(pairs, by_id), pairs))
    res = {"ood_same_as_own": [len(pairs), 1], "pairs": {"step_dpo_ood": [len(pairs), 4]}}
    assert f"In {len(pairs) + 1} of {len(pairs) + 4} pairs" in " ".join(_same_as_own(res))
    assert _same_as_own({"ood_same_as_own": [0, 0], "pairs": {"step_dpo_ood": [3, 4]}}) == []
    assert _same_as_own({"pairs": {"step_dpo_ood": [3, 4]}}) == []  # results written before the count


def test_tuning_picks_the_best_cell_and_breaks_ties_toward_the_smaller_lr():
    rows = [
        {"arm": "step_dpo", "lr": 5e-5, "beta": 0.1, "accuracy": 0.6},
        {"arm": "step_dpo", "lr": 1e-5, "beta": 0.4, "accuracy": 0.6},
        {"arm": "step_dpo", "lr": 2e-5, "beta": 0.1, "accuracy": 0.5},
        {"arm": "dpo", "lr": 2e-5, "beta": 0.4, "accuracy": 0.7},
        {"arm": "dpo", "lr": 2e-5, "beta": 0.1, "accuracy": 0.7},
    ]
    picks = pick(rows)
    assert picks["step_dpo"] == {"lr": 1e-5, "beta": 0.4, "val_accuracy": 0.6}
    assert (picks["dpo"]["lr"], picks["dpo"]["beta"]) == (2e-5, 0.1)


def test_the_packaged_picks_cover_every_arm_of_each_task(tmp_path):
    for task in json.loads(PICKS_FILE.read_text()):
        hp = hyperparameters(DemoConfig(task=task))
        assert set(hp) == set(TRAINED) and all(v["lr"] > 0 and v["beta"] > 0 for v in hp.values())
    bad = tmp_path / "picks.json"
    bad.write_text(json.dumps({"default": {"dpo": {"lr": 1e-5, "beta": 0.1}}}))
    with pytest.raises(ValueError, match="no lr and beta for dpo_shared_prefix"):
        hyperparameters(DemoConfig(picks=str(bad)))


def test_reused_artefacts_are_keyed_by_the_settings_and_data_that_made_them(tmp_path):
    from dataclasses import replace

    from stepdpo.experiments.common import kept, train_config, train_key
    from stepdpo.experiments.sampler import eval_key

    data = tmp_path / "pairs.jsonl"
    data.write_text("a\n")
    cfg = DemoConfig()
    tc = train_config(cfg, data, "step", tmp_path / "run", 0, 1e-5, 0.1, tmp_path / "ref.json")
    key = train_key(tc)
    assert train_key(replace(tc, out=str(tmp_path / "elsewhere"))) == key  # where it writes is not a setting
    assert train_key(replace(tc, report_to=["trackio"], project="p", run_name="x")) == key  # nor where it reports
    named = train_config(
        DemoConfig(report_to=["none"]), data, "step", tmp_path / "seed0" / "step_dpo", 0, 1e-5, 0.1, tmp_path
    )
    assert named.report_to == ["none"] and named.run_name == "seed0-step_dpo"
    for change in ({"lr": 5e-5}, {"beta": 0.4}, {"epochs": 7.0}, {"seed": 1}):
        assert train_key(replace(tc, **change)) != key, change
    data.write_text("b\n")
    assert train_key(tc) != key  # other pairs in the same file
    (tmp_path / "done.json").write_text(json.dumps({"model": "m", "key": key}))
    assert kept(tmp_path / "done.json", key)["model"] == "m" and kept(tmp_path / "done.json", "other") is None
    held = get_task("synthetic").generate(3, seed=1)
    assert (
        eval_key(cfg, key, held, False) != eval_key(cfg, key, held[:2], False) != eval_key(cfg, "m2", held[:2], False)
    )
    # another engine's scores are not kept for this one; transformers keeps the keys it always had
    assert eval_key(replace(cfg, backend="vllm"), key, held, False) != eval_key(cfg, key, held, False)
    assert eval_key(replace(cfg, backend="hf"), key, held, False) == eval_key(cfg, key, held, False)


def test_a_seed_without_pairs_is_left_out_and_counted_not_averaged_as_zero():
    from stepdpo.experiments.common import paired
    from stepdpo.experiments.report import pct, signed

    acc = mean_ci([0.5, None, 0.7])  # the arm got no pairs on the second seed
    assert acc["mean"] == pytest.approx(0.6) and acc["values"] == [0.5, None, 0.7]
    assert acc["ci95"] == pytest.approx(mean_ci([0.5, 0.7])["ci95"])
    assert pct(acc).endswith("(1 seed without pairs left out)")
    d = mean_ci(paired([0.5, None, 0.7], [0.4, 0.3, 0.5]))
    assert d["values"][1] is None and d["mean"] == pytest.approx(0.15)
    assert verdict(d, 4) in ("holds", "not separable") and signed(d).startswith("+15.0 [")
    none = mean_ci([None, None])
    assert none["mean"] is None and pct(none) == "n/a (no pairs)" and verdict(none) == "not separable"


def test_unit_costs_divide_each_stage_by_its_units():
    from stepdpo.experiments.summary import unit_costs

    def seed(collect_s, problems, rectify_s, errors, pairs):
        stages = [
            {"stage": "collect", "wall_s": collect_s, "rows_in": problems},
            {"stage": "rectify", "wall_s": rectify_s, "rows_in": errors},
        ]
        return {"stages": stages, "pairs": {"dpo": pairs, "step_dpo": pairs}}

    data = {0: seed(10.0, 5, 30.0, 10, 4), 1: seed(30.0, 15, 10.0, 10, 0)}
    times = {"train dpo": 40.0, "train step_dpo": 24.0, "evaluate": 90.0}
    c = unit_costs(data, times, 4, [0, 1], {"epochs": 2.0, "eval_problems": 9}, passes=16)
    assert c["collect_per_problem"] == 2.0 and c["rectify_per_error"] == 2.0
    assert c["train_per_pair_epoch"] == 64 / 16  # over the pairs the optimizer steps took
    assert c["data_per_step_pair"] == 80 / 4  # both seeds' data work over the Step-DPO pairs it gave
    assert c["evaluate_per_problem"] == round(90 / (4 * 9), 3)  # four evaluations ran
    # rerun on kept data: the resumed inputs took no time, so they count as no units
    data[1]["stages"] = [{**r, "wall_s": 0.0, "resumed": r["rows_in"]} for r in data[1]["stages"]]
    again = unit_costs(data, times, 4, [0, 1], {"epochs": 2.0, "eval_problems": 9}, passes=16)
    assert again["collect_per_problem"] == 2.0 and again["rectify_per_error"] == 3.0
    assert again["data_per_step_pair"] is None


def _pairs(tag: str, n: int) -> list[StepPair]:
    return [StepPair(prompt=f"{tag}{i}", initial_reason_steps="", chosen="c", rejected="r") for i in range(n)]


def test_table3_matches_the_dpo_arms_that_run_and_a_copy_of_step_dpo_at_the_fewest_pairs():
    pairs = {"step_dpo": _pairs("s", 10), "dpo": _pairs("h", 4), "dpo_shared_prefix": _pairs("d", 12)}
    both = matched_pairs(pairs, ("dpo", "dpo_shared_prefix"))
    assert {a: len(v) for a, v in both.items()} == {"dpo": 4, "dpo_shared_prefix": 4, "step_dpo_matched": 4}
    assert both["step_dpo_matched"] == cap(pairs["step_dpo"], 4)  # a fixed subset of Step-DPO's
    assert len(pairs["step_dpo"]) == 10  # which keeps all of its own
    # a DPO arm that does not run neither sets the count nor is matched (it keeps Step-DPO's)
    one = matched_pairs(pairs, ("dpo_shared_prefix",))
    assert {a: len(v) for a, v in one.items()} == {"dpo": 4, "dpo_shared_prefix": 10, "step_dpo_matched": 10}
    assert one["step_dpo_matched"] == pairs["step_dpo"]  # the demo then reuses Step-DPO's model and scores
    # an arm without pairs does not train, so it does not set the count to 0
    none = matched_pairs({**pairs, "dpo": []}, ("dpo", "dpo_shared_prefix"))
    assert {a: len(v) for a, v in none.items()} == {"dpo": 0, "dpo_shared_prefix": 10, "step_dpo_matched": 10}


def test_the_matched_arm_takes_step_dpos_lr_and_beta_and_is_not_tuned():
    hp = hyperparameters(DemoConfig())
    assert hp["step_dpo_matched"] == hp["step_dpo"] and "step_dpo_matched" not in TUNED


def test_the_arms_run_are_the_settings_or_the_ones_asked_for(tmp_path):
    assert DemoConfig().run_arms == ARMS
    assert DemoConfig(model="smollm2-135m-instruct").run_arms == ("sft", "step_dpo")
    assert DemoConfig(model="smollm2-135m-instruct", full=True).run_arms == ARMS
    # the primary's arms always run, and a DPO arm brings Step-DPO's copy matched to it (Table 3)
    assert DemoConfig(arms=["dpo"]).run_arms == ("sft", "dpo", "step_dpo", "step_dpo_matched")
    assert DemoConfig(arms=["step_dpo_ood"]).run_arms == ("sft", "step_dpo", "step_dpo_ood")
    assert DemoConfig(model="smollm2-135m-instruct", arms=["all"]).run_arms == ARMS
    with pytest.raises(ValueError, match="unknown arm"):
        _ = DemoConfig(arms=["step-dpo"]).run_arms


def test_a_setting_with_min_steps_trains_at_least_that_many_steps(tmp_path):
    from stepdpo.experiments.common import train_config

    cfg = DemoConfig(model="smollm2-135m-instruct")  # batch 8, 3 epochs, at least 30 steps
    data = tmp_path / "pairs.jsonl"
    data.write_text("{}\n" * 20)  # 3 steps per epoch: 9 planned
    assert train_config(cfg, data, "step", tmp_path / "r", 0, 1e-5, 0.1, tmp_path / "ref.json").max_steps == 30
    data.write_text("{}\n" * 120)  # 15 per epoch: 45 planned
    assert train_config(cfg, data, "step", tmp_path / "r", 0, 1e-5, 0.1, tmp_path / "ref.json").max_steps == 45
    assert train_config(DemoConfig(), data, "step", tmp_path / "r", 0, 1e-5, 0.1, tmp_path / "ref.json").max_steps == 0


def test_a_settings_nll_term_goes_to_every_arm_alike(tmp_path, monkeypatch):
    from stepdpo.experiments.common import train_config
    from stepdpo.experiments.settings import DEMO_TASKS

    monkeypatch.setitem(DEMO_TASKS["smollm2"], "sft_weight", 0.5)
    cfg = DemoConfig(model="smollm2-135m-instruct")
    for fmt in ("step", "dpo"):
        assert (
            train_config(cfg, tmp_path / "p.jsonl", fmt, tmp_path / "r", 0, 1e-5, 0.1, tmp_path / "x").sft_weight == 0.5
        )
    assert (
        train_config(
            DemoConfig(), tmp_path / "p.jsonl", "step", tmp_path / "r", 0, 1e-5, 0.1, tmp_path / "x"
        ).sft_weight
        == 0.0
    )


def test_verdict_reads_the_interval_of_a_paired_difference():
    assert verdict(mean_ci([0.02, 0.03, 0.025])) == "holds"
    assert verdict(mean_ci([-0.02, -0.03, -0.025])) == "reversed"
    assert verdict(mean_ci([0.02, -0.01, 0.0])) == "not separable"
    assert verdict(mean_ci([0.05])) == "not separable"  # one seed decides nothing


@pytest.mark.slow
def test_tune_then_demo_write_the_promised_results(tmp_path):
    small = dict(collect_problems=40, eval_problems=24, val_problems=24, val_pairs=8, n=4, epochs=1.0)
    tune = run_demo(DemoConfig(out=str(tmp_path / "tune"), tune=True, lrs=[1e-5, 5e-5], betas=[0.4], **small))
    assert len(tune["runs"]) == 2 * len(TUNED) and set(tune["picks"]) == set(TUNED)
    picks = tmp_path / "tune" / "picks.json"
    assert set(json.loads(picks.read_text())["default"]) == set(TUNED)

    out = tmp_path / "demo"
    res = run_demo(DemoConfig(out=str(out), seeds=[0, 1], picks=str(picks), **small))
    saved = json.loads((out / "results.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["wall_s"] > 0 and saved == json.loads(json.dumps(res))
    # vLLM is an extra: without it nothing is probed, and the run says which backend sampled
    assert saved["sampling_backend"] == json.loads((out / "sampling_backend.json").read_text())
    assert saved["sampling_backend"]["name"] == "hf" and "vllm is not" in saved["sampling_backend"]["why"]
    assert saved["config"]["backend"] == "hf" and "Sampling backend: hf" in (out / "report.md").read_text()
    # Fig. 2's pairs as many as the common problems gave, counted, not the cap quoted
    counts = {k: len((out / "common" / f"val_{k}.jsonl").read_text().splitlines()) for k in ("step", "whole")}
    assert saved["validation_pairs"] == counts
    assert (
        f"on {counts['step']} step-level and {counts['whole']} whole-solution pairs" in (out / "report.md").read_text()
    )
    # the primary comparison, declared in primary.json before scoring, tested on every seed's problems
    declared = json.loads((out / "primary.json").read_text())
    prim = saved["primary"]
    assert declared["arms"] == prim["arms"] == ["step_dpo", "sft"] and prim["seeds_scored"] == 2
    assert {k: prim[k] for k in declared} == declared and 0 <= prim["p"] <= 1
    assert prim["bootstrap_ci95"][0] <= prim["difference"] <= prim["bootstrap_ci95"][1]
    assert prim["difference"] == pytest.approx(100 * saved["differences"]["step_dpo_minus_sft"]["mean"], abs=0.01)
    for arm in ARMS:
        a = saved["accuracy"][arm]
        assert len(a["values"]) == 2 and a["ci95"][0] <= a["mean"] <= a["ci95"][1]
    for key, (x, y) in DIFFERENCES.items():
        d = saved["differences"][key]
        ax, ay = saved["accuracy"][x]["values"], saved["accuracy"][y]["values"]
        assert d["values"] == pytest.approx([p - q for p, q in zip(ax, ay)])
    picked = {a: {k: v for k, v in p.items() if k != "val_accuracy"} for a, p in tune["picks"].items()}
    assert saved["hyperparameters"] == {**picked, "step_dpo_matched": picked["step_dpo"]}
    # Table 3 at equal pairs: the DPO arms and Step-DPO's matched copy, the fewest any of them has
    for s in range(2):
        n = {a: saved["pairs"][a][s] for a in TRAINED}
        fewest = min(n["step_dpo"], *(n[a] for a in ("dpo", "dpo_shared_prefix") if n[a]))
        assert n["step_dpo_matched"] == fewest and {n["dpo"], n["dpo_shared_prefix"]} <= {0, fewest}
    sec = saved["secondary"]
    assert set(sec) == {"step_dpo_matched_minus_dpo", "step_dpo_matched_minus_dpo_shared_prefix",
                        "step_dpo_minus_step_dpo_ood"}  # fmt: skip
    assert all(r["tests"] == 3 and r["p"] <= r["p_bonferroni"] <= 1 for r in sec.values())
    # each seed collects on its own problems with its own sampling seed
    p0, p1 = ((out / f"seed{s}" / "data" / "problems.jsonl").read_text() for s in range(2))
    assert p0 != p1
    sol = [json.loads((out / f"seed{s}" / "data" / "errors.jsonl").read_text().splitlines()[0]) for s in range(2)]
    assert sol[0]["problem_id"] != sol[1]["problem_id"]
    # holistic pairs: two whole sampled solutions of one problem, one right and one wrong
    hol = [json.loads(x) for x in (out / "seed0" / "data" / "pairs_holistic.jsonl").read_text().splitlines()]
    assert hol and all(h["meta"]["pair_kind"] == "holistic" for h in hol)
    # shared-prefix pairs repeat s1..s(k-1) by construction
    assert saved["pair_structure"]["dpo_shared_prefix"]["share_repeating_prior_steps"]["mean"] == 1.0
    # the reference model finds its own steps far likelier than another voice's
    lp = saved["ref_logp_per_token"]
    assert lp["id"]["mean"] > lp["ood"]["mean"]
    assert saved["ood_same_as_own"] == [0, 0]  # the paraphrase is never the model's own wording
    # every trained model scored on the same validation pairs, both kinds
    for arm in TRAINED:
        for kind in ("step", "whole"):
            assert 0 <= saved["validation"][arm][kind]["reward_accuracy"]["mean"] <= 1
        if arm == "step_dpo_matched" and saved["pairs"][arm][1] == saved["pairs"]["step_dpo"][1]:
            assert not (out / "seed1" / arm).exists()  # Step-DPO itself: not trained twice
            continue
        rows = [json.loads(x) for x in (out / "seed1" / arm / "log.jsonl").read_text().splitlines()]
        assert "eval_step/rewards/margins" in rows[-1] and "eval_whole/rewards/margins" in rows[-1]
    for f in ("report.md", "accuracy.png", "curves.png", "common/val_step.jsonl", "common/val_whole.jsonl"):
        assert (out / f).exists(), f
    text = (out / "report.md").read_text()
    assert "## What holds here" in text and "Step-DPO above holistic DPO" in text

    # killed after the trainings, rerun: nothing is trained again
    (out / "results.json").unlink()
    mtime = (out / "seed0" / "step_dpo" / "done.json").stat().st_mtime
    again = run_demo(DemoConfig(out=str(out), seeds=[0, 1], picks=str(picks), **small))
    assert again["accuracy"] == saved["accuracy"]
    assert set(again["unit_costs"].values()) == {None}  # nothing was made again: no seconds per unit
    assert (out / "seed0" / "step_dpo" / "done.json").stat().st_mtime == mtime
    # asked for other settings, the models and evaluations are made anew, never reused
    other = run_demo(DemoConfig(out=str(out), seeds=[0], picks=str(picks), **{**small, "epochs": 2.0}))
    for arm in TUNED:
        assert json.loads((out / "seed0" / arm / "train_config.json").read_text())["epochs"] == 2.0
    assert other["accuracy"]["sft"]["values"] == saved["accuracy"]["sft"]["values"][:1]  # the same SFT evaluation


def test_pair_structure_reads_where_the_rejected_solution_errs():
    from stepdpo.experiments.arms import pair_structure

    p = get_task("synthetic").generate(1, seed=11, min_steps=5, max_steps=5)[0]
    steps = [canonical_step(p, i) for i in range(1, 6)]
    wrong3 = steps[2].replace(" = ", " = 1", 1)
    rejected = "".join(steps[:2]) + wrong3 + "".join(steps[3:])
    other = canonical_step(p, 1, style="paraphrase") + "".join(steps[1:])  # right, worded otherwise at step 1
    pairs = [
        StepPair(prompt=p.problem, initial_reason_steps="", chosen="".join(steps), rejected=rejected),
        StepPair(prompt=p.problem, initial_reason_steps="", chosen=other, rejected=rejected),
    ]
    s = pair_structure(pairs, {p.id: p})
    assert s["pairs_read"] == 2 and s["mean_first_error_step"] == 3 and s["mean_steps"] == 5
    assert s["mean_steps_after_error"] == 2 and s["share_repeating_prior_steps"] == 0.5


def test_a_bonferroni_verdict_is_stricter_and_the_report_says_so():
    d = mean_ci([0.010, 0.030, 0.020, 0.015, 0.035])
    assert verdict(d) == "holds"
    from stepdpo.experiments.common import interval

    lo4, _ = interval(d["values"], 1 - 0.05 / 4)
    assert lo4 < d["ci95"][0]  # the corrected interval is wider
    wide = mean_ci([0.008, 0.030, 0.006, 0.025, 0.010])
    assert verdict(wide) == "holds" and verdict(wide, 4) == "not separable"


def test_a_setting_with_an_sft_entry_starts_from_its_sft_model_kept_by_key(tmp_path, monkeypatch):
    from pathlib import Path

    from stepdpo.experiments import settings
    from stepdpo.experiments.starting import starting_model

    sft = {"problems": 8, "epochs": 1.0, "batch_size": 4, "lr": 1e-5, "trainable_layers": 1}
    monkeypatch.setitem(settings.DEMO_TASKS, "default", {**settings.DEMO_TASKS["default"], "sft": sft})
    cfg = starting_model(DemoConfig(out=str(tmp_path)), tmp_path)
    folder = Path(cfg.setting["model"])
    assert folder.parent == tmp_path and (folder / "README.md").exists()
    assert json.loads((folder / "done.json").read_text())["problems"] == 8
    made = (folder / "model.safetensors").stat().st_mtime_ns
    assert starting_model(DemoConfig(out=str(tmp_path)), tmp_path).base_model == str(folder)
    assert (folder / "model.safetensors").stat().st_mtime_ns == made  # kept, not retrained
    monkeypatch.setitem(settings.DEMO_TASKS, "default", {**settings.DEMO_TASKS["default"], "sft": {**sft, "lr": 2e-5}})
    assert starting_model(DemoConfig(out=str(tmp_path)), tmp_path).base_model != str(folder)  # other settings


def test_the_rollout_judge_is_scored_against_the_checker_on_the_models_own_solutions(tmp_path, monkeypatch):
    from stepdpo.experiments import settings
    from stepdpo.experiments.common import synthetic_pipeline
    from stepdpo.experiments.demo import _judge_agreement
    from stepdpo.pipeline.run import run_pipeline

    extra = {"judge_cases": 8, "judge_m": 2, "max_new_tokens": 200}
    monkeypatch.setitem(settings.DEMO_TASKS, "default", {**settings.DEMO_TASKS["default"], **extra})
    run_pipeline(synthetic_pipeline("default", 4, tmp_path / "common", k=2, keep_correct=True), stop="collect")
    j = _judge_agreement(DemoConfig(out=str(tmp_path)), tmp_path / "common", tmp_path / "agreement")
    assert j["cases"] == 8 and j["erroneous"] + j["correct"] == 8 and j["settings"]["m"] == 2
    assert j["unparsable_step"] <= j["erroneous"] and (j["f1"] is None or 0 <= j["f1"] <= 1)
    assert _judge_agreement(DemoConfig(out=str(tmp_path)), tmp_path / "common", tmp_path / "agreement") == j


def test_a_folder_keeps_the_backend_it_sampled_with(tmp_path):
    from stepdpo.experiments.sampler import choose_sampler

    (tmp_path / "sampling_backend.json").write_text(json.dumps({"name": "vllm", "why": "auto: projected"}))
    cfg, choice = choose_sampler(DemoConfig(out=str(tmp_path)), tmp_path, {}, [0], ("sft",), False)
    assert cfg.backend == "vllm" and choice["why"] == "auto: projected"  # kept, not probed again
    with pytest.raises(ValueError, match=r"samples came from the vllm backend, and --backend hf would mix"):
        choose_sampler(DemoConfig(out=str(tmp_path), backend="hf"), tmp_path, {}, [0], ("sft",), False)
    (tmp_path / "sampling_backend.json").write_text("{")
    with pytest.raises(ValueError, match="sampling_backend.json: unreadable"):
        choose_sampler(DemoConfig(out=str(tmp_path)), tmp_path, {}, [0], ("sft",), False)
