"""The experiments' Markdown reports: the demo's tables and what they say, and the ablations' section."""

from __future__ import annotations

from typing import Any

from stepdpo.experiments.common import LABELS, interval
from stepdpo.experiments.judge_eval import agreement_section
from stepdpo.experiments.primary import primary_section
from stepdpo.experiments.settings import OOD_VOICES

DPO, GAP = "dpo_shared_prefix", "step_dpo_minus_dpo_shared_prefix"  # what `stepdpo ablate` compares

PAPER_ORDERINGS = (
    ("step_dpo_matched_minus_dpo", "Table 3", "Step-DPO above holistic DPO, at equal pairs and steps"),
    (
        "step_dpo_matched_minus_dpo_shared_prefix",
        "Table 3 (the released data's whole solutions)",
        "Step-DPO above DPO on whole solutions sharing s1..s(k-1), at equal pairs and steps",
    ),
    ("step_dpo_minus_step_dpo_ood", "Table 4", "in-distribution s_win above out-of-distribution s_win"),
    ("step_dpo_minus_sft", "Table 1", "Step-DPO above the SFT model"),
)
"""The orderings the paper reports, as (difference, where, what it claims)."""


def verdict(diff: dict[str, Any], tests: int = 1) -> str:
    """``holds``, ``reversed`` or ``not separable``: where the 95 % interval of a paired difference
    lies; with ``tests`` > 1, the Bonferroni interval (level 1 - 0.05 / tests) of one of that many."""
    if diff["ci95"] is None:
        return "not separable"
    present = [v for v in diff["values"] if v is not None]
    lo, hi = diff["ci95"] if tests == 1 else interval(present, 1 - 0.05 / tests)
    return "holds" if lo > 0 else "reversed" if hi < 0 else "not separable"


