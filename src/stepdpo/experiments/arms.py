"""The demo's data: disjoint problem sets, and for each seed a whole run of the data pipeline
(Sec. 3.2) and the pairs of every arm.

Problem sets, all disjoint from the SFT model's training problems and from each other: per seed
its error-collection problems and its held-out test problems; validation problems for tuning;
the tuning run's own collection problems; the problems of the common validation pairs (Fig. 2).

From one seed's collection, all arms see the same problems: Step-DPO pairs, the shared-prefix DPO
pairs of the same errors, holistic DPO pairs (a correct against a wrong whole solution, both
sampled), and the Step-DPO pairs with s_win in another voice. Every arm's chosen side passes the
same filter, the task's checker on the whole chosen solution (the paper's s_win filter: a
solution with a wrong step is not a correct one, whatever its final answer).

Table 3 compares at equal pairs and optimizer steps: the DPO arms a run trains, and Step-DPO's
matched copy (``step_dpo_matched``), each keep as many pairs as the fewest of them has, those whose
ids hash lowest (a fixed random subset, :func:`cap`); Step-DPO itself, the primary comparison's
arm, keeps all of its pairs. A DPO arm the run does not train keeps as many as Step-DPO has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stepdpo.experiments.common import ARM_DATA, MATCHED_TO, DemoConfig, ood_pairs, synthetic_pipeline
from stepdpo.experiments.sampler import sampler
from stepdpo.pipeline.run import run_build, run_pipeline
from stepdpo.recordio import read_records, write_records
from stepdpo.records import Problem, StepPair, content_id
from stepdpo.stages.pairs import BuildConfig

COLLECT_SEED = 3000  # seed s collects on generator seed COLLECT_SEED + s
TUNE_SEED = 3999  # the tuning run's collection problems and sampling
COMMON_SEED = 3998  # the common validation pairs' problems and sampling
VAL_SEED = 4000  # the tuning run's validation problems


def problem_sets(cfg: DemoConfig, seeds: list[int]) -> dict[str, Any]:
    """``{"test": {seed: problems}, "collect": {seed: problems}, "val", "tune", "common"}``,
    every set disjoint from the SFT model's training problems and from every other set (a seed's
    test problems may repeat another seed's). The test problems of seeds 0 to 4 (``--full``) are
    kept out whichever seeds run, so the tuning and validation problems never depend on them."""
    from stepdpo.tasks import get_task

    task = get_task(cfg.setting["data"])
    taken = {p.problem for p in task.generate(task.train_size, seed=task.train_seed)}
    test = {s: task.problems("test", cfg.setting["eval_problems"], seed=task.heldout_seed + s) for s in seeds}
    for s in set(range(5)) | set(seeds):
        ps = test.get(s) or task.problems("test", cfg.setting["eval_problems"], seed=task.heldout_seed + s)
        taken |= {p.problem for p in ps}

    def fresh(n: int, seed: int) -> list[Problem]:
        out = task.generate(n, seed=seed, exclude=taken)
        taken.update(p.problem for p in out)
        return out

    return {
        "test": test,
        "val": fresh(cfg.setting["val_problems"], VAL_SEED),
        "common": fresh(2 * cfg.setting["val_pairs"], COMMON_SEED),
        "tune": fresh(cfg.setting["collect_problems"], TUNE_SEED),
        "collect": {s: fresh(cfg.setting["collect_problems"], COLLECT_SEED + s) for s in seeds},
    }


def cap(pairs: list[StepPair], n: int, salt: str = "cap") -> list[StepPair]:
    """At most ``n`` of ``pairs``: those whose ids hash lowest, in their original order."""
    if len(pairs) <= n:
        return pairs
    keep = set(sorted(range(len(pairs)), key=lambda i: content_id(pairs[i].id, salt))[:n])
    return [p for i, p in enumerate(pairs) if i in keep]


def matched_pairs(pairs: dict[str, list[StepPair]], match: tuple[str, ...] = ()) -> dict[str, list[StepPair]]:
    """Table 3 at equal pairs (and so equal optimizer steps): the DPO arms in ``match`` and
    ``step_dpo_matched``, a copy of Step-DPO's pairs, each keep as many pairs as the fewest of them
    has (an arm with none is left out of the count: it does not train); a DPO arm not in ``match``
    keeps as many as Step-DPO has. Returns those arms' pairs; ``pairs["step_dpo"]`` stays whole."""
    n_step = len(pairs["step_dpo"])
    fewest = min([n_step] + [len(pairs[a]) for a in MATCHED_TO if a in match and pairs[a]])
    out = {a: cap(pairs[a], fewest if a in match else n_step) for a in MATCHED_TO}
    out["step_dpo_matched"] = cap(pairs["step_dpo"], fewest)
    return out


