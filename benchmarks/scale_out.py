"""Collect on one local process against a local Ray cluster with ``--workers`` workers (the actor
pool of ``--executor ray``, and Ray Data's of ``--executor ray-data``), on the same problems,
sampling settings and model, like with like:

- every way's time includes loading its model (the local process's load, each Ray worker's replica
  and actor start-up); only the cluster's own start (``ray.init``, once per machine) is apart;
- the same cores: the local process decodes on ``--workers`` threads, each Ray worker on one;
- ``--rounds`` rounds (3), the ways alternating within each, reported as median, min and max;
- the machine's state said beside the figures: "quiet" when under 10 % of its CPU time was busy in
  the 3 s before the run, else "loaded" (other work on the cores slows a multi-threaded local run
  far more than one-thread workers, so the two situations give different ratios).

Every way must write the same records as the local run (checked). ``--no-ray-data`` leaves the Ray
Data run out.

    python benchmarks/scale_out.py [--problems 64] [--k 4] [--workers 2] [--rounds 3] [--model default]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flops import spread  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="default")
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--ray-data", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import torch

    from stepdpo.generation import load_generator
    from stepdpo.pipeline.executors import LazyGenerator, RayDataExecutor, RayExecutor
    from stepdpo.pipeline.run import run_collect
    from stepdpo.problems import load_problems
    from stepdpo.stages.collect import CollectConfig

    problems = load_problems("synthetic", split="train", limit=args.problems)
    cfg = CollectConfig(k=args.k, max_new_tokens=args.max_new_tokens, keep_correct=True)
    tmp = Path(tempfile.mkdtemp())
    torch.set_num_threads(args.workers)  # the local process gets the cores the workers share, one each

    import psutil
    import ray

    # the machine's state: its CPU use over 3 s before anything starts (this process idle)
    busy_before = psutil.cpu_percent(interval=3.0)
    t = time.time()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ray_init = time.time() - t
    ray.data.DataContext.get_current().enable_progress_bars = False

    def local_run(out: Path):
        # the model load counts, as each Ray worker's does inside its stage
        gen = load_generator(args.model, backend="hf", batch_size=64)
        return run_collect(gen, problems, out, cfg)

    def ray_run(out: Path):
        gen = LazyGenerator(args.model, backend="hf", batch_size=64)
        return run_collect(gen, problems, out, cfg, executor=RayExecutor(workers=args.workers))

    def ray_data_run(out: Path):
        from stepdpo.generation.raydata import RayDataGenerator

        gen = RayDataGenerator(args.model, engine="hf", replicas=args.workers, batch_size=64)
        return run_collect(gen, problems, out, cfg, executor=RayDataExecutor())

    ways = {"local": local_run, "ray": ray_run} | ({"ray_data": ray_data_run} if args.ray_data else {})
    rates: dict[str, list[float]] = {w: [] for w in ways}
    same = {w: True for w in ways if w != "local"}
    n = 0
    for rnd in range(args.rounds):  # alternating, so that a change in the machine's load hits all alike
        for way, fn in ways.items():
            out = tmp / f"{way}-{rnd}.jsonl"
            t = time.time()
            summary = fn(out)
            secs = time.time() - t
            n = summary.rows_out
            rates[way].append(n / secs)
            if way != "local":
                same[way] &= out.read_text() == (tmp / f"local-{rnd}.jsonl").read_text()
            print(f"round {rnd + 1} {way}: {n} solutions in {secs:.1f} s ({n / secs:.2f}/s)", flush=True)
    ray.shutdown()
    quiet = busy_before < 10.0
    res = {
        "problems": args.problems,
        "solutions": n,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "machine": "quiet" if quiet else "loaded",
        "cpu_busy_before_pct": busy_before,
        "ray_init_s": round(ray_init, 2),
        "solutions_per_s": {w: spread(r) for w, r in rates.items()},
        "ray_over_local": spread([r / lo for r, lo in zip(rates["ray"], rates["local"])]),
        "same_records": same,
    }
    print(
        f"{'a quiet machine' if quiet else 'a LOADED machine'} ({busy_before:.0f} % of {os.cpu_count()} CPUs busy "
        f"before the run); ray cluster start {ray_init:.1f} s apart; model loads counted in every way"
    )
    for w, r in res["solutions_per_s"].items():
        print(f"{w}: median {r['median']:.2f} solutions/s ({r['min']:.2f} to {r['max']:.2f}, {r['rounds']} rounds)")
    print(f"same records as local: {same}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
