"""Localization and sampling benchmark on the embedded default (tiny model, synthetic task).

Ground truth is the task's exact step checker. Measures:
- first_error_accuracy: how often the rollout judge (binary search) finds the checker's first
  wrong step, over the errors it locates, with its 95 % (Wilson) interval; coverage: the share it
  locates (it abstains where the model never solves the problem from scratch); and the accuracy
  counting abstentions as wrong;
- rollout_ratio: rollouts spent by the judge as shipped (binary search with the reuse refinement)
  / by Math-Shepherd's linear scan (i = 1, 2, ... until the first unrecoverable prefix, no reuse)
  at the same m, same early stopping; also the ratio of the plain searches (both without reuse),
  of both with reuse, and against the full per-step scan (default task only); and what a perfect
  oracle would spend on the same solutions: the binary/linear ratio that their error positions
  allow, a lower bound for any search that checks both k-1 and k (a success at k-1, a failure at
  k; reusing the bare problem's check can save the first), and the ratio on longer chains;
- recoverability: whether "some continuation reaches the answer" tracks step correctness for this
  model at all (a probe with many continuations after every prefix), and so the best accuracy any
  rollout judge can reach here; the same scan when "recoverable" needs more than one success
  (a count, or a share of the bare problem's successes R(0)); and among the continuations that
  reach the answer after a wrong prefix, how many first read the wrong value written (so a
  second, compensating error follows);
- a slip probe: held-out solution prefixes whose last step misstates its result; whether the
  model's next step reads the wrong value, and how often its continuations still reach the answer;
- with --sweep, binary search at other rollout temperatures and m (accuracy, coverage, cost);
- sampling throughput of collect and rectify (generated tokens per second), and what encoding the
  prompt once for n samples saves against copying it n times (time and prefill tokens).

    python benchmarks/localization.py [--task default|long] [--quick] [--m 8] [--temperature T] [--sweep 0.3:8]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stepdpo.generation import SamplingConfig
from stepdpo.generation.hf import HFGenerator
from stepdpo.models import load_model, load_tokenizer
from stepdpo.problems import load_problems
from stepdpo.stages.collect import CollectConfig, collect_chunk
from stepdpo.stages.locate.rollout import RolloutJudge
from stepdpo.stages.locate.verifier import VerifierJudge
from stepdpo.stages.rectify import RectifyConfig, rectify_chunk
from stepdpo.tasks.arithmetic import EQUATION, running_values
from stepdpo.text.prompts import generation_prompt
from stepdpo.text.steps import split_steps


def oracle_checks(k: int, n: int, search: str, success: float, failure: float) -> float:
    """Rollouts a search would spend on a solution with first error k of n steps if every check
    were answered right (R(i) true exactly for i < k), a success costing ``success`` rollouts and
    a failure ``failure``. With ``search="bound"``: the cost of the certificate alone (a success at
    k-1 and a failure at k), which no search that checks both can go below."""
    if search == "bound":
        return success * (k > 1) + failure * (k < n)
    cost, lo, hi = 0.0, 0, n
    if search == "binary":
        while hi - lo > 1:
            i = (lo + hi) // 2
            cost += success if i < k else failure
            lo, hi = (i, hi) if i < k else (lo, i)
        return cost
    for i in range(1, n):
        cost += success if i < k else failure
        if i >= k and search == "linear":
            break
    return cost


def oracle_figures(kn: list[tuple[int, int]], m: int) -> dict:
    """Search costs with a perfect oracle: on these solutions, and on longer chains."""
    s, f = (m + 1) // 2, m  # early stopping: a success after the first half, a failure after all m
    total = {q: sum(oracle_checks(k, n, q, s, f) for k, n in kn) for q in ("binary", "linear", "full", "bound")}
    longer = {}
    for n in (8, 16, 32, 64):  # the first error uniform over the n steps
        b, lin = (sum(oracle_checks(k, n, q, s, f) for k in range(1, n + 1)) for q in ("binary", "linear"))
        longer[str(n)] = b / lin
    return {
        "binary_over_linear": total["binary"] / total["linear"],
        "binary_over_full": total["binary"] / total["full"],
        "any_search_over_linear_lower_bound": total["bound"] / total["linear"],
        "binary_over_linear_by_chain_length_uniform_errors": longer,
    }


def recoverability_probe(
    gen, tok, sols, truth, m: int, temperature: float, seed: int, values: dict, max_new_tokens: int = 200
) -> dict:
    """Does recoverability track correctness for this model? Samples m continuations after every
    prefix s1..si (i = 0..n-1) of each solution, with no early stopping, and reports: how often a
    correct prefix (i < k) gets no success, how often a wrong one (i >= k) gets one, the accuracy a
    full scan would have at smaller m (drawing m of the probe's continuations), and the best
    accuracy any judge deciding by "at least one success" can reach at this m or more: where the
    prefix that ends with the wrong step already leads to the answer, such a judge places the
    error later than the checker however many rollouts it draws. ``values`` maps a problem text to
    its true running values, to classify how each success after a wrong prefix gets back on track."""
    from math import comb

    from stepdpo.text.grading import grade

    queries = [(s, i) for s in sols for i in range(len(s.steps))]
    cfg = SamplingConfig(n=m, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + 77)
    wins: dict[str, list[int]] = {s.id: [0] * len(s.steps) for s in sols}
    recovered = reads_written = 0  # successes after a wrong prefix; those whose next step reads the wrong value
    kinds: dict[str, int] = {}  # how those successes get back to the true running value
    for a in range(0, len(queries), 32):
        part = queries[a : a + 32]
        prompts = [generation_prompt(s.problem, s.steps[:i], tokenizer=tok) for s, i in part]
        for (s, i), (_, primer), comps in zip(part, prompts, gen.generate([p for p, _ in prompts], cfg)):
            good = [c.text for c in comps if grade(primer + c.text, s.answer)]
            wins[s.id][i] = len(good)
            if i >= truth[s.id] and good:
                recovered += len(good)
                reads_written += sum(_reads(t, written_value(s.steps[i - 1])) for t in good)
                for t in good:
                    kind = compensation_kind(s.steps[:i] + split_steps(primer + t)[1], i, values[s.problem])
                    kinds[kind] = kinds.get(kind, 0) + 1

    def p_none(w: int, draws: int) -> float:  # drawing `draws` of the m continuations, no success among them
        return comb(m - w, draws) / comb(m, draws) if draws <= m - w else 0.0

    solvable = [s for s in sols if wins[s.id][0] > 0]
    ok_zero = ok_all = bad_win = bad_all = never = 0
    by_m = {d: 0.0 for d in (4, 8, 16, 32) if d <= m}
    for s in solvable:
        k, n, w = truth[s.id], len(s.steps), wins[s.id]
        ok_zero += sum(w[i] == 0 for i in range(1, k))
        ok_all += k - 1
        bad_win += sum(w[i] > 0 for i in range(k, n))
        bad_all += n - k
        never += k < n and w[k] > 0
        for d in by_m:
            p = 1.0
            for i in range(1, k):
                p *= 1 - p_none(w[i], d)
            by_m[d] += p * (p_none(w[k], d) if k < n else 1.0)
    ns = max(1, len(solvable))

    def scan(recoverable) -> float:  # full-scan accuracy at the probe's m with another recoverability rule
        right = 0
        for s in solvable:
            w = wins[s.id]
            right += next((i for i in range(1, len(w)) if not recoverable(w[i], w[0])), len(w)) == truth[s.id]
        return right / ns

    rules = {
        "at_least_1": scan(lambda w, w0: w >= 1),
        "at_least_2": scan(lambda w, w0: w >= 2),
        "at_least_4": scan(lambda w, w0: w >= 4),
        "at_least_quarter_of_R0": scan(lambda w, w0: w >= w0 / 4),
        "at_least_half_of_R0": scan(lambda w, w0: w >= w0 / 2),
    }
    return {
        "solutions": len(sols),
        "m": m,
        "solvable_share": len(solvable) / max(1, len(sols)),
        "correct_prefixes_with_no_success": ok_zero / max(1, ok_all),
        "wrong_prefixes_with_a_success": bad_win / max(1, bad_all),
        "full_scan_accuracy_by_m": {str(d): v / ns for d, v in by_m.items()},
        "accuracy_upper_bound_at_m_or_more": 1 - never / ns,
        "full_scan_accuracy_by_rule": rules,
        "recoveries_whose_next_step_reads_the_wrong_value": reads_written / max(1, recovered),
        "recoveries_by_kind": {k: v / max(1, recovered) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
    }


def compensation_kind(steps: list[str], i: int, values: list[int]) -> str:
    """How a solution whose prefix s1..si is wrong gets back to the true running value: at the
    first later step that writes the true value, that step
    - ``arithmetic_error``: computes on the wrong value and errs onto the true result;
    - ``reads_true_value``: takes the true running value as operand, not the value written before;
    - ``inexact_division``: divides a wrong value that the divisor does not divide;
    - ``other``: anything else (e.g. no later step writes the true value, the answer alone does).
    ``values`` are the true running values (:func:`running_values`)."""
    for j in range(i + 1, min(len(steps), len(values) - 1) + 1):
        eq = EQUATION.findall(steps[j - 1])
        if not eq or int(eq[-1][3]) != values[j]:
            continue
        a, sym, b = int(eq[-1][0]), eq[-1][1], int(eq[-1][2])
        if a == values[j - 1]:
            return "reads_true_value"
        if sym in "/÷" and b and a % b:
            return "inexact_division"
        return "arithmetic_error"
    return "other"


def written_value(step: str) -> int | None:
    """The result a step wrote (its last "x op b = y")."""
    eqs = EQUATION.findall(step)
    return int(eqs[-1][3]) if eqs else None


def _reads(text: str, value: int | None) -> bool:
    """Whether the first equation of ``text`` takes ``value`` as an operand."""
    eq = EQUATION.search(text)
    return value is not None and eq is not None and value in (int(eq.group(1)), int(eq.group(3)))


def slip_probe(gen, tok, n: int, m: int, temperature: float, seed: int, task: dict) -> dict:
    """Does the model carry forward a value it wrote, or recompute it from the problem? Held-out
    problems get a solution prefix whose last step misstates its result (``slipped_solution``),
    and the model continues: how often its next step reads the wrong value (greedy), and how often
    a sampled continuation still reaches the gold answer, which then takes a second, compensating
    error."""
    import random

    from stepdpo.tasks.arithmetic import slipped_solution
    from stepdpo.text.grading import grade

    rng = random.Random(seed)
    cases = []
    for p in load_problems(task["data"], split="test", limit=n, seed=9000 + seed):
        k = rng.randint(1, len(p.meta["ops"]) - 1)
        steps = slipped_solution(p, k, rng.choice([-10, -3, -2, -1, 1, 2, 3, 10]))
        if steps is not None:
            cases.append((p, steps[:k]))
    prompts = [generation_prompt(p.problem, before, tokenizer=tok) for p, before in cases]
    greedy = gen.generate(
        [q for q, _ in prompts], SamplingConfig(n=1, temperature=0.0, max_new_tokens=task["max_new_tokens"])
    )
    sampled = gen.generate(
        [q for q, _ in prompts],
        SamplingConfig(n=m, temperature=temperature, max_new_tokens=task["max_new_tokens"], seed=seed + 5),
    )
    reads = sum(_reads(g[0].text, written_value(before[-1])) for (_, before), g in zip(cases, greedy))
    gold = [
        sum(bool(grade(primer + c.text, p.answer)) for c in comps)
        for (p, _), (_, primer), comps in zip(cases, prompts, sampled)
    ]
    return {
        "prefixes": len(cases),
        "next_step_reads_the_wrong_value": reads / max(1, len(cases)),
        "continuations_reaching_gold": sum(gold) / max(1, m * len(cases)),
        "prefixes_with_a_continuation_reaching_gold": sum(g > 0 for g in gold) / max(1, len(cases)),
    }


def run_judge(
    gen, sols, truth, search: str, m: int, temperature: float, seed: int, reuse: bool = True, max_new_tokens: int = 200
) -> dict:
    """Locate the first error of every solution with the rollout judge; score it against the checker."""
    judge = RolloutJudge(
        gen, m=m, temperature=temperature, max_new_tokens=max_new_tokens, search=search, seed=seed, reuse=reuse
    )
    done, secs = timed(lambda: [e for i in range(0, len(sols), 64) for e in judge.locate(sols[i : i + 64])])
    located = [e for e in done if e.first_error_step is not None]
    right = sum(e.first_error_step == truth[e.solution.id] for e in located)
    early = sum(e.first_error_step < truth[e.solution.id] for e in located)
    n = max(1, len(located))
    return {
        "first_error_accuracy": right / n,
        "first_error_accuracy_ci95": wilson(right, len(located)),
        "located": len(located),
        "coverage": len(located) / len(done),
        "placed_too_early": early / n,
        "placed_too_late": (len(located) - right - early) / n,
        "accuracy_counting_abstentions_wrong": right / len(done),
        # each solution's search, and each problem's R(0) check once (every record of it names its cost)
        "rollouts_per_solution": (
            sum(e.evidence["rollouts"] for e in done)
            + sum({e.solution.problem: e.evidence.get("root_rollouts", 0) for e in done}.values())
        )
        / len(done),
        "seconds": secs,
    }


def wilson(hits: int, n: int, z: float = 1.96) -> list[float]:
    """The 95 % Wilson score interval of a proportion ``hits / n``."""
    if n == 0:
        return [0.0, 1.0]
    p = hits / n
    mid, half = p + z * z / (2 * n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return [max(0.0, (mid - half) / (1 + z * z / n)), min(1.0, (mid + half) / (1 + z * z / n))]


def describe(run: dict) -> str:
    lo, hi = run["first_error_accuracy_ci95"]
    return (
        f"accuracy {run['first_error_accuracy']:.3f} [{lo:.2f}, {hi:.2f}] on the {run['located']} located "
        f"(coverage {run['coverage']:.2f}; too early {run['placed_too_early']:.2f}, too late {run['placed_too_late']:.2f}), "
        f"{run['rollouts_per_solution']:.1f} rollouts per solution, {run['seconds']:.0f} s"
    )


def timed(fn):
    t = time.time()
    out = fn()
    return out, time.time() - t


TASKS = {  # problems, policy, tokens per sampled solution, collect temperature and top_p, rollout
    # temperature; default and --quick sizes: problems, solutions searched, solutions in the
    # recoverability probe (few on long chains: 32 continuations after each of 20 prefixes), problems
    # in the slip probe; the searches run, as (search, reuse). The long-chain model's slips are rare
    # tokens that top_p 0.95 cuts off: it collects with top_p 1 and is checked with rollouts at
    # temperature 0.5, where a slip and a second one that cancels it are rare (see the README).
    "default": {
        "data": "synthetic",
        "model": "default",
        "max_new_tokens": 200,
        "collect_temperature": 0.8,
        "collect_top_p": 0.95,
        "rollout_temperature": 1.0,
        "sizes": (400, 300, 100, 300),
        "quick": (120, 80, 30, 100),
        "searches": [("binary", True), ("linear", True), ("full", True), ("binary", False), ("linear", False)],
    },
    "long": {
        "data": "synthetic-long",
        "model": "default-long",
        "max_new_tokens": 400,
        "collect_temperature": 1.0,
        "collect_top_p": 1.0,
        "rollout_temperature": 0.5,
        "sizes": (300, 200, 10, 100),
        "quick": (60, 50, 0, 30),
        "searches": [("binary", True), ("linear", True), ("binary", False), ("linear", False)],
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--task",
        choices=TASKS,
        default="default",
        help="default: the embedded task (3 to 6 steps) and model; long: its long-chain form (20 steps) "
        "and the model SFT'd on it",
    )
    ap.add_argument("--quick", action="store_true", help="fewer problems; finishes in a few minutes on 2 cores")
    ap.add_argument("--problems", type=int, default=None)
    ap.add_argument("--m", type=int, default=8, help="rollouts per prefix check")
    ap.add_argument("--max-solutions", type=int, default=None)
    ap.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="rollout temperature (default: the task's, 1.0 on default, 0.5 on long)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--probe-solutions", type=int, default=None, help="solutions in the recoverability probe")
    ap.add_argument("--probe-m", type=int, default=32, help="continuations per prefix in the probe")
    ap.add_argument("--sweep", default="", help="more binary-search runs, as TEMPERATURE:M,... (e.g. 0.3:8,0.3:32)")
    ap.add_argument("--slip-problems", type=int, default=None, help="held-out problems in the slip probe")
    ap.add_argument(
        "--model", default=None, help="the policy: collects, locates, rectifies (default: the task's embedded model)"
    )
    ap.add_argument(
        "--completer", default=None, help="model that samples the probe's continuations (default: the policy itself)"
    )
    args = ap.parse_args()
    try:
        points = [(float(p.split(":")[0]), int(p.split(":")[1])) for p in args.sweep.split(",") if p.strip()]
    except (ValueError, IndexError):
        ap.error(f"--sweep {args.sweep!r}: expected TEMPERATURE:M pairs, e.g. 0.3:8,0.3:32")
    task = TASKS[args.task]
    args.model = args.model or task["model"]
    sizes = dict(
        zip(("problems", "max_solutions", "probe_solutions", "slip_problems"), task["quick" if args.quick else "sizes"])
    )
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.temperature is None:
        args.temperature = task["rollout_temperature"]
    max_new = task["max_new_tokens"]
    model, tok = load_model(args.model, dtype="fp32", device="cpu"), load_tokenizer(args.model)
    gen = HFGenerator(model, tok, batch_size=128)
    problems = load_problems(task["data"], split="train", limit=args.problems, seed=4242 + args.seed)

    # error collection, and its sampling throughput
    ccfg = CollectConfig(
        k=4,
        temperature=task["collect_temperature"],
        top_p=task["collect_top_p"],
        max_new_tokens=max_new,
        seed=args.seed,
    )
    before = dict(gen.stats)
    results, t_collect = timed(
        lambda: [r for i in range(0, len(problems), 32) for r in collect_chunk(gen, problems[i : i + 32], ccfg)]
    )
    collect_tokens = gen.stats["generated_tokens"] - before["generated_tokens"]
    wrong = [s for r in results for s in r.records]
    truth = {e.solution.id: e.first_error_step for e in VerifierJudge().locate(wrong)}
    sols = [s for s in wrong if truth[s.id] is not None][: args.max_solutions]
    by_step = {str(k): sum(truth[s.id] == k for s in sols) for k in sorted({truth[s.id] for s in sols})}
    print(
        f"collect: {len(problems)} problems x 4 samples, {len(wrong)} wrong, {len(sols)} used; "
        f"{collect_tokens / t_collect:.0f} tokens/s; first errors by step: "
        + ", ".join(f"{k}: {v}" for k, v in by_step.items()),
        flush=True,
    )

    # rollout localization: binary search against linear scans, same m, with and without reuse
    runs = {}
    for search, reuse in task["searches"]:
        name = search + ("" if reuse else "/plain")
        runs[name] = run_judge(gen, sols, truth, search, args.m, args.temperature, args.seed, reuse, max_new)
        print(f"rollout/{name}: " + describe(runs[name]), flush=True)
    cost = {k: v["rollouts_per_solution"] for k, v in runs.items()}
    ratio = cost["binary"] / cost["linear/plain"]
    ratio_plain, ratio_reuse = cost["binary/plain"] / cost["linear/plain"], cost["binary"] / cost["linear"]
    print(
        f"rollouts per solution, binary search (as shipped) / Math-Shepherd's linear scan: {ratio:.2f}; "
        f"plain binary / plain linear {ratio_plain:.2f}; both with reuse {ratio_reuse:.2f}",
        flush=True,
    )
    sweep = []
    for temp, m in points:
        row = {"temperature": temp, "m": m, **run_judge(gen, sols, truth, "binary", m, temp, args.seed, True, max_new)}
        sweep.append(row)
        print(f"rollout/binary at temperature {temp}, m {m}: " + describe(row), flush=True)
    # the same searches with a perfect oracle: what the error positions alone allow
    oracle = oracle_figures([(truth[s.id], len(s.steps)) for s in sols], args.m)
    print(
        f"perfect oracle on these solutions: binary/linear {oracle['binary_over_linear']:.2f}; a search checking "
        f"k-1 and k spends at least {oracle['any_search_over_linear_lower_bound']:.2f} of the linear scan; binary/linear with uniform "
        "errors on longer chains: "
        + ", ".join(
            f"{n} steps {r:.2f}" for n, r in oracle["binary_over_linear_by_chain_length_uniform_errors"].items()
        ),
        flush=True,
    )
    completer = gen
    if args.completer:
        completer = HFGenerator(
            load_model(args.completer, dtype="fp32", device="cpu"), load_tokenizer(args.completer), batch_size=128
        )
    probe = None
    if args.probe_solutions:
        probe, t_probe = timed(
            lambda: recoverability_probe(
                completer,
                completer.tokenizer,
                sols[: args.probe_solutions],
                truth,
                args.probe_m,
                args.temperature,
                args.seed,
                {p.problem: running_values(p.meta) for p in problems},
                max_new,
            )
        )
        probe["completer"] = args.completer or args.model
        print(
            f"recoverability probe ({probe['solutions']} solutions, m={args.probe_m}, {t_probe:.0f} s): correct "
            f"prefixes with no success {probe['correct_prefixes_with_no_success']:.2f}, wrong prefixes with a "
            f"success {probe['wrong_prefixes_with_a_success']:.2f}; full-scan accuracy by m "
            + ", ".join(f"{d}: {a:.2f}" for d, a in probe["full_scan_accuracy_by_m"].items())
            + f"; upper bound at m >= {args.probe_m}: {probe['accuracy_upper_bound_at_m_or_more']:.2f}; full scan "
            f"at m = {args.probe_m}, a prefix recoverable with successes "
            + ", ".join(
                f"{label} {a:.2f}"
                for label, a in zip(
                    (">= 1:", ">= 2:", ">= 4:", ">= R(0)/4:", ">= R(0)/2:"),
                    probe["full_scan_accuracy_by_rule"].values(),
                )
            )
            + "; of its "
            f"successes after a wrong prefix, {probe['recoveries_whose_next_step_reads_the_wrong_value']:.2f} read "
            "the wrong value first; they get back to the true running value by "
            + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in probe["recoveries_by_kind"].items()),
            flush=True,
        )
    slips, t_slips = timed(lambda: slip_probe(gen, tok, args.slip_problems, 16, args.temperature, args.seed, task))
    print(
        f"slip probe ({slips['prefixes']} held-out prefixes ending in a wrong result, {t_slips:.0f} s): the next "
        f"step reads the wrong value {slips['next_step_reads_the_wrong_value']:.2f} (greedy); continuations reaching "
        f"the gold answer {slips['continuations_reaching_gold']:.3f}, prefixes with one of 16 reaching it "
        f"{slips['prefixes_with_a_continuation_reaching_gold']:.2f}",
        flush=True,
    )
    # rectification throughput
    from stepdpo.records import LocatedError

    errs = [LocatedError(s, truth[s.id], "verifier") for s in sols[:64]]
    before = dict(gen.stats)
    _, t_rect = timed(
        lambda: list(rectify_chunk(gen, errs, RectifyConfig(n=8, max_new_tokens=max_new, seed=args.seed)))
    )
    rect_tokens = gen.stats["generated_tokens"] - before["generated_tokens"]

    # prompt encoded once for n samples, against copied n times
    prompts = [generation_prompt(p.problem)[0] for p in problems[:32]]
    cfg = SamplingConfig(n=8, temperature=0.8, max_new_tokens=40, seed=1)
    shared = HFGenerator(model, tok, batch_size=256)
    copied = HFGenerator(model, tok, batch_size=256, share_prompt=False)
    timings = {"shared": [], "copied": []}
    for _ in range(3):  # alternate, keep the best of each
        for name, g in (("shared", shared), ("copied", copied)):
            timings[name].append(timed(lambda g=g: g.generate(prompts, cfg))[1])
    share = {
        "shared_s": min(timings["shared"]),
        "copied_s": min(timings["copied"]),
        "prefill_tokens_shared": shared.stats["prefill_tokens"] // 3,
        "prefill_tokens_copied": copied.stats["prefill_tokens"] // 3,
    }
    share["time_saved_fraction"] = 1 - share["shared_s"] / share["copied_s"]
    share["prefill_saved_fraction"] = 1 - share["prefill_tokens_shared"] / share["prefill_tokens_copied"]

    result = {
        "task": args.task,
        "model": args.model,
        "solutions": len(sols),
        "m": args.m,
        "first_error_accuracy": runs["binary"]["first_error_accuracy"],
        "first_error_accuracy_ci95": runs["binary"]["first_error_accuracy_ci95"],
        "coverage": runs["binary"]["coverage"],
        "accuracy_counting_abstentions_wrong": runs["binary"]["accuracy_counting_abstentions_wrong"],
        "rollout_ratio": ratio,
        "rollout_ratio_plain_searches": ratio_plain,
        "rollout_ratio_both_with_reuse": ratio_reuse,
        "rollout_ratio_vs_full_scan": cost["binary"] / cost["full"] if "full" in cost else None,
        "rollouts_per_solution": cost,
        "oracle": oracle,
        "recoverability": probe,
        "slip_probe": slips,
        "rollout_temperature": args.temperature,
        "sweep": sweep,
        "first_error_step_mean": sum(truth[s.id] for s in sols) / len(sols),
        "steps_mean": sum(len(s.steps) for s in sols) / len(sols),
        "first_error_steps": by_step,
        "accuracy_by_search": {k: v["first_error_accuracy"] for k, v in runs.items()},
        "placed_too_early": runs["binary"]["placed_too_early"],
        "placed_too_late": runs["binary"]["placed_too_late"],
        "collect_tokens_per_s": collect_tokens / t_collect,
        "rectify_tokens_per_s": rect_tokens / t_rect,
        "prompt_sharing": share,
        "goals": {
            "first_error_accuracy>=0.90": runs["binary"]["first_error_accuracy"] >= 0.90,
            "rollout_ratio<=0.5": ratio <= 0.5,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
