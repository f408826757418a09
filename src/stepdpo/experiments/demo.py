"""``stepdpo demo``: the paper's comparisons at small scale, end to end on an embedded model.

Arms (Tables 3 and 4), all trained from the same SFT model on pairs from the same error-collection
problems (:mod:`stepdpo.experiments.arms`): holistic DPO (a correct against a wrong whole
solution), DPO on whole solutions sharing the prefix s1..s(k-1) (the released data's
``full_chosen``/``full_rejected``), Step-DPO (eq. 2), and Step-DPO with s_win in another voice.
Each seed reruns collect, locate and rectify on its own problems with its own sampling seed, then
trains every arm (its lr and beta picked by ``--tune``) and tests it and the SFT model on its own
held-out problems. Every trained model is also scored on the same step-level and whole-solution
validation pairs during training (Fig. 2). Writes ``results.json``, ``report.md``,
``accuracy.png``, ``curves.png`` and every seed's data, logs and evaluations into one folder;
killed and rerun, finished trainings and evaluations are kept.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stepdpo.experiments.arms import COMMON_SEED, arm_data, cap, problem_sets, ref_logp_per_token
from stepdpo.experiments.common import (
    ARM_DATA,
    ARMS,
    TRAINED,
    DemoConfig,
    hyperparameters,
    kept,
    mean_ci,
    paired,
    picks_note,
    run_key,
    train_config,
    train_key,
)
from stepdpo.experiments.plots import plots
from stepdpo.experiments.primary import PRIMARY, declare, outcomes_of, score, secondary
from stepdpo.experiments.report import report
from stepdpo.experiments.sampler import choose_sampler, eval_key, evaluate_model, sampler
from stepdpo.experiments.starting import starting_model
from stepdpo.experiments.summary import unit_costs, validation_summary
from stepdpo.progress import Bar, log
from stepdpo.recordio import atomic_write_text, read_records, write_records
from stepdpo.training.logs import normalize_row

DIFFERENCES = {
    "step_dpo_matched_minus_dpo": ("step_dpo_matched", "dpo"),
    "step_dpo_matched_minus_dpo_shared_prefix": ("step_dpo_matched", "dpo_shared_prefix"),
    "step_dpo_minus_dpo": ("step_dpo", "dpo"),
    "step_dpo_minus_dpo_shared_prefix": ("step_dpo", "dpo_shared_prefix"),
    "step_dpo_minus_step_dpo_ood": ("step_dpo", "step_dpo_ood"),
    "step_dpo_minus_sft": ("step_dpo", "sft"),
}
"""The paired per-seed differences: Table 3 at equal pairs and steps for both readings of DPO
(and, beside them, against Step-DPO on all of its pairs), Table 4, and the gain."""
SECONDARY = ("step_dpo_matched_minus_dpo", "step_dpo_matched_minus_dpo_shared_prefix", "step_dpo_minus_step_dpo_ood")
"""The comparisons tested, pooled, beside the primary one (corrected for how many ran)."""


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run everything; returns the content of ``results.json`` (``--tune``: of ``tuning.json``)."""
    if cfg.tune:
        from stepdpo.experiments.tune import run_tune

        return run_tune(cfg)
    t_all, times = time.time(), {}
    out, seeds, hp = Path(cfg.out), cfg.run_seeds, hyperparameters(cfg)
    out.mkdir(parents=True, exist_ok=True)
    sampled = cfg.task == "long"  # greedy decoding solves nearly every long chain
    agreement = "judge_cases" in cfg.setting
    run_arms = cfg.run_arms
    whole = Bar("demo", 2 + agreement + len(seeds) * (2 * len(run_arms)), unit="part")
    whole.note(now="the starting model")
    cfg = starting_model(cfg, out)
    whole.update(1)
    times["sft"] = time.time() - t_all
    whole.note(now="data for the common validation pairs")
    t = time.time()
    sets = problem_sets(cfg, seeds)
    cfg, backend = choose_sampler(cfg, out, sets, seeds, run_arms, sampled)  # before anything samples
    val_sets, val_counts = _common_pairs(cfg, sets["common"], out / "common")
    whole.update(1)
    times["data"] = time.time() - t
    judges = None
    if agreement:
        whole.note(now="rollout judge against the checker")
        t = time.time()
        judges = _judge_agreement(cfg, out / "common", out / "judge-agreement")
        whole.update(1)
        times["judge agreement"] = time.time() - t
    n_test = len(sets["test"][seeds[0]])
    primary = declare(PRIMARY, n_test, len(seeds), out, cfg.setting.get("planning"))  # before any arm is scored
    outcomes: dict[str, list] = {a: [] for a in ARMS}
    acc: dict[str, dict[str, list[float]]] = {"greedy": {a: [] for a in ARMS}, "sampled": {a: [] for a in ARMS}}
    data, logs, ref_lp = {}, {a: [] for a in TRAINED}, {"id": [], "ood": []}
    # the optimizer steps and evaluations this run made: not those kept from an earlier run, nor a
    # matched copy that is Step-DPO itself (the unit costs' denominators)
    ran = {"steps": 0, "evaluations": 0}
    for seed in seeds:
        sdir = out / f"seed{seed}"
        t = time.time()
        whole.note(now=f"seed {seed}: collect, locate, rectify, build")
        data[seed] = arm_data(cfg, sets["collect"][seed], seed, sdir / "data", match=run_arms)
        s_win = data[seed].pop("s_win")
        for kind, lp in zip(s_win, ref_logp_per_token(cfg.setting["model"], *s_win.values())):
            ref_lp[kind].append(lp)
        whole.update(1)
        times["data"] += time.time() - t
        log.info(f"[{time.time() - t_all:.0f} s] seed {seed} pairs: {data[seed]['pairs']}")
        if data[seed]["ood_same_as_own"]:
            log.warning(
                f"seed {seed}: in {data[seed]['ood_same_as_own']} of {data[seed]['pairs']['step_dpo_ood']} pairs the "
                f"out-of-distribution s_win ({cfg.setting['ood_style']}) is the model's own step word for word"
            )
        models = {"sft": (cfg.setting["model"], run_key(cfg.setting["model"]))}
        for arm in (a for a in TRAINED if a in run_arms):
            if not data[seed]["pairs"][arm]:
                # nothing to train on: the arm has no model on this seed, and its comparisons leave
                # the seed out (counted in the report), rather than the run stopping here
                log.warning(f"seed {seed}: no {arm} pairs; {arm} is not trained or tested on this seed")
                whole.update(1)
                continue
            if arm == "step_dpo_matched" and data[seed]["pairs"][arm] == data[seed]["pairs"]["step_dpo"]:
                # no DPO arm has fewer pairs on this seed: the matched copy is Step-DPO itself
                models[arm] = models["step_dpo"]
                logs[arm].append(logs["step_dpo"][-1])
                whole.update(1)
                continue
            t = time.time()
            whole.note(now=f"seed {seed}: training {arm}")
            *models[arm], rows = _train_arm(cfg, arm, seed, hp[arm], sdir, out, val_sets, ran)
            logs[arm].append(rows)
            whole.update(1)
            times[f"train {arm}"] = times.get(f"train {arm}", 0) + time.time() - t
        for arm in ARMS:
            if arm not in run_arms:  # not asked for (--arms): no model, no score, on any seed
                for mode in acc:
                    acc[mode][arm].append(None)
                outcomes[arm].append(None)
                continue
            modes = ("greedy", "sampled") if sampled else ("greedy",)
            if arm == "step_dpo_matched" and models.get(arm) == models.get("step_dpo"):
                for mode in modes:  # the same model: the same scores
                    acc[mode][arm].append(acc[mode]["step_dpo"][-1])
                outcomes[arm].append(outcomes["step_dpo"][-1])
                whole.update(1)
                continue
            t = time.time()
            whole.note(now=f"seed {seed}: evaluating {arm}")
            for mode in modes:
                acc[mode][arm].append(
                    _evaluate(cfg, *models[arm], sets["test"][seed], sdir / f"eval-{arm}", mode, ran)
                    if arm in models
                    else None
                )
            # never a stale file: an arm without a model on this seed has none
            where = sdir / f"eval-{arm}" / ("sampled" if sampled else "greedy")
            outcomes[arm].append(outcomes_of(where) if arm in models else None)
            whole.update(1)
            times["evaluate"] = times.get("evaluate", 0) + time.time() - t
        main = acc["sampled" if sampled else "greedy"]
        log.info(
            f"[{time.time() - t_all:.0f} s] seed {seed}: "
            + ", ".join(f"{a} {'-' if main[a][-1] is None else f'{main[a][-1]:.3f}'}" for a in ARMS)
        )
    whole.close()
    main = acc["sampled" if sampled else "greedy"]
    steps = {a: [max(r["step"] for r in rows) for rows in logs[a]] for a in TRAINED if logs[a]}
    results = {
        "task": cfg.name,
        "seeds": seeds,
        "arms": list(run_arms),
        "accuracy_kind": "sampled" if sampled else "greedy",
        "primary": score(primary, outcomes),
        "secondary": secondary(
            {k: DIFFERENCES[k] for k in SECONDARY if all(a in run_arms for a in DIFFERENCES[k])}, outcomes
        ),
        "accuracy": {a: mean_ci(v) for a, v in main.items()},
        "differences": {k: mean_ci(paired(main[a], main[b])) for k, (a, b) in DIFFERENCES.items()},
        "ref_logp_per_token": {k: mean_ci(v) for k, v in ref_lp.items()},
        "judge_agreement": judges,
        # the SFT model the arms start from, with the seconds it took when it was built
        "sft": json.loads((Path(cfg.base_model) / "done.json").read_text()) if cfg.base_model else None,
        "pairs": {a: [data[s]["pairs"][a] for s in seeds] for a in TRAINED},
        "pairs_before_cap": {a: [data[s]["uncapped"][a] for s in seeds] for a in ("dpo", "dpo_shared_prefix")},
        "recheck_dropped": [data[s]["recheck_dropped"] for s in seeds],
        "ood_same_as_own": [data[s].get("ood_same_as_own", 0) for s in seeds],
        "pair_structure": {
            arm: {k: mean_ci([data[s]["structure"][arm][k] for s in seeds]) for k in data[seeds[0]]["structure"][arm]}
            for arm in ("dpo", "dpo_shared_prefix")
        },
        "hyperparameters": hp,
        "hyperparameters_note": picks_note(cfg),
        "setting": cfg.setting,
        "validation": validation_summary(logs, hp),
        "validation_pairs": val_counts,
        "data_stages": {str(s): data[s]["stages"] for s in seeds},
        "stage_seconds": {k: round(v, 1) for k, v in times.items()},
        "optimizer_steps": steps,
        "unit_costs": unit_costs(
            data, times, ran["evaluations"], seeds, cfg.setting, ran["steps"] * cfg.setting["global_batch"]
        ),
        "sampling_backend": backend,
        "config": asdict(cfg),
        "wall_s": round(time.time() - t_all, 1),
    }
    # an SFT model built by an earlier run in this folder is reused: its seconds still belong to the cost
    built = (results["sft"] or {}).get("seconds", 0.0)
    results["wall_s_sft_included"] = round(results["wall_s"] + (built if times["sft"] < built / 2 else 0.0), 1)
    if sampled:
        results["accuracy_greedy"] = {a: mean_ci(v) for a, v in acc["greedy"].items()}
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    plots(out, results, logs, hp)
    atomic_write_text(out / "report.md", report(results))
    return results


