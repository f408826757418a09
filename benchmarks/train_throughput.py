"""Training throughput: ``stepdpo train`` against TRL's DPOTrainer on Step-DPO-shaped data.

Both trainers get the same model, the same pairs (prompts of 200 to 400 tokens, steps of 20 to 60
tokens, lengths varying as in real data), the same batch, learning rate, schedule and number of
steps, and, with LoRA, the same seeded adapter. TRL runs at its best setting for this comparison:
its own precomputed reference log-probs. Each run is a separate process (so that peak memory is
its own), ours and TRL's alternating. The harness is tests/trl_harness.py.

Models: by default a randomly initialised Qwen2 of ~26 M parameters (large enough that compute
dominates on a CPU), full fine-tuning; ``--model NAME`` any model folder or name, e.g.
``smollm2-135m-instruct`` (a real Llama architecture with a 49k vocabulary), trained in full and
with LoRA (``--lora R``; 0 for full fine-tuning only).

Figures, per mode (full, lora): pairs per second and peak memory (peak RSS growth over the loaded
model and data) of each, ``speedup`` (ours / TRL), ``peak_mem_ratio`` (ours / TRL),
``loss_max_abs_diff`` (the losses of the first steps, same initial weights and data; every step
sees the whole batch, so data order cannot differ), and ``token_ratio``, the speedup that prefix
sharing alone would give if time were proportional to tokens: (2P + C + R) / (P + C + R); per
trainer the spread of pairs/s over rounds, and ``flops``: the useful model FLOPs of a pair (the
policy's forward over P + C + R tokens with the LM head at the C + R completion positions, times 3
for full fine-tuning and 2 for LoRA, whose backward computes activation gradients only; the
reference is computed before timing) times pairs per second, over the measured FP32 matrix product
FLOP/s of the same cores (``share``, benchmarks/_flops.py). The same useful FLOPs are counted for
both trainers: TRL's second pass over the prompt is work it need not do.

    python benchmarks/train_throughput.py [--quick] [--model smollm2-135m-instruct]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))

from _child import run_child  # noqa: E402
from _flops import forward_flops, matmul_flops, model_shape, spread  # noqa: E402
from trl_harness import encode_like_trl, run_ours, run_trl  # noqa: E402


def make_model(folder: Path, seed: int = 0) -> None:
    """A randomly initialised Qwen2 (~25 M parameters) with the default model's tokenizer."""
    import torch
    from transformers import Qwen2ForCausalLM

    from stepdpo.default_model.build import tiny_config
    from stepdpo.models import load_tokenizer

    tok = load_tokenizer("default")
    torch.manual_seed(seed)
    cfg = tiny_config(
        len(tok),
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=2048,
    )
    Qwen2ForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)


WORDS = [
    "she",
    "has",
    "apples",
    "and",
    "gives",
    "away",
    "some",
    "more",
    "marbles",
    "then",
    "the",
    "number",
    "of",
    "cookies",
    "becomes",
    "times",
    "as",
    "large",
    "so",
    "there",
    "are",
    "left",
    "after",
    "getting",
    "step",
    "groups",
    "equal",
    "splits",
    "keeps",
    "one",
    "books",
    "eggs",
    "stickers",
]


def make_pairs(path: Path, n: int, model: str, seed: int = 0) -> dict:
    """Text pairs: prompt 200-400 tokens, chosen and rejected steps 20-60 tokens (``model``'s
    tokenizer counts)."""
    from stepdpo.models import load_tokenizer

    tok = load_tokenizer(model)
    rng = random.Random(seed)

    def text(lo: int, hi: int, lead: str = "") -> str:
        want, words = rng.randint(lo, hi), []
        while len(tok(lead + " ".join(words))["input_ids"]) < want:
            words.append(rng.choice(WORDS) if rng.random() < 0.8 else str(rng.randint(1, 99)))
        return lead + " ".join(words)

    rows, shared, copied, lengths = [], 0, 0, []
    for _ in range(n):
        row = {
            "prompt": text(200, 400) + "\n",
            "chosen": text(20, 60, "Step 1: "),
            "rejected": text(20, 60, "Step 1: "),
        }
        p, c, r = (len(encode_like_trl(tok, row)[k]) for k in range(3))
        rows.append(row)
        lengths.append((p, c, r))
        shared += p + c + r
        copied += 2 * p + c + r
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"token_ratio": copied / shared, "pairs": n, "lengths": lengths}


def pair_flops(model: str, lengths: list[tuple[int, int, int]], lora: bool) -> float:
    """The mean useful FLOPs of one pair's training step (see the module's docstring)."""
    shape = model_shape(model)
    total = 0.0
    for p, c, r in lengths:
        total += p * forward_flops(shape, p / 2, head=False)
        total += c * forward_flops(shape, p + c / 2) + r * forward_flops(shape, p + r / 2)
    return (2 if lora else 3) * total / len(lengths)


def child(which: str, model_dir: str, data: str, steps: int, batch: int, lr: float, lora_r: int) -> None:
    fn = run_ours if which == "ours" else run_trl
    print("RESULT " + json.dumps(fn(model_dir, data, steps, batch, lr, lora_r)), flush=True)