def report(res: dict[str, Any], ablations: list[str] | None = None) -> str:
    """The Markdown report: the tables, which of the paper's orderings hold here, how long each
    stage took, and the section of ``stepdpo ablate`` (Markdown lines) when the ablations have been run."""
    a, d, hp = res["accuracy"], res["differences"], res["hyperparameters"]
    cfg, st = res["config"], res["setting"]
    kind = res["accuracy_kind"]
    task = {
        "long": "the long-chain form (20 steps)",
        "smollm2": "SmolLM2-135M-Instruct (after a short SFT) on the short stories (1 to 3 steps)",
    }.get(res["task"], "the embedded task (3 to 6 steps)")
    lines = [
        f"# Step-DPO on {task}",
        "",
        f"Seeds {res['seeds']}. Each seed reruns collect, locate and rectify with its own sampling seed on its own "
        f"{st['collect_problems']} collection problems (held out from SFT), trains every arm with its own data "
        f"order, and tests on its own {st['eval_problems']} held-out problems ({kind} decoding"
        + (", one sample per problem at the collection temperature" if kind == "sampled" else "")
        + "). Accuracy in %, mean and 95 % interval (Student t over seeds); differences paired by seed.",
        "",
        "## Arms",
        "",
        "| arm | accuracy | pairs per seed | lr | beta |",
        "|---|---|---|---|---|",
        f"| {LABELS['sft']} | {pct(a['sft'])} | | | |",
    ]
    run = _ran(res)
    orderings = [o for o in (_as_run(o, run) for o in PAPER_ORDERINGS) if all(x in run for x in o[0].split("_minus_"))]
    for arm in (x for x in ("dpo", "dpo_shared_prefix", "step_dpo_matched", "step_dpo", "step_dpo_ood") if x in run):
        lines.append(
            f"| {LABELS[arm]} | {pct(a[arm])} | {', '.join(map(str, res['pairs'][arm]))} | "
            f"{hp[arm]['lr']:g} | {hp[arm]['beta']:g} |"
        )
    if len(run) < len(a):
        lines += [
            "",
            f"Only these arms ran (`--arms`; `--arms all` runs every one): {', '.join(LABELS[x] for x in run)}.",
        ]
    if "accuracy_greedy" in res:
        g = res["accuracy_greedy"]
        lines += ["", "Greedy accuracy, for reference: " + ", ".join(f"{LABELS[x]} {pct(g[x])}" for x in g) + "."]
    before = res["pairs_before_cap"]
    lines += [
        "",
        "Pairs: Table 3 compares at equal pairs and optimizer steps. The DPO arms that ran and a copy of Step-DPO "
        "(matched) each keep as many pairs as the fewest of them has, those whose ids hash lowest; Step-DPO itself "
        f"keeps all of its pairs (before the cap: holistic {before['dpo']}, shared prefix "
        f"{before['dpo_shared_prefix']}). Every arm's chosen "
        "solutions pass the same filter, the task's checker on the whole chosen solution (a right answer reached "
        f"through a wrong step is not a correct solution); it dropped, per seed, {_dropped(res['recheck_dropped'])}. "
        + (
            f"lr and beta: {res['hyperparameters_note']}."
            if res.get("hyperparameters_note")
            else "lr and beta: each arm's pick from the same grid on validation problems (`stepdpo demo --tune`)."
        ),
        "",
        *primary_section(res.get("primary"), LABELS),
        "## What holds here",
        "",
        f"| paper | ordering | difference (points) | per seed | here | here, one of {len(orderings)} tests | "
        "pooled over seeds' problems | p, corrected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    n = len(orderings)
    for key, where, claim in orderings:
        r = d[key]
        lines.append(
            f"| {where} | {claim} | {signed(r)} | {', '.join('-' if v is None else f'{100 * v:+.1f}' for v in r['values'])} | "
            f"{verdict(r)} | {verdict(r, n)} | {_pooled_cells(res, key)} |"
        )
    held = [claim for key, _, claim in orderings if verdict(d[key]) == "holds"]
    other = [(claim, verdict(d[key])) for key, _, claim in orderings if verdict(d[key]) != "holds"]
    lines += [
        "",
        "Holds (the 95 % interval of the paired difference is above zero): " + ("; ".join(held) or "none") + ".",
        "Does not hold: " + ("; ".join(f"{c} ({v})" for c, v in other) or "none") + ".",
        "",
        f"Each interval is for one comparison. {n} orderings are tested here (more across tasks), so one of them "
        "can hold by chance more often than one time in twenty: the column 'here, one of "
        f"{n} tests' reads the Bonferroni "
        f"interval (level {100 * (1 - 0.05 / n):.2f} %) instead. The last two columns pool every seed's problems "
        "(the primary comparison's test, two-level bootstrap and exact sign test), their p corrected for the "
        "comparisons tested beside the primary one. Seeds are counted before looking: a run with more seeds "
        "that repeats these seeds and adds others is a second look at the same data, not a new test.",
        *_grid_edges(res),
        *(
            []
            if ablations is not None
            else [
                "",
                "`stepdpo ablate --demo <this folder>` retrains Step-DPO and shared-prefix DPO with one factor "
                "changed at a time (pairs, beta, epochs, kind of error); its section is added to this report.",
            ]
        ),
        "",
        *_structure(res),
        "## Table 4: how far out of distribution s_win is",
        "",
        "| s_win | reference log-prob per token |",
        "|---|---|",
        f"| the model's own rectified steps | {_num(res['ref_logp_per_token']['id'])} nats |",
        f"| {OOD_VOICES[st.get('ood_style', 'paraphrase')]} | {_num(res['ref_logp_per_token']['ood'])} nats |",
        "",
        *_same_as_own(res),
        *agreement_section(res.get("judge_agreement")),
        "## Fig. 2: the same validation pairs for every model",
        "",
        f"At the end of training, on {_val_pairs(res, st, cfg)} from "
        "problems no seed trains or tests on: reward accuracy, and the margin divided by beta (the log-ratio "
        "margin, comparable across arms whose beta differs). Curves over training: `curves.png`.",
        "",
        "| arm | step-level accuracy | step-level margin / beta | whole-solution accuracy | whole-solution margin / beta |",
        "|---|---|---|---|---|",
    ]
    for arm, v in res["validation"].items():
        if arm not in run:
            continue
        s, w = v["step"], v["whole"]
        lines.append(
            f"| {LABELS[arm]} | {pct(s['reward_accuracy'])} | {_num(s['logratio_margin'])} | "
            f"{pct(w['reward_accuracy'])} | {_num(w['logratio_margin'])} |"
        )
    lines += _moved(res["validation"])
    lines += [
        "",
        "![accuracy](accuracy.png)",
        "",
        "![curves](curves.png)",
        "",
        "## Time",
        "",
        "| stage | seconds |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.0f} |" for k, v in res["stage_seconds"].items()]
    lines += [f"| total | {res['wall_s']:.0f} |", ""]
    if res.get("sampling_backend"):
        lines += [f"Sampling backend: {res['sampling_backend']['name']} ({res['sampling_backend']['why']}).", ""]
    if res.get("unit_costs"):
        names = {
            "collect_per_problem": f"collect, per problem ({st['k']} samples)",
            "rectify_per_error": f"rectify, per error ({st['n']} continuations, {st.get('rule', 'answer')} rule)",
            "data_per_step_pair": "collect, locate and rectify, per Step-DPO pair",
            "train_per_pair_epoch": "train, per pair and epoch (reference and validation passes included)",
            "evaluate_per_problem": "evaluate, per test problem",
        }
        lines += ["Seconds per unit (a larger run costs these times its sizes):", "", "| unit | seconds |", "|---|---|"]
        lines += [f"| {names[k]} | {'-' if v is None else f'{v:.2f}'} |" for k, v in res["unit_costs"].items()]
        lines += [""]
    if ablations is not None:
        lines += ablations
    return "\n".join(lines)


def _as_run(ordering: tuple[str, str, str], run: list[str]) -> tuple[str, str, str]:
    """An ordering as a run reads it: without the matched arm (results from before it), Table 3
    compares Step-DPO on all of its pairs."""
    key, where, claim = ordering
    if key.startswith("step_dpo_matched_minus_") and "step_dpo_matched" not in run:
        return key.replace("step_dpo_matched_", "step_dpo_", 1), where, claim.replace("at equal", "not at equal")
    return ordering


def pooled_test(res: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The pooled test of a paired difference: the primary comparison's, or a secondary one's
    (which carries ``p_bonferroni``); None where it was not tested."""
    r = res.get("primary") if key == "step_dpo_minus_sft" else (res.get("secondary") or {}).get(key)
    return r if r and r.get("seeds_scored") else None


def pooled_text(r: dict[str, Any]) -> str:
    """A pooled difference in points with its bootstrap interval."""
    lo, hi = r["bootstrap_ci95"]
    return f"{r['difference']:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def _pooled_cells(res: dict[str, Any], key: str) -> str:
    """The pooled test as two table cells: the difference with its interval, and p corrected."""
    t = pooled_test(res, key)
    if t is None:
        return "- | -"
    if "p_bonferroni" not in t:
        return f"{pooled_text(t)} | {t['p']:.3g} (primary, not corrected)"
    return f"{pooled_text(t)} | {t['p']:.3g}, x {t['tests']}: {t['p_bonferroni']:.3g}"


def _ran(res: dict[str, Any]) -> list[str]:
    """The arms a run trained and tested (older results name none: every arm ran)."""
    return res.get("arms") or list(res["accuracy"])


def _structure(res: dict[str, Any]) -> list[str]:
    """The report's section on what the whole-solution pairs hold (read with the task's checker)."""
    ps = res.get("pair_structure")
    if not ps or not {"dpo", "dpo_shared_prefix"} & set(_ran(res)):
        return []
    lines = [
        "## What the whole-solution pairs hold",
        "",
        "| pairs | first wrong step k | steps | steps after k | chosen repeats s1..s(k-1) of rejected |",
        "|---|---|---|---|---|",
    ]
    for arm in (a for a in ("dpo", "dpo_shared_prefix") if a in _ran(res)):
        v = ps[arm]
        lines.append(
            f"| {LABELS[arm].replace('SFT + ', '')} | {v['mean_first_error_step']['mean']:.1f} | "
            f"{v['mean_steps']['mean']:.1f} | {v['mean_steps_after_error']['mean']:.1f} | "
            f"{100 * v['share_repeating_prior_steps']['mean']:.0f} % |"
        )
    lines += [
        "",
        "Where the correct solution repeats the wrong one's steps before the error word for word, those steps "
        "cancel in eq. 1 (the same tokens in the same context on both sides), so such a holistic pair trains "
        "what Step-DPO trains plus the steps after k and EOS.",
        "",
    ]
    return lines


def _interval(r: dict[str, Any], fmt: str, scale: float) -> str:
    """``mean [lo, hi]``, or the mean alone where one seed gives no interval."""
    if r["mean"] is None:
        return "n/a (no pairs)"
    text = fmt.format(scale * r["mean"])
    missing = sum(v is None for v in r.get("values", []))
    if r["ci95"] is None:
        return f"{text} (one seed)"
    lo, hi = r["ci95"]
    note = f" ({missing} seed{'s' if missing > 1 else ''} without pairs left out)" if missing else ""
    return f"{text} [{fmt.format(scale * lo)}, {fmt.format(scale * hi)}]{note}"


def _grid_edges(res: dict[str, Any]) -> list[str]:
    """Which picks lie on the edge of the tuning grid (a wider grid may move them)."""
    cfg, hp = res["config"], res["hyperparameters"]
    lrs, betas = cfg.get("lrs") or [], cfg.get("betas") or []
    if (len(lrs) < 2 and len(betas) < 2) or res.get("hyperparameters_note"):
        return []  # picks made otherwise say how in their note
    hp = {a: h for a, h in hp.items() if a in _ran(res)}
    edge = [
        f"{LABELS[a]} ({', '.join(k for k, v, grid in (('lr', h['lr'], lrs), ('beta', h['beta'], betas)) if len(grid) > 1 and v in (min(grid), max(grid)))})"
        for a, h in hp.items()
        if any(len(grid) > 1 and v in (min(grid), max(grid)) for v, grid in ((h["lr"], lrs), (h["beta"], betas)))
    ]
    if not edge:
        return []
    return [
        "",
        f"Picks on the edge of the tuning grid (lr {lrs}, beta {betas}): {'; '.join(edge)}. A wider grid may move them.",
    ]


def _dropped(per_seed: list[Any]) -> str:
    """What the checker's filter dropped per seed, per arm (older results: one count for Step-DPO)."""
    if not per_seed or not isinstance(per_seed[0], dict):
        return f"{per_seed} (Step-DPO)"
    return "; ".join(f"{LABELS[a]} {[d[a] for d in per_seed]}" for a in per_seed[0])


def _num(r: dict[str, Any]) -> str:
    return _interval(r, "{:.2f}", 1)


def pct(r: dict[str, Any]) -> str:
    """A share in percent with its interval."""
    return _interval(r, "{:.1f}", 100)


def signed(r: dict[str, Any]) -> str:
    """A difference in points, signed, with its interval."""
    return _interval(r, "{:+.1f}", 100)


def _same_as_own(res: dict[str, Any]) -> list[str]:
    same, n = sum(res.get("ood_same_as_own") or [0]), sum(v or 0 for v in res["pairs"]["step_dpo_ood"])
    if not same:
        return []
    return [
        f"In {same} of {n} pairs the out-of-distribution s_win is the model's own step word for word: "
        "where it is, the two arms train on the same pairs and Table 4 compares nothing.",
        "",
    ]


def _moved(validation: dict[str, Any]) -> list[str]:
    """How far training moved each arm: its log-prob margin on the step-level validation pairs,
    log pi(s_win) - log pi(s_lose), at step 0 (the reference model's) and at the end."""
    rows = [
        (arm, v["step"])
        for arm, v in validation.items()
        if v["step"].get("logp_margin_step0", {}).get("mean") is not None
    ]
    if not rows:
        return []
    out = [
        "",
        "The policy's log-prob margin on the step-level pairs, log pi(s_win) - log pi(s_lose) in nats, before "
        "training (step 0: the reference model's own) and at the end. At step 0 the policy is the reference, so "
        "every reward is 0 up to rounding (about 1e-7) and the reward accuracy there reads the sign of that "
        "rounding, not a ranking.",
        "",
        "| arm | margin at step 0 | margin at the end |",
        "|---|---|---|",
    ]
    out += [f"| {LABELS[a]} | {_num(v['logp_margin_step0'])} | {_num(v['logp_margin_end'])} |" for a, v in rows]
    return out


def _val_pairs(res: dict, st: dict, cfg: dict) -> str:
    """How many validation pairs Fig. 2 scored: those counted by the run, else the setting's cap."""
    counts = res.get("validation_pairs")
    if counts is None:
        return f"{st.get('val_pairs', cfg.get('val_pairs'))} step-level and as many whole-solution pairs"
    return f"{counts.get('step', 0)} step-level and {counts.get('whole', 0)} whole-solution pairs"
