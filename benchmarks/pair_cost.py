"""What a step pair costs to make: seconds of data work per pair and per prefix, by rectification rule.

One error collection (the demo's seed-0 collection problems of the setting, k samples each, the
collection sampling of the setting), the exact checker locating, then rectification of the same
located errors twice: under the paper's rule (n whole continuations, kept when they reach the gold
answer; ``--rule answer``) and under the step rule (n samples of step k alone, kept when the
checker passes them; ``--rule step``), each with the same n and sampling. Reports, per rule: the
seconds of each stage, the errors that gave a pair, pairs with one pair per error and with up to
``--per-error`` (the step rule's rejected steps as extra s_lose), and the seconds per pair and per
prefix (collection and rectification together; localization by the checker costs nothing). Also
counts the free pairs the collection itself holds: a correct sample of the same problem that
repeats s1..s(k-1) word for word and whose step k the checker passes.

    python benchmarks/pair_cost.py --model runs/sm/sft-KEY [--setting smollm2] [--problems 64]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stepdpo.experiments.arms import problem_sets
from stepdpo.experiments.common import DemoConfig
from stepdpo.generation.hf import HFGenerator
from stepdpo.models import load_model, load_tokenizer
from stepdpo.pipeline.run import run_build, run_collect, run_locate, run_rectify
from stepdpo.recordio import read_records
from stepdpo.stages.collect import CollectConfig
from stepdpo.stages.locate import make_judge
from stepdpo.stages.pairs import BuildConfig
from stepdpo.stages.rectify import RectifyConfig, _step_verdict
from stepdpo.text.steps import step_body


def harvestable(folder: Path) -> int:
    """Located errors for which a correct collection sample of the same problem repeats the prior
    steps word for word and takes a step k the checker passes (a pair at no sampling cost)."""
    located, _ = read_records(folder / "located.jsonl", "located_error")
    errors = [e for e in located if e.first_error_step]
    right, _ = read_records(folder / "errors.jsonl", "solution")
    right = [s for s in right if s.correct]
    found = 0
    for e in errors:
        k, prior = e.first_error_step, [step_body(s) for s in e.prior_steps]
        for s in right:
            if s.problem_id != e.solution.problem_id or len(s.steps) < k:
                continue
            same_prefix = [step_body(x) for x in s.steps[: k - 1]] == prior
            other = step_body(s.steps[k - 1]) != step_body(e.rejected_step or "")
            if same_prefix and other and _step_verdict(e, s.steps[k - 1]) is None:
                found += 1
                break
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the model to sample from (the demo's SFT model)")
    ap.add_argument("--setting", default="smollm2", help="the demo setting whose problems and sampling to use")
    ap.add_argument("--problems", type=int, default=64, help="collection problems")
    ap.add_argument("--k", type=int, default=None, help="samples per problem (default: the setting's)")
    ap.add_argument("--n", default="", help="continuations per error, comma-separated (default: the setting's)")
    ap.add_argument("--per-error", type=int, default=4, help="pairs per error at most, for the multi-pair count")
    ap.add_argument("--out", default="", help="keep the stage files here (default: a temporary folder)")
    args = ap.parse_args()

    model = "smollm2-135m-instruct" if args.setting == "smollm2" else ""
    cfg = (
        DemoConfig(model=model, collect_problems=args.problems)
        if model
        else DemoConfig(task=args.setting, collect_problems=args.problems)
    )
    st = cfg.setting
    k = args.k or st["k"]
    ns = [int(x) for x in args.n.split(",")] if args.n else [st["n"]]
    problems = problem_sets(cfg, [0])["collect"][0]
    sampling = {"max_new_tokens": st["max_new_tokens"], "temperature": st["temperature"], "top_p": st["top_p"]}
    folder = Path(args.out or tempfile.mkdtemp(prefix="pair_cost_"))
    folder.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(args.model)
    gen = HFGenerator(load_model(args.model, dtype="fp32", device="cpu"), tok, batch_size=128)

    t = time.time()
    run_collect(gen, problems, folder / "errors.jsonl", CollectConfig(k=k, keep_correct=True, seed=0, **sampling))
    collect_s = time.time() - t
    loc = run_locate(make_judge("verifier"), folder / "errors.jsonl", folder / "located.jsonl")
    errors = int(loc.counters.get("located", 0))
    out = {
        "setting": args.setting,
        "problems": len(problems),
        "k": k,
        "n": ns,
        "collect_s": round(collect_s, 1),
        "located_errors": errors,
        "harvestable_from_collection": harvestable(folder),
    }
    names = [f"{rule}_n{n}" for n in ns for rule in ("answer", "step")]
    for name in names:
        rule, n = name.split("_n")[0], int(name.split("_n")[1])
        t = time.time()
        cfg_r = RectifyConfig(n=n, seed=1, rule=rule, **sampling)
        run_rectify(gen, folder / "located.jsonl", folder / f"rect_{name}.jsonl", cfg_r)
        rect_s = time.time() - t
        build = {"max_per_problem": 4, "recheck": True}
        one = run_build(
            folder / f"rect_{name}.jsonl", folder / f"pairs_{name}.jsonl", BuildConfig(max_per_error=1, **build)
        )
        many = run_build(
            folder / f"rect_{name}.jsonl",
            folder / f"pairs_{name}_many.jsonl",
            BuildConfig(max_per_error=args.per_error, **build),
        )
        prefixes, total = one.rows_out, collect_s + rect_s
        out[name] = {
            "rectify_s": round(rect_s, 1),
            "rectify_s_per_error": round(rect_s / max(errors, 1), 2),
            "errors_with_a_pair": prefixes,
            f"pairs_up_to_{args.per_error}_per_error": many.rows_out,
            "s_per_prefix": round(total / prefixes, 2) if prefixes else None,
            f"s_per_pair_up_to_{args.per_error}": round(total / many.rows_out, 2) if many.rows_out else None,
            "rectify_share_of_data_s": round(rect_s / total, 3),
        }
        print(f"{name}: {json.dumps(out[name])}", flush=True)
    base = out[names[0]]["s_per_prefix"]  # the paper's rule at the first n
    for name in names:
        if base and out[name]["s_per_prefix"]:
            out[name]["cost_per_prefix_vs_first"] = round(out[name]["s_per_prefix"] / base, 3)
    print(
        f"collection: {collect_s:.0f} s for {len(problems)} problems, {errors} located errors; "
        f"{out['harvestable_from_collection']} could be paired from the collection's own correct samples"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
