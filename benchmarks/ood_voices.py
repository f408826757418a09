"""How far from the model's own distribution a reworded s_win lies (the demo's Table 4).

Takes the Step-DPO pairs of a finished ``stepdpo demo`` folder (seed 0), rewrites each s_win in
several voices, all correct by the task's checker, and prints the reference model's log-prob per
token of each, next to the model's own s_win; the demo's out-of-distribution arm uses the voice
``paraphrase``. The last line is one JSON object.

    python benchmarks/ood_voices.py --demo runs/demo [--pairs 100]
    python benchmarks/ood_voices.py --demo runs/demo-long
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from stepdpo.experiments.arms import ref_logp_per_token
from stepdpo.recordio import read_records
from stepdpo.tasks.arithmetic import CHAIN_LABELS, canonical_step, check_solution, running_values

VOICES = {  # other writers' wordings of one step, by form: story (default) and chain (long)
    "story": {
        "connective": "{said}, which gives {x} {op} {b} = {y} {item}.",
        "two sentences": "{said}. That makes {x} {op} {b} = {y} {item}.",
        "reason last": "Now there are {x} {op} {b} = {y} {item}, as {low}.",
    },
    "chain": {
        "spaces": "({l}) {op}{b}: {x} {op} {b} = {y}.",
        "connective": "({l}) {op}{b} gives {x}{op}{b}={y}.",
        "reason last": "{x}{op}{b}={y} by ({l}) {op}{b}.",
    },
}


def reworded(problem, k: int, template: str) -> str:
    meta = problem.meta
    values = running_values(meta)
    op, b = meta["ops"][k - 1]
    said = "" if meta.get("form") == "chain" else meta["texts"][k - 1].removeprefix("Then ").rstrip(".")
    body = template.format(
        l=CHAIN_LABELS[k - 1],
        x=values[k - 1],
        op=op,
        b=b,
        y=values[k],
        item=meta.get("item", ""),
        said=said[:1].upper() + said[1:],
        low=said,
    )
    text = f"Step {k}: {body}\n"
    return text + (f"The answer is \\boxed{{{values[k]}}}." if k == len(meta["ops"]) else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default="runs/demo", help="a finished `stepdpo demo` folder")
    ap.add_argument("--pairs", type=int, default=100, help="pairs of seed 0 to score")
    args = ap.parse_args()
    demo = Path(args.demo)
    results = json.loads((demo / "results.json").read_text())
    model = results["setting"]["model"]
    data = demo / "seed0" / "data"
    pairs = read_records(data / "pairs.jsonl", "step_pair")[0][: args.pairs]
    problems = {p.id: p for p in read_records(data / "problems.jsonl", "problem")[0]}
    form = "chain" if results["task"] == "long" else "story"
    sets = {"model's own s_win": pairs}
    voices = {"demo's paraphrase": None, **VOICES[form]}
    for name, template in voices.items():
        written = []
        for pair in pairs:
            problem, k = problems[pair.meta["problem_id"]], pair.meta["first_error_step"]
            step = (
                canonical_step(problem, k, style="paraphrase") if template is None else reworded(problem, k, template)
            )
            if check_solution(problem, pair.initial_reason_steps + step, partial=True).first_error_step is not None:
                raise AssertionError(f"voice {name!r} wrote a wrong step: {step!r}")
            written.append(replace(pair, chosen=step))
        sets[f"{name}: {written[0].chosen.strip()!r}"] = written
    out = dict(zip(sets, ref_logp_per_token(model, *sets.values())))
    for name, lp in out.items():
        print(f"{lp:7.2f} nats/token  {name}")
    print(json.dumps({"model": model, "pairs": len(pairs), "ref_logp_per_token": out}))


if __name__ == "__main__":
    main()