def compare(model_dir: str, data: Path, args: argparse.Namespace, lora_r: int) -> dict:
    """Alternating runs of both trainers in one mode (full fine-tuning, or LoRA of rank ``lora_r``)."""
    runs: dict[str, list[dict]] = {"ours": [], "trl": []}
    mode = f"lora r={lora_r}" if lora_r else "full"
    for rnd in range(args.rounds):
        for which in ("ours", "trl"):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                which,
                model_dir,
                str(data),
                str(args.steps),
                str(args.batch),
                str(args.lr),
                str(lora_r),
            ]
            res = run_child(cmd, f"{which} ({mode})")
            runs[which].append(res)
            print(
                f"{mode}, round {rnd + 1}, {which}: {res['pairs_per_s']:.2f} pairs/s, "
                f"peak +{res['peak_mem_mb']:.0f} MB, losses {[round(x, 5) for x in res['losses']]}",
                flush=True,
            )
    best = {k: max(r["pairs_per_s"] for r in v) for k, v in runs.items()}
    rates = {k: spread([r["pairs_per_s"] for r in v]) for k, v in runs.items()}
    mem = {k: min(r["peak_mem_mb"] for r in v) for k, v in runs.items()}
    n = min(len(runs["ours"][0]["losses"]), len(runs["trl"][0]["losses"]))
    diff = max(abs(a - b) for a, b in zip(runs["ours"][0]["losses"][:n], runs["trl"][0]["losses"][:n]))
    return {
        "speedup": best["ours"] / best["trl"],
        "loss_max_abs_diff": diff,
        "peak_mem_ratio": mem["ours"] / mem["trl"] if mem["trl"] > 0 else None,
        "pairs_per_s": best,
        "pairs_per_s_rounds": rates,
        "peak_mem_mb": mem,
        "loss_steps_compared": n,
        "losses": {k: v[0]["losses"] for k, v in runs.items()},
    }


# (steps, batch, rounds), sized to finish in about 15 minutes on two cores (--quick: under 5)
SIZES = {
    ("random", False): (6, 32, 2),
    ("random", True): (4, 16, 1),
    ("real", False): (4, 8, 1),
    ("real", True): (3, 4, 1),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default=None, help="a model folder or name (default: a random 26 M Qwen2)")
    ap.add_argument(
        "--lora",
        type=int,
        default=None,
        help="LoRA rank of the second mode, 0 for full fine-tuning only (default: 16 with --model, else 0)",
    )
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None, help="alternating runs of each trainer")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        which, model_dir, data, steps, batch, lr, lora_r = args.child
        return child(which, model_dir, data, int(steps), int(batch), float(lr), int(lora_r))
    kind = "real" if args.model else "random"
    steps, batch, rounds = SIZES[(kind, args.quick)]
    args.steps, args.batch, args.rounds = args.steps or steps, args.batch or batch, args.rounds or rounds
    lora_r = args.lora if args.lora is not None else (16 if args.model else 0)
    work = Path(tempfile.mkdtemp(prefix="stepdpo-bench-"))
    if args.model:
        from stepdpo.models import resolve_model_path

        model_dir = resolve_model_path(args.model)
    else:
        make_model(work / "model")
        model_dir = str(work / "model")
    info = make_pairs(work / "pairs.jsonl", args.batch, model_dir)
    modes = {"full": compare(model_dir, work / "pairs.jsonl", args, 0)}
    if lora_r:
        modes["lora"] = compare(model_dir, work / "pairs.jsonl", args, lora_r)
    peak = matmul_flops("fp32")
    for name, m in modes.items():
        m["share_of_token_ratio"] = m["speedup"] / info["token_ratio"]
        per_pair = pair_flops(model_dir, info["lengths"], lora=name == "lora")
        m["flops"] = {
            "per_pair": per_pair,
            "matmul_fp32_flops_per_s": peak,
            "achieved_flops_per_s": {k: per_pair * v for k, v in m["pairs_per_s"].items()},
            "share": {k: per_pair * v / peak for k, v in m["pairs_per_s"].items()},
        }
        print(
            f"{name}: speedup {m['speedup']:.2f}x (token ratio {info['token_ratio']:.2f}x), loss difference "
            f"{m['loss_max_abs_diff']:.2e}, peak memory ours/TRL {m['peak_mem_ratio']:.2f}; share of the FP32 "
            f"matrix product's {peak / 1e9:.0f} GFLOP/s: ours {100 * m['flops']['share']['ours']:.1f} %, "
            f"TRL {100 * m['flops']['share']['trl']:.1f} %",
            flush=True,
        )
    goal = 2.0 if args.model else 1.8
    goals = {}
    for name, m in modes.items():
        goals[f"{name}: speedup>={goal}"] = m["speedup"] >= goal
        goals[f"{name}: loss_max_abs_diff<=1e-3"] = m["loss_max_abs_diff"] <= 1e-3
        goals[f"{name}: peak_mem_ratio<=1.0"] = m["peak_mem_ratio"] is not None and m["peak_mem_ratio"] <= 1.0
    result = {
        "model": args.model or "random-qwen2-26m",
        "token_ratio": info["token_ratio"],
        "pair_tokens_mean": [sum(x) / len(x) for x in zip(*info["lengths"])],
        **modes["full"],
        "modes": modes,
        "steps": args.steps,
        "batch": args.batch,
        "lora_r": lora_r,
        "goals": goals,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
