"""Collect on one local process against a local Ray cluster with ``--workers`` workers (the actor
pool of ``--executor ray``, and Ray Data's of ``--executor ray-data``), on the same problems,
sampling settings and model.

Figures: solutions per second of each; for the local process, the model's loading time apart; for
Ray, the cluster's start-up (``ray.init``, once per run of a stage on a fresh machine) apart from
the stage, whose time includes starting the actors and loading a model replica in each (the
cost a short stage pays, and a long one amortizes). Both outputs must be the same records (checked;
the local process decodes on one thread per worker's share, as the Ray workers do).
``--no-ray-data`` leaves the Ray Data run out.

    python benchmarks/scale_out.py [--problems 64] [--k 4] [--workers 2] [--model default]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="default")
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--ray-data", action=argparse.BooleanOptionalAction, default=True)
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

    torch.set_num_threads(args.workers)  # the local process gets the cores the workers share
    t = time.time()
    gen = load_generator(args.model, backend="hf", batch_size=64)
    local_load = time.time() - t
    t = time.time()
    local = run_collect(gen, problems, tmp / "local.jsonl", cfg)
    local_s = time.time() - t
    del gen

    import ray

    t = time.time()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ray_init = time.time() - t
    t = time.time()
    remote = run_collect(
        LazyGenerator(args.model, backend="hf", batch_size=64),
        problems,
        tmp / "ray.jsonl",
        cfg,
        executor=RayExecutor(workers=args.workers),
    )
    ray_s = time.time() - t
    data = {}
    if args.ray_data:
        from stepdpo.generation.raydata import RayDataGenerator

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        t = time.time()
        rd = run_collect(
            RayDataGenerator(args.model, engine="hf", replicas=args.workers, batch_size=64),
            problems,
            tmp / "ray_data.jsonl",
            cfg,
            executor=RayDataExecutor(),
        )
        data_s = time.time() - t
        data = {
            "ray_data_stage_s": round(data_s, 2),
            "ray_data_solutions_per_s": round(rd.rows_out / data_s, 2),
            "ray_data_same_records": (tmp / "local.jsonl").read_text() == (tmp / "ray_data.jsonl").read_text(),
        }
    ray.shutdown()
    same = (tmp / "local.jsonl").read_text() == (tmp / "ray.jsonl").read_text()
    n = local.rows_out
    res = {
        "problems": args.problems,
        "solutions": n,
        "workers": args.workers,
        "local_load_s": round(local_load, 2),
        "local_stage_s": round(local_s, 2),
        "local_solutions_per_s": round(n / local_s, 2),
        "ray_init_s": round(ray_init, 2),
        "ray_stage_s": round(ray_s, 2),
        "ray_solutions_per_s": round(remote.rows_out / ray_s, 2),
        "speedup_without_ray_start": round(local_s / ray_s, 2),
        "same_records": same,
        **data,
    }
    print(
        f"local: {n} solutions in {local_s:.1f} s ({res['local_solutions_per_s']}/s; model load {local_load:.1f} s)\n"
        f"ray, {args.workers} workers: {remote.rows_out} in {ray_s:.1f} s ({res['ray_solutions_per_s']}/s; "
        f"cluster start {ray_init:.1f} s apart); same records: {same}"
    )
    if data:
        print(
            f"ray data, {args.workers} replicas: {data['ray_data_stage_s']} s "
            f"({data['ray_data_solutions_per_s']}/s); same records: {data['ray_data_same_records']}"
        )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
