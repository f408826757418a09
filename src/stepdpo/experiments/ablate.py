"""``stepdpo ablate``: where the difference between Step-DPO and DPO on whole solutions sharing the
prefix s1..s(k-1) (the demo's ``dpo_shared_prefix`` arm) comes from.

Reads a finished ``stepdpo demo`` folder and retrains both on the same seeds and each seed's own
pairs with one factor changed at a time: the number of pairs (a share of the errors, the same errors for both
methods), beta of eq. 2, the number of epochs, and the kind of error (errors in the last step
against errors earlier in the chain). The demo's own runs are the baseline of every factor.

It also measures what needs no training:

- In eq. 1 the steps s1..s(k-1) that a whole-solution pair shares cancel exactly: the same tokens
  in the same context appear in both log-ratios. On the same errors, vanilla DPO therefore differs
  from Step-DPO (eq. 2) only by the steps after step k (and the EOS token). The share of pairs with
  nothing after step k, and the completion tokens after it, say how much the two losses can differ.
- Which errors each model still makes on the held-out problems, by kind and by position.

Every run is one line of ``ablations.jsonl`` (killed and rerun, finished runs are kept), then
``ablations.json``, ``ablations.png`` and a section of ``report.md`` are written.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stepdpo.experiments.arms import problem_sets
from stepdpo.experiments.common import (
    ABLATED,
    ARM_DATA,
    ARMS,
    LABELS,
    DemoConfig,
    mean_ci,
    train_config,
)
from stepdpo.experiments.sampler import evaluate_model
from stepdpo.options import option
from stepdpo.progress import Bar
from stepdpo.recordio import AppendWriter, read_records, write_records
from stepdpo.records import Problem, StepPair, content_id
from stepdpo.text.steps import split_steps

METHODS = ABLATED
DPO, GAP = "dpo_shared_prefix", "step_dpo_minus_dpo_shared_prefix"
FILES = {m: ARM_DATA[m] for m in METHODS}
ERROR_SUBSETS = ("last_step", "mid_chain")


@dataclass
class AblateConfig:
    """Options of ``stepdpo ablate``."""

    demo: str = option("runs/demo", "A finished `stepdpo demo` output folder; results go there too.")
    fractions: list[float] = option([0.25, 0.5], "Shares of the errors to train on (the demo trains on all).")
    betas: list[float] = option([0.1, 1.0], "Values of beta (each arm's picked beta is the baseline).")
    epochs: list[float] = option([1.0, 6.0], "Numbers of epochs (the demo's is the baseline).")
    errors: list[str] = option(
        list(ERROR_SUBSETS),
        "Error subsets: last_step (the first wrong step is the solution's last), mid_chain (steps follow it).",
        choices=ERROR_SUBSETS,
    )
    seeds: list[int] | None = option(None, "Seeds to run, comma-separated (default: the demo's).")
    keep_models: bool = option(False, "Keep each run's model folder (by default only its logs and results stay).")


def error_position(pair: StepPair) -> tuple[int, int]:
    """``(k, n)``: the first step where ``full_chosen`` and ``full_rejected`` part, and the number
    of steps of the rejected solution. Works on step pairs and whole-solution pairs alike."""
    _, chosen, rejected = _full_steps(pair)
    k = 1
    while k <= min(len(chosen), len(rejected)) and chosen[k - 1] == rejected[k - 1]:
        k += 1
    return k, len(rejected)


def _full_steps(pair: StepPair) -> tuple[str, list[str], list[str]]:
    """Prior steps + chosen and prior steps + rejected, as steps (``full_*`` may be absent)."""
    prior = pair.initial_reason_steps or ""
    full_c = pair.full_chosen if pair.full_chosen is not None else prior + pair.chosen
    full_r = pair.full_rejected if pair.full_rejected is not None else prior + pair.rejected
    return full_r, split_steps(full_c)[1], split_steps(full_r)[1]


def error_kind(reason: str) -> str:
    """A checker's reason (``tasks.arithmetic.check_solution``) as a kind of error."""
    if reason.startswith("arithmetic"):
        return "arithmetic slip"
    if reason.startswith("expected"):
        return "wrong operand or operation"
    if "answer" in reason or "stops" in reason or "extra step" in reason:
        return "answer or stopping"
    return "unreadable step"


