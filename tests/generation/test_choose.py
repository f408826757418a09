"""Choosing the faster backend for a run: the probe (run for real, in a child process), the
projection, and the choice. Probing vLLM itself is in the slow tier's vLLM environment
(test_vllm.py)."""

import pytest

from stepdpo.generation import choose
from stepdpo.generation.choose import Workload, choose_backend, decide, probe_in_child, project

FAST_START = {"startup_s": 2.0, "s_per_sample": 0.5}  # transformers-like: quick to start, slower
SLOW_START = {"startup_s": 100.0, "s_per_sample": 0.1}  # engine-like: slow to start, faster


def test_the_projection_counts_every_start_and_every_sample():
    assert project({"hf": FAST_START}, Workload(samples=1000, starts=3)) == {"hf": 3 * 2.0 + 1000 * 0.5}


def test_the_faster_engine_wins_only_where_its_start_up_pays():
    probes = {"hf": FAST_START, "vllm": SLOW_START}
    small, large = Workload(samples=200, starts=5), Workload(samples=20_000, starts=5)
    # 5 x 2 + 200 x 0.5 = 110 s against 5 x 100 + 200 x 0.1 = 520 s; then 10,010 against 2,500
    assert decide(probes, small)["name"] == "hf"
    chosen = decide(probes, large)
    assert chosen["name"] == "vllm" and chosen["projected_s"] == {"hf": 10_010.0, "vllm": 2_500.0}
    assert "10,010 s" in chosen["why"] and chosen["workload"]["samples"] == 20_000
    # more starts of the same work tip it back
    assert decide(probes, Workload(samples=20_000, starts=100))["name"] == "hf"


def test_a_named_backend_is_taken_without_probing(monkeypatch):
    monkeypatch.setattr(choose, "probe_in_child", lambda *a, **k: pytest.fail("probed"))
    assert choose_backend("vllm", "m", [], {}, Workload(1, 1)) == {"name": "vllm", "why": "--backend vllm"}
    with pytest.raises(ValueError, match="unknown generation backend 'tgi'"):
        choose_backend("tgi", "m", [], {}, Workload(1, 1))


def test_auto_with_one_backend_installed_probes_nothing(monkeypatch):
    monkeypatch.setattr(choose, "installed", lambda b: b == "hf")
    monkeypatch.setattr(choose, "probe_in_child", lambda *a, **k: pytest.fail("probed"))
    got = choose_backend("auto", "m", [], {}, Workload(1, 1))
    assert got["name"] == "hf" and "vllm is not" in got["why"]


def test_a_real_probe_in_a_child_process(default_model, tokenizer):
    from stepdpo.text.prompts import generation_prompt

    prompts = [generation_prompt(q, tokenizer=tokenizer)[0] for q in ("What is 2 + 3?", "What is 7 * 6?")]
    sampling = {"n": 3, "temperature": 1.0, "top_p": 0.95, "max_new_tokens": 24, "seed": 0}
    p = probe_in_child("hf", default_model, prompts, sampling, {"batch_size": 8})
    assert p["backend"] == "hf" and p["samples"] == 6 and len(p["texts"]) == 2 and len(p["texts"][0]) == 3
    assert p["startup_s"] > 0 and p["sampling_s"] > 0 and 0 < p["tokens"] <= 6 * 24
    assert p["s_per_sample"] == pytest.approx(p["sampling_s"] / 6, abs=0.005 / 6)  # sampling_s is rounded
    # the same seed, the same samples: the probe samples as the run will
    assert probe_in_child("hf", default_model, prompts, sampling, {"batch_size": 8})["texts"] == p["texts"]


def test_a_probe_that_fails_names_the_backend_and_why(tmp_path):
    with pytest.raises(RuntimeError, match=r"probing the hf backend on .*missing failed \(exit 1\)"):
        probe_in_child("hf", str(tmp_path / "missing"), ["x"], {"n": 1}, {})


def test_the_choice_benchmark_runs_the_demos_choice():
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "backend_choice.py"
    done = subprocess.run(
        [sys.executable, str(script), "--model", "", "--seeds", "0"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["why"].startswith("auto") and last["name"] in ("hf", "vllm")
    if not choose.installed("vllm"):  # the test environment: nothing to measure, and said so
        assert last["name"] == "hf" and "vllm is not" in last["why"]
