"""The ablation section of the demo's report (``stepdpo ablate``): the factor table and what it says."""

from __future__ import annotations

from typing import Any

from stepdpo.experiments.common import ABLATED, LABELS
from stepdpo.experiments.report import DPO, GAP, pct, signed


def reading(ab: dict[str, Any]) -> list[str]:
    """What the factor table says, read off its numbers."""
    entries = [e for es in ab["factors"].values() for e in es]
    if not entries:
        return []
    widest = max(entries, key=lambda e: abs(e[GAP]["mean"]))
    out = [
        f"- Over all {len(entries)} rows, the largest mean gap between Step-DPO and DPO is "
        f"{signed(widest[GAP])} points (at {_row_name(ab, widest)})."
    ]
    for factor, what in (
        ("pairs", "the share of errors trained on"),
        ("epochs", "the number of epochs"),
        ("beta", "beta"),
    ):
        es = sorted(ab["factors"].get(factor, []), key=lambda e: (not isinstance(e["value"], str), e["value"]))
        if len(es) > 1:
            span = {m: 100 * (max(e[m]["mean"] for e in es) - min(e[m]["mean"] for e in es)) for m in ABLATED}
            out.append(
                f"- Changing {what} ({', '.join(str(e['value']) for e in es)}) moves DPO's accuracy over "
                f"{span[DPO]:.1f} points and Step-DPO's over {span['step_dpo']:.1f}."
            )
    errs = {e["value"]: e for e in ab["factors"].get("errors", [])}
    if "last_step" in errs:
        out.append(
            f"- Errors in the last step, where the two losses see the same tokens but for EOS: Step-DPO minus "
            f"DPO {signed(errs['last_step'][GAP])} points."
        )
    if "mid_chain" in errs:
        out.append(
            f"- Errors with steps after them, where DPO also sees the continuations: "
            f"{signed(errs['mid_chain'][GAP])} points."
        )
    return out


def _row_name(ab: dict[str, Any], entry: dict[str, Any]) -> str:
    for factor, es in ab["factors"].items():
        if entry in es:
            return f"{factor} = {entry['value']}{'*' if entry['baseline'] else ''}"
    return "?"


def section(ab: dict[str, Any]) -> list[str]:
    """The report's ablation section, in Markdown lines."""
    pi = ab["analysis"]["pairs"]
    d, s = pi[DPO], pi["step_dpo"]
    lines = [
        "## Step-DPO against DPO on whole solutions sharing s1..s(k-1): ablations (`stepdpo ablate`)",
        "",
        f"Seeds {ab['seeds']}; one factor changed at a time, the rest as in the demo (* marks the demo's own runs). "
        "DPO here is the shared-prefix arm. "
        "Held-out accuracy in %, mean and 95 % interval over seeds.",
        "",
        "### What the two losses see",
        "",
        "In eq. 1 the steps s1..s(k-1) that both solutions of a DPO pair share cancel exactly (the same tokens in "
        "the same context appear in both log-ratios), so on the same errors vanilla DPO differs from Step-DPO only "
        "by what follows the first wrong step (and the EOS token).",
        "",
        "| | DPO pairs | Step-DPO pairs |",
        "|---|---|---|",
        f"| pairs | {d['pairs']} | {s['pairs']} |",
        f"| first wrong step is the solution's last | {100 * d['last_step_share']:.0f} % | "
        f"{100 * s['last_step_share']:.0f} % |",
        f"| mean first wrong step / mean steps | {d['mean_first_error_step']:.1f} / {d['mean_steps']:.1f} | "
        f"{s['mean_first_error_step']:.1f} / {s['mean_steps']:.1f} |",
        f"| completion tokens after step k that the loss sees (chosen + rejected) | {d['mean_tokens_after_step_k']:.0f} | "
        f"{s['mean_tokens_after_step_k']:.0f} |",
        f"| completion tokens both sides share, which cancel | {d['mean_shared_tokens']:.0f} | {s['mean_shared_tokens']:.0f} |",
        "",
        "Kinds of first error in the Step-DPO pairs: "
        + ", ".join(f"{k} {v} ({100 * v / max(s['pairs'], 1):.0f} %)" for k, v in s["error_kinds"].items())
        + ".",
        "",
        "### One factor at a time",
        "",
        "| factor | value | pairs per seed (DPO / Step-DPO) | DPO | Step-DPO | Step-DPO minus DPO |",
        "|---|---|---|---|---|---|",
    ]
    findings = []
    for factor, entries in ab["factors"].items():
        for e in entries:
            star = "*" if e["baseline"] else ""
            np_ = e.get("pairs", {})
            lines.append(
                f"| {factor} | {e['value']}{star} | {np_.get(DPO, '?')} / {np_.get('step_dpo', '?')} | "
                f"{pct(e[DPO])} | {pct(e['step_dpo'])} | {signed(e[GAP])} |"
            )
            lo, hi = e[GAP]["ci95"] or (0.0, 0.0)
            if len(e["seeds"]) > 1 and (lo > 0 or hi < 0) and not (e["baseline"] and factor != "pairs"):
                who = "Step-DPO above DPO" if lo > 0 else "DPO above Step-DPO"
                findings.append(f"{factor} = {e['value']}{star}: {who}, {signed(e[GAP])} points.")
    if len(ab["seeds"]) > 1:
        lines += [
            "",
            "Settings where the 95 % interval of Step-DPO minus DPO excludes zero: "
            + (" ".join(findings) if findings else "none."),
        ]
    lines += ["", *reading(ab)]
    he = ab["analysis"]["heldout_errors"]
    if he:
        lens = sorted({int(n) for v in he.values() for n in v["accuracy_by_steps"]})
        lines += [
            "",
            "### Errors the models still make on held-out problems (pooled over seeds)",
            "",
            "| model | " + " | ".join(f"{n} steps" for n in lens) + " | wrong at step 1 | middle | last step |",
            "|---|" + "---|" * (len(lens) + 3),
        ]
        for m, v in he.items():
            acc = {int(n): a for n, a in v["accuracy_by_steps"].items()}
            w = v["errors_by_position"]
            lines.append(
                f"| {LABELS[m]} | "
                + " | ".join(f"{100 * acc[n]:.1f}" if n in acc else "" for n in lens)
                + f" | {w.get('first step', 0)} | {w.get('middle', 0)} | {w.get('last step', 0)} |"
            )
        lines += [
            "",
            "Accuracy in % by the problem's number of steps; then counts of held-out errors by the "
            "position of the first wrong step.",
        ]
    lines += ["", "![ablations](ablations.png)", ""]
    return lines
