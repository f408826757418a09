"""The demo's primary comparison, declared before any arm is scored and tested on every seed's
per-problem outcomes at once.

Within a seed both arms answer the same held-out problems, so the comparison is paired: only the
problems one arm solves and the other does not (the discordant ones) carry information (McNemar).
Across seeds the exact test pools the discordant pairs, b (arm A right, B wrong) and c (the
reverse): under the null of no difference every discordant problem is a fair coin whatever its
seed, so b given b + c is Binomial(b + c, 1/2), the exact conditional test of the stratified
(Mantel-Haenszel) matched-pairs design. The interval is a two-level bootstrap (seeds, then problems
within each drawn seed), so that it covers the randomness of the whole pipeline per seed as well
as of the test problems. The t interval over per-seed differences stays the secondary reading.

The smallest detectable effect is computed from the design alone, before the outcome: with N
paired problems in all and a discordant share q, the pooled sign test at two-sided level alpha has
power 1 - beta against a difference d in accuracy when d >= (z(1 - alpha/2) + z(1 - beta)) * sqrt(q / N).
Declared, q is 1/2, the most two arms' outcomes disagree by chance (2 p (1 - p) at p = 1/2, arms
with independent errors), unless a planning value measured before the run is given (the upper end
of a pilot's interval on validation problems, with its source): the figure claims no more power
than the evidence before the outcome allows. Scored, the same formula at the discordance observed
is reported beside it, marked as read afterwards.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

Outcomes = list[list[int]]
"""Per seed, one 0/1 per held-out problem, in the same problem order for both arms."""


def discordant(a: Outcomes, b: Outcomes) -> tuple[int, int]:
    """(problems A solves and B does not, the reverse), summed over seeds."""
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b)):
        raise ValueError("the two arms must have the same seeds and the same problems per seed")
    ab = sum(x and not y for xs, ys in zip(a, b) for x, y in zip(xs, ys))
    ba = sum(y and not x for xs, ys in zip(a, b) for x, y in zip(xs, ys))
    return int(ab), int(ba)


def exact_test(a: Outcomes, b: Outcomes) -> dict[str, Any]:
    """The seed-stratified exact sign test of A against B on the discordant problems (two-sided)."""
    from scipy.stats import binomtest

    ab, ba = discordant(a, b)
    p = binomtest(ab, ab + ba, 0.5).pvalue if ab + ba else 1.0
    return {"a_only": ab, "b_only": ba, "p": float(p)}


def pooled_difference(a: Outcomes, b: Outcomes) -> float:
    """Accuracy of A minus B over every seed's problems, in points."""
    n = sum(len(x) for x in a)
    return 100.0 * (sum(map(sum, a)) - sum(map(sum, b))) / n


def bootstrap_interval(a: Outcomes, b: Outcomes, draws: int = 10_000, seed: int = 0) -> list[float]:
    """95 % percentile interval of :func:`pooled_difference` under a two-level bootstrap: seeds
    drawn with replacement, then each drawn seed's problems with replacement."""
    rng = random.Random(seed)
    diffs = [[x - y for x, y in zip(xs, ys)] for xs, ys in zip(a, b)]
    out = []
    for _ in range(draws):
        total, n = 0, 0
        for _ in diffs:
            d = diffs[rng.randrange(len(diffs))]
            total += sum(d[rng.randrange(len(d))] for _ in d)
            n += len(d)
        out.append(100.0 * total / n)
    out.sort()
    return [out[int(0.025 * draws)], out[min(draws - 1, int(0.975 * draws))]]


