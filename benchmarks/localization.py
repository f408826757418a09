"""Localization and sampling benchmark on the embedded default (tiny model, synthetic task).

Ground truth is the task's exact step checker. Measures:
- first_error_accuracy: how often the rollout judge (binary search) finds the checker's first
  wrong step, over the errors it locates; coverage: the share it locates (it abstains where the
  model never solves the problem from scratch); and the accuracy counting abstentions as wrong;
- rollout_ratio: rollouts spent by binary search / by a linear scan (i = 1, 2, ... until the first
  unrecoverable prefix) at the same m, same early stopping; also against Math-Shepherd's full
  per-step scan;
- sampling throughput of collect and rectify (generated tokens per second), and what encoding the
  prompt once for n samples saves against copying it n times (time and prefill tokens).

    python benchmarks/localization.py [--quick] [--m 8] [--problems 300]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stepdpo.collect import CollectConfig, collect_chunk  # noqa: E402
from stepdpo.data import load_problems  # noqa: E402
from stepdpo.generation import SamplingConfig  # noqa: E402
from stepdpo.generation.hf import HFGenerator  # noqa: E402
from stepdpo.locate.rollout import RolloutJudge  # noqa: E402
from stepdpo.locate.verifier import VerifierJudge  # noqa: E402
from stepdpo.modeling import load_model, load_tokenizer  # noqa: E402
from stepdpo.prompts import generation_prompt  # noqa: E402
from stepdpo.rectify import RectifyConfig, rectify_chunk  # noqa: E402


def timed(fn):
    t = time.time()
    out = fn()
    return out, time.time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer problems; finishes in a few minutes on 2 cores")
    ap.add_argument("--problems", type=int, default=400)
    ap.add_argument("--m", type=int, default=8, help="rollouts per prefix check")
    ap.add_argument("--max-solutions", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=1.0, help="rollout temperature")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.quick:
        args.problems, args.max_solutions = 120, 80
    model, tok = load_model("default", dtype="fp32", device="cpu"), load_tokenizer("default")
    gen = HFGenerator(model, tok, batch_size=128)
    problems = load_problems("synthetic", split="train", limit=args.problems, seed=4242 + args.seed)

    # error collection, and its sampling throughput
    ccfg = CollectConfig(k=4, temperature=0.8, max_new_tokens=200, seed=args.seed)
    before = dict(gen.stats)
    results, t_collect = timed(lambda: [r for i in range(0, len(problems), 32)
                                        for r in collect_chunk(gen, problems[i : i + 32], ccfg)])
    collect_tokens = gen.stats["generated_tokens"] - before["generated_tokens"]
    wrong = [s for r in results for s in r.records]
    truth = {e.solution.id: e.first_error_step for e in VerifierJudge().locate(wrong)}
    sols = [s for s in wrong if truth[s.id] is not None][: args.max_solutions]
    print(f"collect: {len(problems)} problems x 4 samples, {len(wrong)} wrong, {len(sols)} used; "
          f"{collect_tokens / t_collect:.0f} tokens/s", flush=True)

    # rollout localization: binary search against linear scans, same m
    runs = {}
    for search in ("binary", "linear", "full"):
        judge = RolloutJudge(gen, m=args.m, temperature=args.temperature, max_new_tokens=200, search=search,
                             seed=args.seed)
        done, secs = timed(lambda: [e for i in range(0, len(sols), 64) for e in judge.locate(sols[i : i + 64])])
        located = [e for e in done if e.first_error_step is not None]
        right = sum(e.first_error_step == truth[e.solution.id] for e in located)
        spent = sum(e.evidence["rollouts"] for e in done)
        runs[search] = {"first_error_accuracy": right / max(1, len(located)), "coverage": len(located) / len(done),
                        "accuracy_counting_abstentions_wrong": right / len(done),
                        "rollouts_per_solution": spent / len(done), "seconds": secs}
        print(f"rollout/{search}: accuracy {right / max(1, len(located)):.3f} on the {len(located)} located "
              f"(coverage {len(located) / len(done):.2f}), {spent / len(done):.1f} rollouts per solution, {secs:.0f} s",
              flush=True)
    # rectification throughput
    from stepdpo.records import LocatedError

    errs = [LocatedError(s, truth[s.id], "verifier") for s in sols[:64]]
    before = dict(gen.stats)
    _, t_rect = timed(lambda: list(rectify_chunk(gen, errs, RectifyConfig(n=8, max_new_tokens=200, seed=args.seed))))
    rect_tokens = gen.stats["generated_tokens"] - before["generated_tokens"]

    # prompt encoded once for n samples, against copied n times
    prompts = [generation_prompt(p.problem)[0] for p in problems[:32]]
    cfg = SamplingConfig(n=8, temperature=0.8, max_new_tokens=40, seed=1)
    shared = HFGenerator(model, tok, batch_size=256)
    copied = HFGenerator(model, tok, batch_size=256, share_prompt=False)
    timings = {"shared": [], "copied": []}
    for _ in range(3):  # alternate, keep the best of each
        for name, g in (("shared", shared), ("copied", copied)):
            timings[name].append(timed(lambda: g.generate(prompts, cfg))[1])
    share = {"shared_s": min(timings["shared"]), "copied_s": min(timings["copied"]),
             "prefill_tokens_shared": shared.stats["prefill_tokens"] // 3,
             "prefill_tokens_copied": copied.stats["prefill_tokens"] // 3}
    share["time_saved_fraction"] = 1 - share["shared_s"] / share["copied_s"]
    share["prefill_saved_fraction"] = 1 - share["prefill_tokens_shared"] / share["prefill_tokens_copied"]

    result = {
        "solutions": len(sols),
        "m": args.m,
        "first_error_accuracy": runs["binary"]["first_error_accuracy"],
        "coverage": runs["binary"]["coverage"],
        "accuracy_counting_abstentions_wrong": runs["binary"]["accuracy_counting_abstentions_wrong"],
        "rollout_ratio": runs["binary"]["rollouts_per_solution"] / runs["linear"]["rollouts_per_solution"],
        "rollout_ratio_vs_full_scan": runs["binary"]["rollouts_per_solution"] / runs["full"]["rollouts_per_solution"],
        "rollouts_per_solution": {k: v["rollouts_per_solution"] for k, v in runs.items()},
        "accuracy_by_search": {k: v["first_error_accuracy"] for k, v in runs.items()},
        "collect_tokens_per_s": collect_tokens / t_collect,
        "rectify_tokens_per_s": rect_tokens / t_rect,
        "prompt_sharing": share,
        "goals": {"first_error_accuracy>=0.90": runs["binary"]["first_error_accuracy"] >= 0.90,
                  "rollout_ratio<=0.5": runs["binary"]["rollouts_per_solution"]
                  / runs["linear"]["rollouts_per_solution"] <= 0.5},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
