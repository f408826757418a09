"""The experiment trackers, read back with each tracker's own reader: the names TRL writes to each,
the values of log.jsonl, one run per training after a kill -9 and ``--resume``."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import toy_pairs

from stepdpo.recordio import write_records
from stepdpo.training.trackers import default_run_name, trainer_names
from stepdpo.training.trainer import TrainConfig, train

TRACKED = ["tensorboard", "trackio", "mlflow"]
# what stepdpo logs beyond TRL's DPOTrainer (it logs everything TRL's does)
OURS_ONLY = {"pairs_per_s"}


@pytest.fixture(scope="module")
def pair_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    write_records(path, toy_pairs(40))
    return path


@pytest.fixture
def stores(tmp_path, monkeypatch):
    """A Trackio project of the test's own (the session's store, see conftest), MLflow's store
    beside each run."""
    pytest.importorskip("trackio")
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"p-{tmp_path.name}"


def _cfg(pair_file, default_model, out, **kw):
    base = dict(data=str(pair_file), model=default_model, out=str(out), lr=1e-3, global_batch=8, max_seq_len=700,
                rows_per_micro=2, warmup_ratio=0.0, val_fraction=0.2, eval_every=2, dtype="fp32")  # fmt: skip
    return TrainConfig(**{**base, **kw})


def _series(tb_dir: Path, mlflow_db: Path, project: str, run: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Every series each tracker's store holds for one run, read with its own library."""
    import mlflow
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from trackio.sqlite_storage import SQLiteStorage

    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    out["tensorboard"] = {k: [(e.step, e.value) for e in acc.Scalars(k)] for k in acc.Tags()["scalars"]}
    rows = SQLiteStorage.get_logs(project, run)
    keys = {k for r in rows for k in r} - {"step", "timestamp"}
    out["trackio"] = {k: [(r["step"], r[k]) for r in rows if k in r] for k in keys}
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{mlflow_db}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, f"MLflow holds {len(runs)} runs"
    out["mlflow"] = {
        k: sorted((m.step, m.value) for m in client.get_metric_history(runs[0].info.run_id, k))
        for k in runs[0].data.metrics
    }
    out["mlflow_status"] = runs[0].info.status  # type: ignore[assignment]
    return out


def _bare(key: str) -> str:
    """A tracker key without its train/ or eval/ or eval_ head."""
    for head in ("train/", "eval/", "eval_"):
        if key.startswith(head):
            return key[len(head) :]
    return key


def test_each_tracker_holds_the_names_trls_dpotrainer_writes_to_it(pair_file, default_model, tmp_path, stores):
    pytest.importorskip("trl")
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from stepdpo.models import load_tokenizer

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'trl-mlflow.db'}"
    try:
        rows = [{"prompt": f"Q{i}: 5 + 3?", "chosen": " Step 1: 8", "rejected": f" Step 1: {9 + i}"} for i in range(6)]
        args = DPOConfig(
            output_dir=str(tmp_path / "trl"), per_device_train_batch_size=2, max_steps=3, learning_rate=1e-4,
            beta=0.4, logging_steps=1, save_strategy="no", report_to=TRACKED, use_cpu=True, eval_strategy="steps",
            eval_steps=3, per_device_eval_batch_size=2, project=stores, run_name="trl", bf16=False,
        )  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(default_model, dtype=torch.float32)
        ds = Dataset.from_list(rows)
        DPOTrainer(
            model=model, args=args, train_dataset=ds, eval_dataset=ds, processing_class=load_tokenizer(default_model)
        ).train()
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    (trl_tb,) = {p.parent for p in (tmp_path / "trl").rglob("events.out.tfevents*")}
    trl = _series(trl_tb, tmp_path / "trl-mlflow.db", stores, "trl")

    out = tmp_path / "ours"
    train(_cfg(pair_file, default_model, out, max_steps=3, report_to=TRACKED, project=stores, run_name="ours"))
    ours = _series(out / "tb", out / "mlflow.db", stores, "ours")
    for t in TRACKED:
        theirs = set(trl[t])
        mine = {k for k in ours[t] if _bare(k) not in OURS_ONLY}
        assert mine <= theirs, (t, sorted(mine - theirs))
        assert theirs <= mine, (t, sorted(theirs - mine))
    assert "train/loss" in ours["tensorboard"] and "eval/rewards/margins" in ours["trackio"]
    assert "loss" in ours["mlflow"] and "eval_rewards/margins" in ours["mlflow"]
    # the end-of-run summary and the token count, as the Trainer logs them (Trackio's callback drops the summary)
    assert {"train/train_runtime", "train/total_flos", "train/num_tokens"} <= set(ours["tensorboard"])
    assert {"train_runtime", "train_loss", "num_tokens", "eval_runtime"} <= set(ours["mlflow"])
    assert "train/train_runtime" not in ours["trackio"] and "eval/runtime" in ours["trackio"]
    # the epoch after the step, as the Trainer counts it (step 1 of 5 per epoch: 0.2, not 0.0)
    epochs = [v for _, v in ours["tensorboard"]["train/epoch"]]
    assert epochs[0] > 0 and epochs == pytest.approx([epochs[0] * s for s in (1, 2, 3)], rel=1e-6)


