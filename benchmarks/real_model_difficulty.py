"""Where SmolLM2-135M-Instruct can learn from its own mistakes: its accuracy on the embedded
arithmetic stories by number of operations, before and after the demo's short SFT.

For each length (1 to 6 operations; the demo's problems have 3 to 6) it decodes ``--problems``
held-out stories of exactly that length, greedily and with ``--k`` samples at the demo's collection
temperature, under the chat template with the step-wise prompt, and reads every solution with the
task's exact checker. Figures per length and model: greedy and sampled accuracy, the share of
wrong sampled solutions whose first wrong step is after step 1 (only those give Step-DPO a correct
prefix to start from), steps per solution, and the share cut at the token limit. The models: the
packaged model as it is, and the demo's SFT of it (``--sft``: a folder; by default the demo's own
SFT model, built into ``--out`` if missing).

    python benchmarks/real_model_difficulty.py [--problems 20] [--k 4] [--sft FOLDER]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def measure(model: str, ops: int, problems: int, k: int, setting: dict, only: str = "both") -> dict:
    from stepdpo.generation.hf import HFGenerator
    from stepdpo.stages.evaluate import EvalConfig, evaluate
    from stepdpo.tasks import get_task
    from stepdpo.tasks.arithmetic import generate_problems
    from stepdpo.text.steps import split_steps

    task = get_task("synthetic")
    train = {p.problem for p in task.generate(task.train_size, seed=task.train_seed)}
    held = generate_problems(problems, seed=7000 + ops, min_steps=ops, max_steps=ops, exclude=train)
    gen = HFGenerator(model, batch_size=64, device="cpu", dtype="fp32")
    t = time.time()
    greedy = evaluate(gen, held, EvalConfig(max_new_tokens=setting["max_new_tokens"]))
    sampled = evaluate(
        gen,
        held,
        EvalConfig(
            max_new_tokens=setting["max_new_tokens"], temperature=setting["temperature"], top_p=setting["top_p"], n=k
        ),
    )
    samples = [s for r in sampled.rows for s in r["samples"]]
    wrong = [s for s in samples if s["first_error_step"] is not None]
    return {
        "ops": ops,
        "greedy_accuracy": greedy.summary["accuracy"],
        "sampled_accuracy": sampled.summary["accuracy"],
        "wrong_share": len(wrong) / len(samples),
        "wrong_after_step_1": sum(s["first_error_step"] > 1 for s in wrong) / max(len(wrong), 1),
        "steps_per_solution": sum(len(split_steps(s["completion"])[1]) for s in samples) / len(samples),
        "cut_at_limit": sum(s["finish_reason"] == "length" for s in samples) / len(samples),
        "seconds": round(time.time() - t, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=20, help="held-out problems per length")
    ap.add_argument("--k", type=int, default=4, help="samples per problem")
    ap.add_argument("--sft", default="", help="the SFT model folder (default: the demo's, built into --out)")
    ap.add_argument("--out", default="runs/real-model-difficulty")
    ap.add_argument("--lengths", default="1,2,3,4,5,6")
    args = ap.parse_args()
    from stepdpo.experiments.common import DemoConfig
    from stepdpo.experiments.starting import starting_model

    cfg = DemoConfig(model="smollm2-135m-instruct", out=args.out)
    st = cfg.setting
    sft = args.sft or starting_model(cfg, Path(args.out)).base_model
    rows = []
    for name, model in (("smollm2-135m-instruct", st["model"]), ("after SFT", sft)):
        for ops in map(int, args.lengths.split(",")):
            r = {"model": name, **measure(model, ops, args.problems, args.k, st)}
            rows.append(r)
            print(
                f"{name:22s} ops {ops}: greedy {100 * r['greedy_accuracy']:5.1f} %, sampled "
                f"{100 * r['sampled_accuracy']:5.1f} %, wrong {100 * r['wrong_share']:5.1f} % "
                f"(after step 1: {100 * r['wrong_after_step_1']:5.1f} %), steps {r['steps_per_solution']:.1f}, "
                f"cut {100 * r['cut_at_limit']:.0f} %  [{r['seconds']:.0f} s]",
                flush=True,
            )
    print(json.dumps({"problems_per_length": args.problems, "k": args.k, "sft_model": sft, "rows": rows}))


if __name__ == "__main__":
    main()