def detectable_effect(n: int, discordance: float = 0.5, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference in accuracy, in points, that the pooled test detects with ``power``
    on ``n`` paired problems in all (seeds times problems) at a discordant share ``discordance``."""
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return 100.0 * z * math.sqrt(max(discordance, 1e-9) / n)


def declare(
    arms: tuple[str, str],
    problems: int,
    seeds: int,
    out: Path | None = None,
    planning: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The primary comparison as declared before scoring: its arms, test and detectable effect
    (written to ``out/primary.json`` before any arm is scored, where ``out`` is given).

    ``planning``: ``{"discordance": q, "source": ...}``, a discordant share measured before this
    run (a pilot on validation problems, ``benchmarks/discordance.py``); the declared detectable
    effect is then the one at q, and the one at 1/2 (no pilot) is kept beside it."""
    n = problems * seeds
    declared = {
        "arms": list(arms),
        "test": "seed-stratified exact sign test on the discordant problems (pooled McNemar), two-sided",
        "interval": "two-level bootstrap (seeds, then problems within seeds), 95 %",
        "problems_per_seed": problems,
        "seeds": seeds,
        "detectable_effect_80": round(detectable_effect(n), 2),
        "detectable_effect_assumes": "discordant share 1/2 (the most by chance), alpha 0.05 two-sided, power 0.8",
    }
    if planning:
        q = float(planning["discordance"])
        declared["detectable_effect_80_at_half"] = declared["detectable_effect_80"]
        declared["detectable_effect_80"] = round(detectable_effect(n, q), 2)
        declared["detectable_effect_assumes"] = (
            f"discordant share {q:g} (planned: {planning['source']}), alpha 0.05 two-sided, power 0.8"
        )
    if out is not None:
        import json

        from stepdpo.recordio import atomic_write_text

        atomic_write_text(Path(out) / "primary.json", json.dumps(declared, indent=2) + "\n")
    return declared


def _pooled(
    a_seeds: list[Outcomes | None], b_seeds: list[Outcomes | None], alpha: float = 0.05, design: bool = False
) -> dict[str, Any]:
    """The pooled test of A against B on the seeds where both have outcomes (``seeds_scored``):
    the difference, its two-level bootstrap interval, the exact test, and the detectable effect
    at the discordance observed, at two-sided level ``alpha``; with ``design``, also the one at a
    discordant share of 1/2 (``detectable_effect_80``, from the design alone)."""
    kept = [(x, y) for x, y in zip(a_seeds, b_seeds) if x and y]
    a, b = [x for x, _ in kept], [y for _, y in kept]
    if not a:
        return {"seeds_scored": 0}
    test = exact_test(a, b)
    n = sum(len(x) for x in a)
    return {
        **({"detectable_effect_80": round(detectable_effect(n, 0.5, alpha), 2)} if design else {}),
        "seeds_scored": len(a),
        "difference": round(pooled_difference(a, b), 2),
        "bootstrap_ci95": [round(v, 2) for v in bootstrap_interval(a, b)],
        **test,
        # read afterwards, not declared: the design's power at the discordance these arms showed
        "detectable_effect_80_at_observed_discordance": round(
            detectable_effect(n, (test["a_only"] + test["b_only"]) / n, alpha), 2
        ),
    }


def score(declared: dict[str, Any], outcomes: dict[str, Outcomes]) -> dict[str, Any]:
    """The declared comparison on the arms' per-problem outcomes (seeds where either arm has none
    are left out and counted)."""
    a_name, b_name = declared["arms"]
    return {**declared, **_pooled(outcomes[a_name], outcomes[b_name])}


def secondary(pairs: dict[str, tuple[str, str]], outcomes: dict[str, Outcomes]) -> dict[str, Any]:
    """Every other comparison ``{name: (arm A, arm B)}``, pooled as the primary one is, with the
    Bonferroni correction for how many were looked at: ``p_bonferroni`` (p times that many, at
    most 1) and the detectable effect at level 0.05 over that many, at a discordant share of 1/2
    (from the design) and at the one observed."""
    tests = len(pairs)
    out = {}
    for name, (a, b) in pairs.items():
        r = _pooled(outcomes[a], outcomes[b], 0.05 / tests, design=True)
        if r["seeds_scored"]:
            r["p_bonferroni"] = min(1.0, r["p"] * tests)
        out[name] = {"arms": [a, b], "tests": tests, **r}
    return out


PRIMARY = ("step_dpo", "sft")
"""The demo's primary comparison: Step-DPO against the model it starts from."""


def outcomes_of(folder: Path) -> list[int] | None:
    """Per held-out problem, 1 if its (first) sample was right, from an evaluation's results.jsonl
    (None: the arm was not evaluated on this seed)."""
    import json

    if not (Path(folder) / "results.jsonl").exists():
        return None
    rows = [json.loads(line) for line in (Path(folder) / "results.jsonl").read_text().splitlines()]
    return [int(bool(r["samples"][0]["correct"])) for r in rows]


def primary_section(p: dict[str, Any] | None, labels: dict[str, str]) -> list[str]:
    """The report's section on the primary comparison (``score``'s result), in Markdown lines."""
    if not p or not p.get("seeds_scored"):
        return []
    return [
        "",
        f"## Primary comparison: {labels[p['arms'][0]]} against {labels[p['arms'][1]]}",
        "",
        f"Declared before any arm was scored. Every seed's problems pooled ({p['seeds_scored']} seeds): "
        f"{p['difference']:+.1f} points, 95 % two-level bootstrap interval [{p['bootstrap_ci95'][0]:+.1f}, "
        f"{p['bootstrap_ci95'][1]:+.1f}]; exact sign test on the discordant problems ({p['a_only']} solved only by the "
        f"first, {p['b_only']} only by the second): p = {p['p']:.3g}. This design detects {p['detectable_effect_80']:.1f} "
        f"points with 80 % power ({p['detectable_effect_assumes']})"
        + (
            f"; at a discordant share of 1/2, {p['detectable_effect_80_at_half']:.1f}"
            if "detectable_effect_80_at_half" in p
            else ""
        )
        + "; at the discordance observed, "
        f"{p['detectable_effect_80_at_observed_discordance']:.1f}. Every other comparison below is secondary.",
        "",
    ]
