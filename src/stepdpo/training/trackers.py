"""Experiment trackers a training run reports to (``--report-to``): TensorBoard, Trackio, Weights &
Biases, MLflow, through their own libraries, each imported only when chosen.

Each tracker gets the names TRL's DPOTrainer gives it (through transformers' callbacks):
TensorBoard, Trackio and W&B ``train/loss``, ``train/rewards/chosen`` ... and ``eval/loss`` ...
(transformers' ``rewrite_logs``; Trackio also ``train/global_step``), MLflow the Trainer's own
names, ``loss`` ... and ``eval_loss``, ``eval_rewards/chosen`` ... ``log.jsonl`` keeps its names.

A resumed run (``--resume``) continues the same tracker runs: their ids are kept in
``OUT/trackers.json``; TensorBoard drops the events after the checkpoint's step (its purge step),
and the steps a killed run had already sent to Trackio, W&B or MLflow are not sent twice (as W&B
itself ignores a step below its last), so every tracker holds each step once."""

from __future__ import annotations

import hashlib
import json
import os
import re
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


def default_run_name(out: Path) -> str:
    """The output folder's name and a short hash of its full path: two runs in folders that share a
    name do not merge into one tracker run."""
    path = str(Path(out).resolve())
    return f"{Path(path).name}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"


def trainer_names(row: dict[str, Any]) -> dict[str, float]:
    """A ``log.jsonl`` row's numbers under the names transformers' Trainer gives its log dict:
    training metrics as they are, validation ``eval_loss``, ``eval_rewards/chosen`` ... (a named
    validation set ``eval_NAME/loss`` as ``eval_NAME_loss``, the Trainer's ``metric_key_prefix``)."""
    out = {}
    for k, v in row.items():
        if k == "step" or not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        head, sep, tail = k.partition("/")
        out[f"{head}_{tail}" if sep and head.startswith("eval") else k] = float(v)
    return out


def tracker_names(row: dict[str, Any], tracker: str, step: int) -> dict[str, float]:
    """The names and values TRL's run sends ``tracker`` for the same row."""
    raw = trainer_names(row)
    if tracker == "mlflow":  # MLflowCallback: the Trainer's names, characters MLflow refuses as "_"
        return {re.sub(r"[^0-9A-Za-z_\-\.\ :/]", "_", k): v for k, v in raw.items()}
    from transformers.integrations.integration_utils import rewrite_logs

    named = rewrite_logs(raw)
    if tracker == "trackio":  # TrackioCallback adds the step as a series
        named["train/global_step"] = float(step)
    return named