def _common_pairs(cfg: DemoConfig, problems: list, out: Path) -> tuple[list[str], dict[str, int]]:
    """The validation pairs every trained model is scored on (Fig. 2): up to ``cfg.val_pairs`` step
    pairs and as many holistic whole-solution pairs, from problems no seed trains or tests on;
    returned as the trainer's ``val_sets`` entries, with how many of each kind the problems gave."""
    arm_data(cfg, problems, COMMON_SEED, out)
    entries, counts = [], {}
    for name, fname, fmt in (("step", "pairs.jsonl", "step"), ("whole", "pairs_holistic.jsonl", "dpo")):
        pairs, _ = read_records(out / fname, "step_pair")
        if not pairs:
            log.warning(f"{out / fname}: no {name} validation pairs; Fig. 2 leaves them out (raise --val-pairs)")
            continue
        kept_pairs = cap(pairs, cfg.setting["val_pairs"], "val")
        write_records(out / f"val_{name}.jsonl", kept_pairs)
        entries.append(f"{name}={fmt}:{out / f'val_{name}.jsonl'}")
        counts[name] = len(kept_pairs)
    return entries, counts


def _judge_agreement(cfg: DemoConfig, common: Path, out: Path) -> dict[str, Any]:
    """The rollout judge against the task's exact checker on the same solutions: the first
    ``judge_cases`` solutions sampled for the common validation pairs (the starting model's own
    text, right and wrong), labelled by the checker reading the arithmetic each step writes,
    then judged by rollouts from the starting model, scored with ProcessBench's metrics
    (:func:`~stepdpo.experiments.judge_eval.score`). A step the checker finds no equation in is
    its first wrong step, and such labels are counted (``unparsable_step``), not guessed."""
    from stepdpo.experiments.judge_eval import EvalJudgeConfig, run_eval_judge
    from stepdpo.stages.locate.verifier import VerifierJudge

    st = cfg.setting
    solutions, _ = read_records(common / "errors.jsonl", "solution")
    labelled = VerifierJudge().locate(solutions[: st["judge_cases"]])
    out.mkdir(parents=True, exist_ok=True)
    write_records(out / "checker.jsonl", labelled)
    ecfg = EvalJudgeConfig(
        judge="rollout",
        data=str(out / "checker.jsonl"),
        model=st["model"],
        out=str(out),
        temperature=st["rollout_temperature"],
        max_new_tokens=st["max_new_tokens"],
        seed=COMMON_SEED,
        m=st["judge_m"],
        backend=sampler(cfg),
    )
    key = run_key(asdict(ecfg), files=(out / "checker.jsonl",))
    done = kept(out / "agreement.json", key)
    if done is None:
        summary = run_eval_judge(ecfg)
        messages = [e.evidence.get("message", "") for e in labelled if e.first_error_step is not None]
        summary["unparsable_step"] = sum(m == "no equation" for m in messages)
        done = {"key": key, "summary": summary}
        atomic_write_text(out / "agreement.json", json.dumps(done, indent=2))
    return done["summary"]