def select(pairs: list[StepPair], factor: str, value: Any) -> list[StepPair]:
    """The pairs a run trains on. Shares of the errors are drawn by problem, so DPO and Step-DPO
    see the same errors and a smaller share is a subset of a larger one."""
    if factor == "pairs":
        return [
            p
            for p in pairs
            if int(content_id(p.meta.get("problem_id", p.prompt), "ablate"), 16) % 10_000 < value * 10_000
        ]
    if factor == "errors":
        if value not in ERROR_SUBSETS:
            raise ValueError(f"unknown error subset {value!r}; expected one of {', '.join(ERROR_SUBSETS)}")
        return [p for p in pairs if _in_last_step(p) == (value == "last_step")]
    return pairs


def _in_last_step(pair: StepPair) -> bool:
    k, n = error_position(pair)
    return k >= n


def conditions(cfg: AblateConfig) -> list[tuple[str, Any]]:
    return (
        [("pairs", f) for f in cfg.fractions]
        + [("beta", b) for b in cfg.betas]
        + [("epochs", e) for e in cfg.epochs]
        + [("errors", s) for s in cfg.errors]
    )


def run_ablations(cfg: AblateConfig) -> dict[str, Any]:
    """Train and evaluate every (factor value, method, seed) not yet in ``ablations.jsonl``."""
    from stepdpo.training.trainer import train

    demo = Path(cfg.demo)
    if not (demo / "results.json").exists():
        raise FileNotFoundError(f"{demo / 'results.json'}: run `stepdpo demo --out {demo}` first")
    results = json.loads((demo / "results.json").read_text())
    missing = [m for m in ("sft", *METHODS) if None in results["accuracy"][m]["values"]]
    if missing:
        raise ValueError(
            f"{demo / 'results.json'}: {', '.join(missing)} got no pairs on some seed; the ablations retrain "
            "against every seed's demo run, so rerun the demo with more --collect-problems"
        )
    dcfg = DemoConfig(**results["config"])
    dcfg.out = str(demo)
    seeds = cfg.seeds if cfg.seeds is not None else results["seeds"]
    pairs = {
        (m, s): read_records(demo / f"seed{s}" / "data" / f, "step_pair")[0]
        for m, (f, _) in FILES.items()
        for s in seeds
    }
    log = AppendWriter(demo / "ablations.jsonl", key="id")
    todo = [(c, m, s) for c in conditions(cfg) for m in METHODS for s in seeds if _run_id(c, m, s) not in log.done]
    t0 = time.time()
    held = problem_sets(dcfg, seeds)["test"]
    hp = results["hyperparameters"]
    bar = Bar("ablations", len(todo), unit="run")
    for (factor, value), method, seed in todo:
        fname, fmt = FILES[method]
        data, n = demo / f"seed{seed}" / "data" / fname, len(pairs[method, seed])
        if factor in ("pairs", "errors"):
            chosen = select(pairs[method, seed], factor, value)
            data, n = demo / "ablations" / "data" / f"seed{seed}-{factor}-{value}-{fname}", len(chosen)
            write_records(data, chosen)  # rewritten: the seed's pairs may have changed since
        over = {"epochs": value} if factor == "epochs" else {}
        run = demo / "ablations" / f"{factor}-{value}" / f"seed{seed}" / method
        t = time.time()
        if n < 4:
            raise ValueError(f"{data}: {n} pairs, too few to train on; use a larger share or more problems")
        lr, beta = hp[method]["lr"], value if factor == "beta" else hp[method]["beta"]
        ref_cache = demo / "ref_logps.json"
        model = train(train_config(dcfg, data, fmt, run, seed, lr, beta, ref_cache, **over))["model"]
        acc = evaluate_model(dcfg, model, held[seed], run / "eval")
        if not cfg.keep_models:
            shutil.rmtree(model, ignore_errors=True)
        log.write(
            {
                "id": _run_id((factor, value), method, seed),
                "factor": factor,
                "value": value,
                "method": method,
                "seed": seed,
                "pairs": n,
                "accuracy": acc,
                "seconds": round(time.time() - t, 1),
            }
        )
        bar.update(1)
    bar.close()
    log.close()
    rows = [json.loads(line) for line in (demo / "ablations.jsonl").read_text(encoding="utf-8").splitlines()]
    out = {
        "seeds": seeds,
        "baseline": {"pairs": 1.0, "beta": "picked", "epochs": dcfg.setting["epochs"], "errors": "all"},
        "factors": summarize(rows, results, dcfg, seeds),
        "analysis": analyze(demo, held),
        "config": asdict(cfg),
        "runs": len(rows),
        "run_seconds": round(sum(r["seconds"] for r in rows), 1),  # over every session that added runs
        "wall_s": round(time.time() - t0, 1),  # this session
    }
    (demo / "ablations.json").write_text(json.dumps(out, indent=2) + "\n")
    plot(out, demo / "ablations.png")
    from stepdpo.experiments.ablation_report import section
    from stepdpo.experiments.report import report

    (demo / "report.md").write_text(report(results, section(out)))
    return out


