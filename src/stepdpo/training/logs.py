"""Training logs: JSONL rows (sent on to the chosen experiment trackers), and a PNG of the curves
(the paper's Fig. 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stepdpo.recordio import atomic_write_text

CURVES = ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected")
"""The metrics ``curves.png`` draws, under TRL's names: training as they are, validation as ``eval/...``."""

_OLD_NAMES = {
    "loss": "loss",
    "reward_accuracy": "rewards/accuracies",
    "reward_margin": "rewards/margins",
    "chosen_reward": "rewards/chosen",
    "rejected_reward": "rewards/rejected",
}


def normalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """A log row under TRL's names: rows written before the rename (``train/reward_accuracy``,
    ``val/...``, ``val_NAME/...``, ``lr``) read as ``rewards/accuracies``, ``eval/...``,
    ``eval_NAME/...``, ``learning_rate``; rows already so named are returned as they are."""
    out = {}
    for k, v in row.items():
        head, sep, tail = k.partition("/")
        if k == "lr":
            k = "learning_rate"
        elif sep and tail in _OLD_NAMES and (head == "train" or head == "val" or head.startswith("val_")):
            prefix = "" if head == "train" else "eval" + head[3:] + "/"
            k = prefix + _OLD_NAMES[tail]
        out[k] = v
    return out


def window_mean(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """The row logged for the steps since the last log line (``--log-every``): the last step's row
    with each training metric in ``keys`` its mean over those steps, as TRL logs them; the learning
    rate, gradient norm, epoch and validation figures are the last step's."""
    out = dict(rows[-1])
    for k in keys:
        out[k] = sum(r[k] for r in rows) / len(rows)
    return out


def eval_timing(prefix: str, seconds: float, pairs: int, batch: int, tokens: int) -> dict[str, float]:
    """A validation pass's timing under the Trainer's names (``eval/runtime`` ...), and the input
    tokens trained on so far, which TRL logs with each validation pass too."""
    return {
        f"{prefix}num_tokens": float(tokens),
        f"{prefix}runtime": round(seconds, 4),
        f"{prefix}samples_per_second": round(pairs / seconds, 3) if seconds > 0 else 0.0,
        f"{prefix}steps_per_second": round(-(-pairs // batch) / seconds, 3) if seconds > 0 else 0.0,
    }


def run_summary(rows: list[dict[str, Any]], seconds: float, pairs: int, steps: int, tokens: int, model: Any) -> dict:
    """The Trainer's end-of-run log: runtime, throughput, the mean training loss, and ``total_flos``
    as the Trainer estimates it (6 x parameters outside the embeddings x input tokens)."""
    base = model.module if hasattr(model, "module") else model
    base = getattr(base, "model", base)  # inside the trainer's CompletionLogProbs wrapper
    params = base.num_parameters(exclude_embeddings=True) if hasattr(base, "num_parameters") else 0
    losses = [r["loss"] for r in rows if "loss" in r]
    return {
        "train_runtime": round(seconds, 4),
        "train_samples_per_second": round(pairs / seconds, 3) if seconds > 0 else 0.0,
        "train_steps_per_second": round(steps / seconds, 3) if seconds > 0 else 0.0,
        "total_flos": float(6 * params * tokens),
        "train_loss": sum(losses) / len(losses) if losses else 0.0,
    }


class TrainLog:
    """Writes each row to ``log.jsonl`` and TensorBoard (``tb/``) in ``out``; ``close(plot=True)``
    draws ``curves.png``. Only the main process writes."""

    def __init__(self, out: str | Path, enabled: bool = True, resume_at: int | None = None, trackers: Any = None):
        """``resume_at``: the step a resumed run starts after; the log keeps its rows up to that
        step (rows a killed run wrote after its last checkpoint are dropped, so none is doubled),
        and an unreadable row is named and dropped. ``trackers``: the experiment trackers each row
        also goes to (:class:`~stepdpo.training.trackers.Trackers`)."""
        self.out, self.enabled, self.rows = Path(out), enabled, []
        self._fh, self._trackers = None, trackers
        if not enabled:
            return
        path = self.out / "log.jsonl"
        if resume_at is not None and path.exists():
            self.rows = _read_log(path, resume_at)
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in self.rows))
        self._fh = open(path, "a" if resume_at is not None else "w", encoding="utf-8")  # noqa: SIM115  (held open for the run)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.rows.append(row)
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()
        if self._trackers is not None:
            self._trackers.log(row, row["step"])

    def close(self, plot: bool = True) -> None:
        if not self.enabled:
            return
        self._fh.close()
        if self._trackers is not None:
            self._trackers.close()
        if plot and self.rows:
            plot_curves({"run": self.rows}, self.out / "curves.png")


def _read_log(path: Path, upto: int) -> list[dict[str, Any]]:
    from stepdpo.progress import log

    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = normalize_row(json.loads(line))
            step = int(row["step"])
        except (ValueError, KeyError, TypeError):
            log.warning(f"{path}:{lineno}: unreadable log row dropped")
            continue
        if step <= upto:
            rows.append(row)
    return rows


def plot_curves(
    runs: dict[str, list[dict[str, Any]]], path: str | Path, keys: tuple[str, ...] = CURVES, title: str = ""
) -> Path:
    """One panel per metric, train (thin) and validation (bold) curves for each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, (name, rows) in enumerate(runs.items()):
            color = f"C{i}"
            rows = [normalize_row(r) for r in rows]
            for split, name, style in (
                ("train", key, dict(lw=0.8, alpha=0.5)),
                ("val", f"eval/{key}", dict(lw=2, marker="o", ms=3)),
            ):
                pts = [(r["step"], r[name]) for r in rows if r.get(name) is not None]
                if pts:
                    ax.plot(*zip(*pts), color=color, label=f"{name} {split}", **style)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