def test_a_run_reports_log_jsonls_series_to_each_tracker(pair_file, default_model, tmp_path, stores):
    out = tmp_path / "run"
    train(_cfg(pair_file, default_model, out, max_steps=3, report_to=TRACKED, project=stores, run_name="r"))
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    got = _series(out / "tb", out / "mlflow.db", stores, "r")
    names = {"tensorboard": lambda k: "train/" + k, "trackio": lambda k: "train/" + k, "mlflow": lambda k: k}
    for t in TRACKED:
        for k in ("loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected", "grad_norm"):
            series = got[t][names[t](k)]
            assert [s for s, _ in series] == [r["step"] for r in rows], (t, k)
            assert [v for _, v in series] == pytest.approx([r[k] for r in rows], rel=1e-5, abs=1e-6), (t, k)
    last = trainer_names(rows[-1])
    assert got["mlflow"]["eval_loss"][-1][1] == pytest.approx(last["eval_loss"], rel=1e-6)
    assert got["tensorboard"]["eval/loss"][-1][1] == pytest.approx(rows[-1]["eval/loss"], rel=1e-5)


def test_log_every_logs_the_windows_mean(pair_file, default_model, tmp_path):
    every = train(_cfg(pair_file, default_model, tmp_path / "a", max_steps=4, report_to=["none"], eval_every=0))
    del every
    each = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    train(_cfg(pair_file, default_model, tmp_path / "b", max_steps=4, report_to=["none"], eval_every=0, log_every=2))
    window = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in window] == [2, 4]
    for w, (a, b) in zip(window, [each[0:2], each[2:4]]):
        assert w["loss"] == pytest.approx((a["loss"] + b["loss"]) / 2, rel=1e-4)
        assert w["learning_rate"] == b["learning_rate"] and w["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def test_runs_in_folders_that_share_a_name_stay_apart(tmp_path):
    assert default_run_name(tmp_path / "a" / "run") != default_run_name(tmp_path / "b" / "run")
    assert default_run_name(tmp_path / "a" / "run").startswith("run-")
    assert default_run_name(tmp_path / "a" / "run") == default_run_name(tmp_path / "a" / ".." / "a" / "run")


@pytest.mark.slow
def test_after_kill_9_and_resume_each_tracker_holds_every_step_once_in_one_run(pair_file, tmp_path, stores):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "stepdpo.cli", "train", "--data", str(pair_file), "--out", str(out),
           "--max-steps", "20", "--save-every", "10", "--global-batch", "8", "--lr", "1e-3", "--warmup-ratio", "0",
           "--eval-every", "0", "--report-to", ",".join(TRACKED), "--project", stores]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "log.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= 13:
            proc.send_signal(signal.SIGKILL)  # a real kill, after the step-10 checkpoint
            break
        time.sleep(0.01)
    proc.wait()
    killed_at = log.read_text().count("\n")
    assert 13 <= killed_at < 20, f"killed after {killed_at} steps"
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    name = json.loads((out / "trackers.json").read_text())["run_name"]
    got = _series(out / "tb", out / "mlflow.db", stores, name)
    want = list(range(1, 21))
    assert [s for s, _ in got["tensorboard"]["train/loss"]] == want
    assert [s for s, _ in got["trackio"]["train/loss"]] == want
    assert [s for s, _ in got["mlflow"]["loss"]] == want  # one run (checked in _series), each step once
    assert got["mlflow_status"] == "FINISHED"