def _run_id(cond: tuple[str, Any], method: str, seed: int) -> str:
    return f"{cond[0]}={cond[1]}/seed{seed}/{method}"


def summarize(rows: list[dict], results: dict, dcfg: DemoConfig, seeds: list[int]) -> dict[str, list[dict]]:
    """Per factor, its values in order (the demo's own runs as the baseline value; for beta each
    arm's picked one): accuracy of each method and Step-DPO minus shared-prefix DPO, mean and 95 %
    interval over seeds."""
    demo_acc = {m: dict(zip(results["seeds"], results["accuracy"][m]["values"])) for m in ("sft", *METHODS)}
    base = {"pairs": 1.0, "beta": "picked", "epochs": dcfg.setting["epochs"], "errors": "all"}
    out: dict[str, list[dict]] = {}
    for factor, default in base.items():
        values = [default] + sorted(
            {r["value"] for r in rows if r["factor"] == factor} - {default}, key=lambda v: (isinstance(v, str), v)
        )
        entries = []
        for v in values:
            acc: dict[str, dict[int, float]] = {m: {} for m in METHODS}
            npairs: dict[str, list[int]] = {m: [] for m in METHODS}
            for m in METHODS:
                if v == default:
                    acc[m] = {s: demo_acc[m][s] for s in seeds if s in demo_acc[m]}
                    npairs[m] = [n for s, n in zip(results["seeds"], results["pairs"][m]) if s in seeds]
                for r in rows:
                    if r["factor"] == factor and r["value"] == v and r["method"] == m and r["seed"] in seeds:
                        acc[m][r["seed"]] = r["accuracy"]
                        npairs[m].append(r["pairs"])
            common = sorted(set(acc[DPO]) & set(acc["step_dpo"]))
            if not common:
                continue
            sft = [demo_acc["sft"][s] for s in common]
            mean_pairs = {m: round(statistics.fmean(n)) for m, n in npairs.items() if n}
            entry = {"value": v, "baseline": v == default, "seeds": common, "pairs": mean_pairs}
            for m in METHODS:
                entry[m] = mean_ci([acc[m][s] for s in common])
                entry[f"{m}_gain"] = mean_ci([acc[m][s] - b for s, b in zip(common, sft)])
            entry[GAP] = mean_ci([acc["step_dpo"][s] - acc[DPO][s] for s in common])
            entries.append(entry)
        out[factor] = entries
    return out


def analyze(demo: Path, held: dict[int, list[Problem]]) -> dict[str, Any]:
    """What needs no training: where the pairs' errors sit, how many completion tokens follow
    them, and which errors each model still makes on the held-out problems (pooled over seeds)."""
    from stepdpo.models import load_tokenizer
    from stepdpo.tasks.arithmetic import check_solution

    tok = load_tokenizer("default")
    data = [demo / f"seed{s}" / "data" for s in held]
    meta = {p.id: p.meta for d in data for p in read_records(d / "problems.jsonl", "problem")[0]}
    pairs_info = {}
    for m, (fname, _) in FILES.items():
        pairs = [p for d in data for p in read_records(d / fname, "step_pair")[0]]
        pos = [error_position(p) for p in pairs]
        kinds = Counter()
        after, shared = [], []
        for p in pairs:
            pid = p.meta.get("problem_id")
            if pid in meta:
                problem = Problem(id=pid, problem=p.prompt, answer=p.answer or "", meta=meta[pid])
                res = check_solution(problem, _full_steps(p)[0])
                kinds[error_kind(res.message) if res.first_error_step else "none found"] += 1
            # the completions the loss sees: their common leading steps cancel, the rest follows step k
            cs, rs = split_steps(p.chosen)[1], split_steps(p.rejected)[1]
            j = 0
            while j < min(len(cs), len(rs)) and cs[j] == rs[j]:
                j += 1
            ntok = lambda steps: sum(len(tok(x, add_special_tokens=False)["input_ids"]) for x in steps)
            after.append(ntok(cs[j + 1 :]) + ntok(rs[j + 1 :]))
            shared.append(2 * ntok(cs[:j]))
        pairs_info[m] = {
            "pairs": len(pairs),
            "last_step_share": sum(k >= n for k, n in pos) / max(len(pos), 1),
            "mean_first_error_step": statistics.fmean(k for k, _ in pos) if pos else 0.0,
            "mean_steps": statistics.fmean(n for _, n in pos) if pos else 0.0,
            "mean_tokens_after_step_k": statistics.fmean(after) if after else 0.0,
            "mean_shared_tokens": statistics.fmean(shared) if shared else 0.0,
            "error_kinds": dict(kinds.most_common()),
        }
    return {"pairs": pairs_info, "heldout_errors": heldout_errors(demo, held)}


