"""The demo's figures: ``curves.png`` (Fig. 2 on the common validation pairs, mean and 95 % band
over seeds) and ``accuracy.png`` (each arm's held-out accuracy with its interval and seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stepdpo.experiments.common import ARMS, TRAINED, mean_ci

COLORS = {
    "sft": "C7",
    "dpo": "C0",
    "dpo_shared_prefix": "C4",
    "step_dpo": "C1",
    "step_dpo_ood": "C2",
    "step_dpo_matched": "C3",
}


def _curve(runs: list[list[dict]], key: str, scale: float) -> tuple[list[float], ...]:
    """The mean over seeds of ``key`` (divided by ``scale``) against the share of training done,
    with its 95 % band: each seed's validation passes interpolated onto one grid (seeds with
    more pairs take more steps)."""
    import numpy as np

    series = []
    for rows in runs:
        last = max(r["step"] for r in rows)
        xs = np.array([r["step"] / last for r in rows if key in r])
        series.append((xs, np.array([r[key] / scale for r in rows if key in r])))
    grid = np.linspace(max(x[0] for x, _ in series), 1.0, 20)
    values = np.stack([np.interp(grid, x, y) for x, y in series])
    stats = [mean_ci(list(map(float, values[:, j]))) for j in range(len(grid))]
    band = [r["ci95"] or (r["mean"], r["mean"]) for r in stats]  # one seed: no band
    return (
        list(map(float, grid)),
        [r["mean"] for r in stats],
        [b[0] for b in band],
        [b[1] for b in band],
    )


def plots(out: Path, res: dict[str, Any], logs: dict[str, list[list[dict]]], hp: dict[str, dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stepdpo.experiments.common import LABELS

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharex=True)
    for i, kind in enumerate(("step", "whole")):
        for j, (key, what) in enumerate(
            (("rewards/accuracies", "reward accuracy"), ("rewards/margins", "margin / beta"))
        ):
            ax = axes[i][j]
            # an arm no seed trained, or a kind without validation pairs, has no curve
            for arm in (a for a in TRAINED if any(f"eval_{kind}/{key}" in r for rows in logs[a] for r in rows)):
                scale = hp[arm]["beta"] if key == "rewards/margins" else 1.0
                xs, m, lo, hi = _curve(logs[arm], f"eval_{kind}/{key}", scale)
                if key == "rewards/accuracies":  # a share: its band ends at 0 and 1
                    lo, hi = [max(0.0, v) for v in lo], [min(1.0, v) for v in hi]
                label = LABELS[arm].replace("SFT + ", "")
                if xs[0] == xs[-1]:  # runs too short for a pass before the end: one point each, side by side
                    x = 1.0 + 0.01 * TRAINED.index(arm)
                    ax.errorbar(
                        [x],
                        [m[0]],
                        yerr=[[m[0] - lo[0]], [hi[0] - m[0]]],
                        fmt="o",
                        color=COLORS[arm],
                        label=label,
                        capsize=3,
                    )
                    continue
                ax.plot(xs, m, color=COLORS[arm], label=label)
                ax.fill_between(xs, lo, hi, color=COLORS[arm], alpha=0.15)
            ax.set_title(f"{what} on common {'step-level' if kind == 'step' else 'whole-solution'} pairs", fontsize=10)
            ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("share of training")
    if axes[0][0].get_legend_handles_labels()[0]:  # no arm trained on any seed: nothing to label
        axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Fig. 2 at small scale: mean and 95 % band over seeds {res['seeds']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    acc = res["accuracy"]
    arms = [a for a in ARMS if a in (res.get("arms") or ARMS)]  # the arms that ran
    means = [100 * (acc[a]["mean"] or 0.0) for a in arms]  # an arm no seed trained: an empty bar
    short = {
        "sft": "SFT",
        "dpo": "+ DPO\n(holistic)",
        "dpo_shared_prefix": "+ DPO\n(shared prefix)",
        "step_dpo": "+ Step-DPO",
        "step_dpo_ood": "+ Step-DPO\n(OOD s_win)",
        "step_dpo_matched": "+ Step-DPO\n(matched)",
    }
    ax.bar([short[a] for a in arms], means, color=[COLORS[a] for a in arms])
    for i, a in enumerate(arms):
        if acc[a]["ci95"] is None:
            continue  # one seed: no interval to draw
        lo, hi = acc[a]["ci95"]
        ax.errorbar([i], [means[i]], yerr=[[means[i] - 100 * lo], [100 * hi - means[i]]], color="k", capsize=4)
        seen = [v * 100 for v in acc[a]["values"] if v is not None]
        ax.scatter([i] * len(seen), seen, color="k", s=10, zorder=3)
    ax.set_ylabel(f"held-out accuracy, {res['accuracy_kind']} (%)")
    # every seed's point stays in view, not only the means
    seen = means + [100 * v for a in arms for v in acc[a]["values"] if v is not None]
    ax.set_ylim(max(0, min(seen) - 12), min(100, max(seen) + 8))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=110)
    plt.close(fig)
