"""Experiment trackers a training run reports to (``--report-to``): TensorBoard, Trackio, Weights &
Biases, MLflow, through their own libraries, each imported only when chosen. Every logged row goes
to each of them under the same names as ``log.jsonl`` (TRL's)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepdpo.options import option

TRACKERS = ("tensorboard", "trackio", "wandb", "mlflow")
CHOICES = ("none", *TRACKERS, "all")
EXTRAS = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "mlflow": "mlflow"}


@dataclass
class ReportOptions:
    """Where a command's training runs report (train, demo, iterate): declared once."""

    report_to: list[str] = option(
        ["tensorboard"],
        "Experiment trackers, comma-separated: none, tensorboard (OUT/tb), trackio, wandb, mlflow (OUT/mlflow.db "
        "unless MLFLOW_TRACKING_URI is set), all.",
        choices=CHOICES,
    )
    project: str = option("stepdpo", "The trackers' project (MLflow: experiment).")


def chosen(report_to: list[str]) -> list[str]:
    """The trackers ``report_to`` names (``all``: every one; ``none``: none)."""
    if "none" in report_to:
        return []
    return list(TRACKERS) if "all" in report_to else [t for t in TRACKERS if t in report_to]


class Trackers:
    """The open trackers of one run; ``log`` sends a row's numbers, ``close`` ends the run."""

    def __init__(self, names: list[str], out: Path, project: str, run_name: str, config: dict[str, Any]):
        self.names, self._open = names, {}
        for name in names:
            try:
                self._open[name] = getattr(self, f"_start_{name}")(out, project, run_name, config)
            except ImportError as e:
                self.close()
                raise ImportError(f"--report-to {name} needs its library: pip install {EXTRAS[name]} ({e})") from None

    @staticmethod
    def _start_tensorboard(out: Path, project: str, run_name: str, config: dict[str, Any]) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(out / "tb"))

    @staticmethod
    def _start_trackio(out: Path, project: str, run_name: str, config: dict[str, Any]) -> Any:
        import trackio  # its local store: TRACKIO_DIR, else ~/.cache/huggingface/trackio

        return trackio.init(
            project=project, name=run_name, config=config, resume="allow", embed=False, auto_log_cpu=False
        )

    @staticmethod
    def _start_wandb(out: Path, project: str, run_name: str, config: dict[str, Any]) -> Any:
        import wandb  # offline where WANDB_MODE=offline (or no login): wandb sync uploads later

        return wandb.init(project=project, name=run_name, config=config, dir=str(out))

    @staticmethod
    def _start_mlflow(out: Path, project: str, run_name: str, config: dict[str, Any]) -> Any:
        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):  # a local store beside the run
            mlflow.set_tracking_uri(f"sqlite:///{(out / 'mlflow.db').resolve()}")
        mlflow.set_experiment(project)
        run = mlflow.start_run(run_name=run_name)
        mlflow.log_params({k: str(v)[:500] for k, v in config.items()})
        return run

    def log(self, row: dict[str, Any], step: int) -> None:
        values = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        values.pop("step", None)
        for name, t in self._open.items():
            if name == "tensorboard":
                for k, v in values.items():
                    t.add_scalar(k, v, step)
            elif name == "trackio" or name == "wandb":
                t.log(values, step=step)
            else:
                import mlflow

                mlflow.log_metrics({k.replace("@", "_"): v for k, v in values.items()}, step=step)

    def close(self) -> None:
        for name, t in list(self._open.items()):
            if name == "tensorboard":
                t.close()
            elif name == "trackio" or name == "wandb":
                t.finish()
            else:
                import mlflow

                mlflow.end_run()
        self._open = {}
