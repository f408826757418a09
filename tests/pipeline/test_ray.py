"""The stages on a Ray cluster (``--executor ray``): a real local cluster of two workers started
with ``ray start --head``, the embedded model. Ray's records equal the local run's, record for
record; a worker killed mid-stage and a driver killed mid-stage lose and duplicate nothing."""

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow
STEPDPO = [sys.executable, "-m", "stepdpo.cli"]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with two CPUs (so two workers), its address, stopped at the end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = [
        "ray", "start", "--head", "--num-cpus", "2", "--port", str(port), "--include-dashboard", "false",
        "--disable-usage-stats",
    ]  # fmt: skip
    subprocess.run(start, check=True, env=env, capture_output=True)
    address = "auto"  # the cluster started on this machine (as `ray start` prints it for its head node)
    ray.init(address=address, log_to_driver=False)
    yield address
    ray.shutdown()
    subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True)


@pytest.fixture
def one_thread():
    """The local run decodes on one thread, as each Ray worker does (``num_cpus`` 1): the same
    arithmetic, so the same sampled tokens."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _config(out: Path, executor: str, address: str | None = None):
    from stepdpo.pipeline.run import PipelineConfig

    return PipelineConfig.from_dict(
        {
            "model": "default",
            "backend": "hf",
            "limit": 12,
            "out": str(out),
            "executor": executor,
            "ray_address": address,
            "collect": {"k": 2, "max_new_tokens": 200, "keep_correct": False},
            "locate": {"judge": "rollout", "m": 4, "max_new_tokens": 200, "temperature": 1.0},
            "rectify": {"n": 4, "max_new_tokens": 200},
        }
    )


def test_collect_locate_rectify_and_eval_on_ray_equal_the_local_run(cluster, tmp_path, one_thread):
    from stepdpo.generation import load_generator
    from stepdpo.pipeline.executors import LazyGenerator, RayExecutor
    from stepdpo.pipeline.run import FILES, run_pipeline
    from stepdpo.problems import load_problems
    from stepdpo.stages.evaluate import EvalConfig, evaluate

    run_pipeline(_config(tmp_path / "local", "local"))
    run_pipeline(_config(tmp_path / "ray", "ray", cluster), stop="rectify")
    for stage in ("collect", "locate", "rectify"):
        local, remote = (_rows(tmp_path / side / FILES[stage]) for side in ("local", "ray"))
        assert local, stage
        if stage == "locate":  # the rollout judge located errors, not only abstained
            assert any(r["first_error_step"] for r in local)
        assert remote == local, stage  # the same records, in the same order
    problems = load_problems("synthetic", split="test", limit=10)
    cfg = EvalConfig(max_new_tokens=160, temperature=0.8, n=2, chunk=3)
    here = evaluate(load_generator("default", backend="hf"), problems, cfg)
    there = evaluate(LazyGenerator("default", backend="hf"), problems, cfg, executor=RayExecutor(cluster, 2))
    assert there.rows == here.rows and there.summary["accuracy"] == here.summary["accuracy"]


def test_the_stages_through_ray_data_equal_the_local_run(cluster, tmp_path, one_thread):
    """``--executor ray-data``: sampling as Ray Data rows (one per sample, its own seed) over two
    replicas; the same records as the local run, and the vLLM processor ray.data.llm would run."""
    from stepdpo.generation import load_generator
    from stepdpo.generation.raydata import RayDataGenerator
    from stepdpo.pipeline.executors import RayDataExecutor
    from stepdpo.pipeline.run import FILES, run_pipeline
    from stepdpo.problems import load_problems
    from stepdpo.stages.evaluate import EvalConfig, evaluate

    run_pipeline(_config(tmp_path / "local", "local"), stop="rectify")
    run_pipeline(_config(tmp_path / "data", "ray-data", cluster), stop="rectify")
    for stage in ("collect", "locate", "rectify"):
        local, remote = (_rows(tmp_path / side / FILES[stage]) for side in ("local", "data"))
        assert local, stage
        assert remote == local, stage
    problems = load_problems("synthetic", split="test", limit=6)
    cfg = EvalConfig(max_new_tokens=160, temperature=0.8, n=2, chunk=3)
    here = evaluate(load_generator("default", backend="hf"), problems, cfg)
    gen = RayDataGenerator("default", engine="hf", replicas=2, batch_size=8, address=cluster)
    there = evaluate(gen, problems, cfg, executor=RayDataExecutor(chunk_scale=4))
    assert there.rows == here.rows
    assert gen.stats["generated_tokens"] == sum(s["tokens"] for r in here.rows for s in r["samples"])
    vllm = RayDataGenerator("default", engine="vllm", replicas=4, gpus_per_replica=2, address=cluster)
    pc = vllm.processor_config()
    assert pc.get_concurrency() == {"min_size": 4, "max_size": 4}  # --ray-workers 4: four replicas, not 1..4
    assert (pc.engine_kwargs["tensor_parallel_size"], pc.engine_kwargs["enable_prefix_caching"]) == (2, True)
    assert not (pc.chat_template_stage or pc.tokenize_stage or pc.detokenize_stage)


def _worker_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if "ray::_Worker" in " ".join(p.info["cmdline"] or [])]


def _slow_double(chunk):
    """A stage's chunk function that takes a second: each problem's answer doubled."""
    from stepdpo.records import Problem
    from stepdpo.stages.base import ItemResult

    time.sleep(1.0)
    return [
        ItemResult(p.id, [Problem(id=f"{p.id}-x", problem=p.problem, answer=str(2 * int(p.answer)))]) for p in chunk
    ]


def test_a_worker_killed_mid_stage_is_retried_and_nothing_is_lost_or_duplicated(cluster, tmp_path):
    from stepdpo.pipeline.executors import RayExecutor
    from stepdpo.pipeline.runner import ledger_path, run_stage
    from stepdpo.problems import load_problems

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests
    problems = load_problems("synthetic", limit=20)
    run_stage("double", problems, _slow_double, tmp_path / "local.jsonl", settings={}, chunk_size=2)
    out = tmp_path / "ray.jsonl"
    killed = []

    def kill_one_worker():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            if out.exists() and out.read_text().count("\n") >= 3 and (pids := _worker_pids()):
                os.kill(pids[0], signal.SIGKILL)  # a real process death, mid-stage
                killed.append(pids[0])
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_one_worker)
    watcher.start()
    s = run_stage("double", problems, _slow_double, out, settings={}, chunk_size=2, executor=RayExecutor(cluster, 2))
    watcher.join()
    assert killed, "no worker was killed"
    rows = _rows(out)
    assert rows == _rows(tmp_path / "local.jsonl") and s.rows_out == 20  # nothing lost, nothing twice
    assert len(_rows(ledger_path(out))) == 20


def _poisoned(chunk, poison: str):
    """A chunk function that kills its worker process every time it meets the problem ``poison``."""
    if any(p.problem == poison for p in chunk):
        os._exit(1)
    return _slow_double(chunk)


def test_a_chunk_that_kills_its_worker_every_time_fails_the_stage(cluster, tmp_path):
    from stepdpo.pipeline.executors import RayExecutor
    from stepdpo.pipeline.runner import run_stage
    from stepdpo.problems import load_problems

    problems = load_problems("synthetic", limit=8)
    fn = functools.partial(_poisoned, poison=problems[5].problem)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    out = tmp_path / "ray.jsonl"
    t = time.time()
    with pytest.raises(RuntimeError, match=r"chunk 2 of 4 \(2 inputs\) killed its Ray worker 4 times"):
        run_stage("double", problems, fn, out, settings={}, chunk_size=2, executor=RayExecutor(cluster, 2))
    assert time.time() - t < 240  # failed, not hung
    assert [r["id"] for r in _rows(out)] == [f"{p.id}-x" for p in problems[:4]]  # the chunks before it kept


def test_chunks_go_to_the_least_busy_worker(cluster):
    """One slow chunk on one worker: the other worker takes every chunk after it."""
    from stepdpo.pipeline.executors import RayExecutor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    chunks = [[3.0]] + [[0.05]] * 12
    ex = RayExecutor(cluster, 2)
    t = time.time()
    out = list(ex.map(_sleep_and_pid, chunks))
    took = time.time() - t
    pids = [pid for ((_, pid),) in out]
    assert [x for ((x, _),) in out] == [c[0] for c in chunks]  # input order kept
    # round-robin would queue half the short chunks behind the slow one on its worker
    assert pids[1:].count(pids[0]) <= 1 and took < 3.0 + 3.0


def _sleep_and_pid(chunk):
    time.sleep(chunk[0])
    return [(chunk[0], os.getpid())]


def test_a_driver_killed_mid_stage_resumes_from_the_ledger(cluster, tmp_path, one_thread):
    from stepdpo.pipeline.run import run_pipeline
    from stepdpo.pipeline.runner import ledger_path

    local = _config(tmp_path / "local", "local")
    local.limit, local.collect.k = 16, 8  # two chunks of 8 problems: the driver dies between them
    run_pipeline(local, stop="collect")
    out = tmp_path / "ray" / "errors.jsonl"
    cmd = [
        *STEPDPO,
        "collect",
        "--limit",
        "16",
        "--k",
        "8",
        "--max-new-tokens",
        "200",
        "--backend",
        "hf",
        "--out",
        str(out),
        "--executor",
        "ray",
        "--ray-address",
        cluster,
        "--ray-workers",
        "1",
    ]  # fmt: skip  (one worker: the second chunk is still running when the first is written)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and driver.poll() is None:
        ledger = ledger_path(out)  # a chunk is done once the ledger says so (its rows are written first)
        if ledger.exists() and ledger.read_text().count("\n") >= 1:
            driver.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    driver.wait()
    first = _rows(out)
    assert first, "the driver wrote nothing before it was killed"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = _rows(out)
    assert len(first) < len(rows), "the driver was not killed mid-stage"
    assert rows[: len(first)] == first and len({r["id"] for r in rows}) == len(rows)
    assert rows == _rows(tmp_path / "local" / "errors.jsonl")
    assert "resumed" in done.stdout + done.stderr
    assert "constructor arguments in the object store" not in done.stderr  # Ray's ERROR line, once on every run


def test_a_relative_model_folder_works_on_a_cluster_started_elsewhere(cluster, tmp_path, default_model):
    """The workers start in the folder where ``ray start`` ran: the driver ships its own folder's path."""
    import shutil

    shutil.copytree(default_model, tmp_path / "models" / "mine")
    out = tmp_path / "errors.jsonl"
    cmd = [*STEPDPO, "collect", "--model", "models/mine", "--limit", "2", "--k", "2", "--max-new-tokens", "40",
           "--backend", "hf", "--out", str(out), "--executor", "ray", "--ray-address", cluster, "--ray-workers", "1"]  # fmt: skip
    assert Path.cwd() != tmp_path
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(_rows(out)) >= 0 and "collect: 2 in" in done.stderr + done.stdout