class Trackers:
    """The open trackers of one run; ``log`` sends a row's numbers, ``close`` ends the run.

    ``resume_at``: the checkpoint step a resumed run starts after (``None``: a new run)."""

    def __init__(
        self,
        names: list[str],
        out: Path,
        project: str,
        run_name: str,
        config: dict[str, Any],
        resume_at: int | None = None,
    ):
        self.names, self._open, self.out = names, {}, Path(out)
        self._state_path = self.out / "trackers.json"
        state: dict[str, Any] = {}
        if resume_at is not None and self._state_path.exists():
            try:
                state = json.loads(self._state_path.read_text())
            except ValueError:
                state = {}
        self.state = {"run_name": state.get("run_name", run_name), "ids": state.get("ids", {}), "sent": {}}
        self.state["sent"] = state.get("sent", {}) if resume_at is not None else {}
        self.resume_at, self.project = resume_at, project
        for name in names:
            try:
                self._open[name] = getattr(self, f"_start_{name}")(project, self.state["run_name"], config)
            except ImportError as e:
                self.close()
                raise ImportError(f"--report-to {name} needs its library: pip install {EXTRAS[name]} ({e})") from None
            if resume_at is not None:  # what the store holds, where it says (a kill can lose unflushed rows)
                held = self._last_stored_step(name)
                if held is not None:
                    self.state["sent"][name] = held
        self._save()

    def _last_stored_step(self, name: str) -> int | None:
        """The last step the tracker's own store holds for this run (``None``: it cannot tell)."""
        try:
            if name == "trackio":
                from trackio.sqlite_storage import SQLiteStorage

                return SQLiteStorage.get_max_step_for_run(self.project, self.state["run_name"]) or 0
            if name == "mlflow" and self.state["ids"].get("mlflow"):
                import mlflow

                history = mlflow.tracking.MlflowClient().get_metric_history(self.state["ids"]["mlflow"], "loss")
                return max((m.step for m in history), default=0)
        except Exception:  # an older store or API: fall back to what this folder recorded
            return None
        return None

    def _save(self) -> None:
        from stepdpo.recordio import atomic_write_text

        atomic_write_text(self._state_path, json.dumps(self.state, indent=1) + "\n")

    def _start_tensorboard(self, project: str, run_name: str, config: dict[str, Any]) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events a killed run wrote after the checkpoint are dropped on resume
        purge = self.resume_at + 1 if self.resume_at is not None else None
        return SummaryWriter(str(self.out / "tb"), purge_step=purge)

    def _start_trackio(self, project: str, run_name: str, config: dict[str, Any]) -> Any:
        import trackio  # its local store: TRACKIO_DIR, else ~/.cache/huggingface/trackio

        resume = "allow" if self.resume_at is not None else "never"  # a resumed run continues its own
        return trackio.init(
            project=project, name=run_name, config=config, resume=resume, embed=False, auto_log_cpu=False
        )

    def _start_wandb(self, project: str, run_name: str, config: dict[str, Any]) -> Any:
        import wandb  # offline where WANDB_MODE=offline (or no login): wandb sync uploads later

        run_id = self.state["ids"].get("wandb") if self.resume_at is not None else None
        run = wandb.init(
            project=project,
            name=run_name,
            config=config,
            dir=str(self.out),
            id=run_id,
            resume="allow" if run_id else None,
        )
        self.state["ids"]["wandb"] = run.id
        return run

    def _start_mlflow(self, project: str, run_name: str, config: dict[str, Any]) -> Any:
        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):  # a local store beside the run
            mlflow.set_tracking_uri(f"sqlite:///{(self.out / 'mlflow.db').resolve()}")
        mlflow.set_experiment(project)
        run_id = self.state["ids"].get("mlflow") if self.resume_at is not None else None
        if run_id:  # the killed run, left RUNNING, continues
            return mlflow.start_run(run_id=run_id)
        run = mlflow.start_run(run_name=run_name)
        mlflow.log_params({k: str(v)[:500] for k, v in config.items()})
        self.state["ids"]["mlflow"] = run.info.run_id
        return run

    def log(self, row: dict[str, Any], step: int) -> None:
        sent = self.state["sent"]
        for name, t in self._open.items():
            if name != "tensorboard" and step <= sent.get(name, 0):
                continue  # sent by the killed run before this one resumed
            values = tracker_names(row, name, step)
            if name == "tensorboard":
                for k, v in values.items():
                    t.add_scalar(k, v, step)
                t.flush()
            elif name == "trackio" or name == "wandb":
                t.log(values, step=step)
            else:
                import mlflow

                mlflow.log_metrics(values, step=step)
            sent[name] = step
        self._save()

    def summary(self, values: dict[str, float], step: int) -> None:
        """The end-of-run summary (``train_runtime`` ...), as the Trainer logs it: TensorBoard and W&B
        ``train/train_runtime`` ..., MLflow ``train_runtime`` ...; Trackio's callback leaves it out."""
        for name, t in self._open.items():
            if name == "tensorboard":
                for k, v in tracker_names(values, name, step).items():
                    t.add_scalar(k, v, step)
                t.flush()
            elif name == "wandb":
                t.log(tracker_names(values, name, step), step=step)
            elif name == "mlflow":
                import mlflow

                mlflow.log_metrics(tracker_names(values, name, step), step=step)

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