def heldout_errors(demo: Path, held: dict[int, list[Problem]]) -> dict[str, Any]:
    """Per model, pooled over the seeds' held-out problems ``held``: accuracy by number of
    operations, and the first errors still made, by kind and by position (first step, middle,
    last step)."""
    from stepdpo.tasks.arithmetic import check_solution

    probs = {s: {p.id: p for p in problems} for s, problems in held.items()}
    out: dict[str, Any] = {}
    for m in ARMS:
        by_len: dict[int, list[int]] = {}
        kinds, where = Counter(), Counter()
        for s in held:
            path = demo / f"seed{s}" / f"eval-{m}" / "greedy" / "results.jsonl"
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                r = json.loads(line)
                p = probs[s].get(r["id"])
                if p is None:
                    continue
                n = len(p.meta["ops"])
                sample = r["samples"][0]
                by_len.setdefault(n, []).append(int(sample["correct"]))
                if not sample["correct"]:
                    res = check_solution(p, sample["completion"])
                    k = res.first_error_step or n
                    kinds[error_kind(res.message) if res.first_error_step else "answer or stopping"] += 1
                    where["first step" if k == 1 else "last step" if k >= n else "middle"] += 1
        if by_len:
            out[m] = {
                "accuracy_by_steps": {n: statistics.fmean(v) for n, v in sorted(by_len.items())},
                "errors_by_kind": dict(kinds.most_common()),
                "errors_by_position": dict(where),
            }
    return out


def plot(res: dict[str, Any], path: Path) -> None:
    """One panel per factor: held-out accuracy of DPO and Step-DPO with 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    factors = [f for f in ("pairs", "beta", "epochs", "errors") if res["factors"].get(f)]
    fig, axes = plt.subplots(1, len(factors), figsize=(3.2 * len(factors), 3.0), squeeze=False)
    titles = {"pairs": "share of errors", "beta": "beta", "epochs": "epochs", "errors": "errors trained on"}
    for ax, f in zip(axes[0], factors):
        entries = res["factors"][f]
        if f != "errors":
            entries = sorted(entries, key=lambda e: (not isinstance(e["value"], str), e["value"]))
        xs = list(range(len(entries)))
        for j, m in enumerate(METHODS):
            ys = [100 * e[m]["mean"] for e in entries]
            lo = [100 * (e[m]["mean"] - (e[m]["ci95"] or [e[m]["mean"]] * 2)[0]) for e in entries]
            hi = [100 * ((e[m]["ci95"] or [e[m]["mean"]] * 2)[1] - e[m]["mean"]) for e in entries]
            ax.errorbar(
                [x + (j - 0.5) * 0.12 for x in xs],
                ys,
                yerr=[lo, hi],
                marker="o",
                capsize=3,
                label=LABELS[m].replace("SFT + ", ""),
                color=f"C{j}",
                linestyle="none" if f == "errors" else "-",
            )  # subsets are not a scale
        ax.set_xticks(xs, [str(e["value"]) + ("*" if e["baseline"] else "") for e in entries])
        ax.set_title(titles[f], fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out accuracy (%)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Ablations (* = the demo's setting; mean and 95 % interval over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