def _train_arm(
    cfg: DemoConfig,
    arm: str,
    seed: int,
    hp: dict[str, float],
    sdir: Path,
    out: Path,
    val_sets: list[str],
    ran: dict[str, int],
) -> tuple[str, str, list[dict]]:
    """Train one arm of one seed; returns its model, the key of its settings and data, and its log
    rows. A finished training is kept only if made under the same key; otherwise it is redone (its
    optimizer steps added to ``ran["steps"]``)."""
    from stepdpo.training.trainer import train

    fname, fmt = ARM_DATA[arm]
    run = sdir / arm
    tc = train_config(
        cfg, sdir / "data" / fname, fmt, run, seed, hp["lr"], hp["beta"], out / "ref_logps.json", val_sets=val_sets
    )
    key = train_key(tc)
    done = kept(run / "done.json", key)
    fresh = done is None
    if fresh:
        shutil.rmtree(run, ignore_errors=True)  # another setting's run, or a killed one
        done = {"model": train(tc)["model"], "key": key}
        atomic_write_text(run / "done.json", json.dumps(done))
    rows = [normalize_row(json.loads(line)) for line in (run / "log.jsonl").read_text().splitlines()]
    ran["steps"] += max(r["step"] for r in rows) if fresh else 0
    return done["model"], key, rows


def _evaluate(
    cfg: DemoConfig, model: str, model_key: str, held: list, out: Path, mode: str, ran: dict[str, int]
) -> float:
    """Accuracy on ``held``, kept if measured on the same model, decoding and problems (else
    measured, and counted in ``ran["evaluations"]``)."""
    path = out / f"{mode}.json"
    key = eval_key(cfg, model_key, held, mode == "sampled")
    done = kept(path, key)
    if done is None:
        done = {"accuracy": evaluate_model(cfg, model, held, out / mode, sampled=mode == "sampled"), "key": key}
        atomic_write_text(path, json.dumps(done))
        ran["evaluations"] += 1
    return done["accuracy"]
