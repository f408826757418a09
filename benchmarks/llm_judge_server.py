"""The ``llm`` judge against a real local OpenAI-compatible server: llama.cpp's server
(``llama-cpp-python[server]``) serving SmolLM2-135M-Instruct's own GGUF file on 127.0.0.1.

SmolLM2 first collects wrong step-by-step solutions to GSM8K training problems (``stepdpo
collect``); then ``stepdpo locate --judge llm --base-url http://127.0.0.1:PORT/v1`` judges them
with no API key set (a server on this machine needs none), once with each reply format: ``json``
(JSON mode: any JSON object) and ``llamacpp_schema`` (the reply held to the verdicts' schema, one
verdict per step). The schema run is then repeated from scratch: every reply comes from the
judge's cache, the output is identical and the server gets no request. A 135M model is a poor
judge: the point is the whole path on a real server (chat template, JSON mode and schemas, reply
parsing, retries, abstentions with their reasons), not its accuracy.

Figures, per reply format: wrong solutions judged, located, abstained (by reason), located steps,
the server's requests, seconds per solution; and the rerun's seconds, requests and whether its
output is identical.

    pip install "llama-cpp-python[server]"   # builds llama.cpp from source (minutes)
    python benchmarks/llm_judge_server.py [--quick]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
GSM8K_TRAIN = ROOT.parent / "shared" / "data" / "gsm8k_train.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the llama.cpp server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the llama.cpp server did not answer within {timeout:.0f} s")


def stepdpo(*args: str, env: dict | None = None) -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "stepdpo.cli", "-q", *args], check=True, env=env)
    return time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--problems", type=int, default=None)
    ap.add_argument("--out", default="runs/bench_llm_judge")
    args = ap.parse_args()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise SystemExit('needs llama.cpp\'s server: pip install "llama-cpp-python[server]"') from None
    from stepdpo.default_model.smollm2 import gguf_path

    # sized to finish in about 8 minutes (--quick) and 13 (default) on two cores
    n_problems = args.problems or (8 if args.quick else 12)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = str(GSM8K_TRAIN) if GSM8K_TRAIN.exists() else "gsm8k"
    solutions = out / "solutions.jsonl"
    for f in out.glob("*.jsonl"):
        f.unlink()
    collect_s = stepdpo(
        "collect",
        "--model",
        "smollm2-135m-instruct",
        "--data",
        data,
        "--limit",
        str(n_problems),
        "--k",
        "2",
        "--max-new-tokens",
        "256",
        "--out",
        str(solutions),
    )
    n_wrong = sum(1 for line in solutions.read_text().splitlines() if line.strip())
    print(f"collect: {n_wrong} wrong solutions from {n_problems} problems in {collect_s:.0f} s", flush=True)

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = open(out / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1"]
        + ["--port", str(port), "--n_ctx", "4096", "--n_threads", str(os.cpu_count() or 2)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log_path = out / "server.log"
    results: dict[str, dict] = {}
    try:
        wait_ready(url, server)
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}  # no key: a local server

        def judge(fmt: str, tag: str) -> tuple[dict, str]:
            located, cache = out / f"located.{tag}.jsonl", out / f"judge_cache.{fmt}.jsonl"
            for f in (located, located.with_name(located.stem + ".done.jsonl"), *([cache] if tag == fmt else [])):
                f.unlink(missing_ok=True)
            before = _requests(log_path)
            seconds = stepdpo(
                *["locate", "--judge", "llm", "--llm-model", "smollm2", "--base-url", url, "--concurrency", "4"],
                *["--reply-format", fmt, "--in", str(solutions), "--out", str(located), "--cache", str(cache)],
                env=env,
            )
            rows = [json.loads(line) for line in located.read_text().splitlines() if line.strip()]
            reasons = collections.Counter(r["reason"] for r in rows if r["first_error_step"] is None)
            found = collections.Counter(r["first_error_step"] for r in rows if r["first_error_step"])
            res = {
                "judged": len(rows),
                "located": sum(found.values()),
                "abstained": dict(reasons),
                "located_steps": {str(k): v for k, v in sorted(found.items())},
                "server_requests": _requests(log_path) - before,
                "seconds_per_solution": seconds / max(1, len(rows)),
            }
            print(
                f"{fmt}: judged {res['judged']} of {n_wrong}, {res['located']} located "
                f"(steps {res['located_steps']}), abstained {dict(reasons)}; {res['server_requests']} requests, "
                f"{res['seconds_per_solution']:.1f} s per solution",
                flush=True,
            )
            # what was judged, without the per-run flag saying whether the reply came from the cache
            judged = [(r["id"], r["first_error_step"], r.get("reason"), r["evidence"].get("verdicts")) for r in rows]
            return res, judged

        results["json"], _ = judge("json", "json")
        results["llamacpp_schema"], first = judge("llamacpp_schema", "llamacpp_schema")
        # from scratch again (output and ledger removed), the schema judge's cache kept
        rerun, again = judge("llamacpp_schema", "rerun")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    result = {
        "model": "smollm2-135m-instruct (Q4_1 GGUF, llama.cpp server)",
        "problems": n_problems,
        "wrong_solutions": n_wrong,
        "by_reply_format": results,
        "rerun_server_requests": rerun["server_requests"],
        "rerun_identical": again == first,
    }
    print(f"rerun: {rerun['server_requests']} requests, identical {result['rerun_identical']}", flush=True)
    print(json.dumps(result))


def _requests(server_log: Path) -> int:
    """Chat requests the server has answered (uvicorn's access log lines)."""
    text = server_log.read_text(errors="replace") if server_log.exists() else ""
    return text.count("POST /v1/chat/completions")


if __name__ == "__main__":
    main()