def arm_data(
    cfg: DemoConfig, problems: list[Problem], seed: int, out: Path, match: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Run collect, locate, rectify and build on ``problems`` with sampling seed ``seed``, then write
    every arm's pairs into ``out``; returns the pair counts, what the caps and the s_win recheck
    dropped, the stages' summaries, and the Step-DPO pairs with either s_win (``s_win``). ``match``:
    the arms a run trains, whose DPO arms Table 3 matches Step-DPO's copy to. Rerun on the same
    folder, the stages resume from their files."""
    out.mkdir(parents=True, exist_ok=True)
    write_records(out / "problems.jsonl", problems)
    st = cfg.setting
    pcfg = synthetic_pipeline(
        st["model"],
        len(problems),
        out,
        judge=cfg.judge,
        max_new_tokens=st["max_new_tokens"],
        k=st["k"],
        n=st["n"],
        data=str(out / "problems.jsonl"),
        seed=seed,
        temperature=st["temperature"],
        top_p=st["top_p"],
        keep_correct=True,
        recheck=True,
        rollout_temperature=st["rollout_temperature"],
        rule=st.get("rule", "answer"),
        max_per_error=st.get("max_per_error", 1),
        backend=sampler(cfg),
    )
    stages = run_pipeline(pcfg)
    holistic = run_build(
        out / "errors.jsonl",
        out / "pairs_holistic.jsonl",
        BuildConfig(pair_format="holistic", max_per_problem=4, recheck=True),
    )
    by_id = {p.id: p for p in problems}
    pairs = {
        arm: read_records(out / ARM_DATA[arm][0], "step_pair")[0] for arm in ("dpo", "dpo_shared_prefix", "step_dpo")
    }
    pairs["step_dpo_ood"] = ood_pairs(pairs["step_dpo"], by_id, style=st["ood_style"])
    write_records(out / ARM_DATA["step_dpo_ood"][0], pairs["step_dpo_ood"])
    uncapped = {arm: len(pairs[arm]) for arm in MATCHED_TO}
    pairs.update(matched_pairs(pairs, match))
    for arm in (*MATCHED_TO, "step_dpo_matched"):
        write_records(out / ARM_DATA[arm][0], pairs[arm])
    summaries = [*stages, holistic]
    own = {p.id: p.chosen.strip() for p in pairs["step_dpo"]}
    return {
        "pairs": {arm: len(pairs[arm]) for arm in ARM_DATA},
        "structure": {arm: pair_structure(pairs[arm], by_id) for arm in uncapped},
        "s_win": {"id": pairs["step_dpo"], "ood": pairs["step_dpo_ood"]},
        "uncapped": uncapped,
        # Table 4 compares nothing where the other voice is the model's own text word for word
        "ood_same_as_own": sum(own.get(q.id) == q.chosen.strip() for q in pairs["step_dpo_ood"]),
        # what the checker's filter (the same for every arm) dropped, per arm
        "recheck_dropped": {
            arm: s.dropped.get("chosen_fails_recheck", 0)
            for arm, s in (("step_dpo", stages[-2]), ("dpo_shared_prefix", stages[-1]), ("dpo", holistic))
        },
        "stages": [s.to_dict() for s in summaries],
    }


def pair_structure(pairs: list[StepPair], problems: dict[str, Problem]) -> dict[str, float]:
    """What the whole-solution pairs hold, read with the task's checker: the rejected solution's
    first wrong step k, its steps, the steps after k, and the share of pairs whose chosen solution
    repeats the rejected one's s1..s(k-1) verbatim (that part cancels in eq. 1, as in Step-DPO)."""
    from stepdpo.tasks import step_checker
    from stepdpo.text.steps import split_steps

    by_text = {p.problem: p for p in problems.values()}
    ks, steps, shared = [], [], []
    for pair in pairs:
        problem = by_text.get(pair.prompt)
        check = step_checker(problem.source, problem.meta) if problem else None
        if check is None:
            continue
        chosen, rejected = (split_steps(t)[1] for t in pair.dpo_completions())
        k, _ = check(problem, "".join(rejected), False)
        if k is None:
            continue
        ks.append(k)
        steps.append(len(rejected))
        shared.append(chosen[: k - 1] == rejected[: k - 1])
    n = max(len(ks), 1)
    return {
        "pairs_read": len(ks),
        "mean_first_error_step": sum(ks) / n,
        "mean_steps": sum(steps) / n,
        "mean_steps_after_error": sum(s - k for s, k in zip(steps, ks)) / n,
        "share_repeating_prior_steps": sum(shared) / n,
    }


def ref_logp_per_token(model: str, *pair_sets: list[StepPair]) -> list[float]:
    """For each set of pairs, the reference model's log-prob per token of their s_win (``chosen``)
    after their prompt and prior steps, pooled over the set's tokens: how far s_win lies from the
    model's own distribution (Table 4). The model is loaded once for all sets."""
    import torch
    from transformers import AutoModelForCausalLM

    from stepdpo.models import load_tokenizer, resolve_model_path
    from stepdpo.training.packing import completion_logps, encode_pairs, micro_batches
    from stepdpo.training.trainer import TrainConfig

    tok = load_tokenizer(model)
    lm = AutoModelForCausalLM.from_pretrained(resolve_model_path(model), dtype=torch.float32).eval()
    cfg = TrainConfig(max_seq_len=1024)
    out = []
    for pairs in pair_sets:
        enc = encode_pairs(tok, pairs, add_eos=False, pair_format="step")
        total, tokens = 0.0, 0
        with torch.no_grad():
            for order, batch in micro_batches(enc, list(range(len(enc))), cfg):
                chosen, _ = completion_logps(lm, batch)
                total += float(chosen.sum())
                tokens += sum(len(enc[i].chosen) for i in order)
        out.append(total / tokens if tokens else None)  # no pairs: no figure (mean_ci leaves it out)
    return out
