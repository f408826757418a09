"""Training throughput: ``stepdpo train`` against TRL's DPOTrainer on Step-DPO-shaped data.

Both trainers get the same model (a Qwen2 of ~26 M parameters, large enough that compute
dominates on a CPU), the same pairs (prompts of 200 to 400 tokens, steps of 20 to 60 tokens,
lengths varying as in real data), the same batch, learning rate, schedule and number of steps.
TRL runs at its best setting for this comparison: its own precomputed reference log-probs. Each
run is a separate process (so that peak memory is its own), ours and TRL's alternating.

Figures: pairs per second and peak memory (peak RSS growth over the loaded model and data) of
each, ``speedup`` (ours / TRL), ``peak_mem_ratio`` (ours / TRL), ``loss_max_abs_diff`` (the
losses of the first steps, same initial weights and data; every step sees the whole batch, so
data order cannot differ), and the ideal speedup from prefix sharing alone, the token ratio
(2P + C + R) / (P + C + R).

    python benchmarks/train_throughput.py [--quick]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


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


METRICS = ("reward_accuracy", "reward_margin", "chosen_reward", "rejected_reward")
TRL_NAMES = ("accuracies", "margins", "chosen", "rejected")
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


def make_pairs(path: Path, n: int, seed: int = 0) -> dict:
    """Text pairs: prompt 200-400 tokens, chosen and rejected steps 20-60 tokens (tokenizer counts)."""
    from stepdpo.models import load_tokenizer

    tok = load_tokenizer("default")
    rng = random.Random(seed)

    def text(lo: int, hi: int, lead: str = "") -> str:
        want, words = rng.randint(lo, hi), []
        while len(tok(lead + " ".join(words))["input_ids"]) < want:
            words.append(rng.choice(WORDS) if rng.random() < 0.8 else str(rng.randint(1, 99)))
        return lead + " ".join(words)

    rows, shared, copied = [], 0, 0
    for _ in range(n):
        row = {
            "prompt": text(200, 400) + "\n",
            "chosen": text(20, 60, "Step 1: "),
            "rejected": text(20, 60, "Step 1: "),
        }
        p, c, r = (len(encode_like_trl(tok, row)[k]) for k in range(3))
        rows.append(row)
        shared += p + c + r
        copied += 2 * p + c + r
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"ideal_speedup": copied / shared, "pairs": n}


def encode_like_trl(tok, row: dict) -> tuple[list[int], list[int], list[int]]:
    """Prompt, chosen and rejected ids as TRL makes them: completions are where prompt+completion
    tokenization leaves the prompt's, with EOS appended (TRL adds it to non-chat completions)."""
    p = tok(row["prompt"])["input_ids"]
    pc, pr = tok(row["prompt"] + row["chosen"])["input_ids"], tok(row["prompt"] + row["rejected"])["input_ids"]
    assert pc[: len(p)] == p and pr[: len(p)] == p, "prompt tokens change at the boundary"
    return p, pc[len(p) :] + [tok.eos_token_id], pr[len(p) :] + [tok.eos_token_id]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(model_dir: str, data: str, steps: int, batch: int, lr: float) -> dict:
    import torch
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.training.losses import make_loss
    from stepdpo.training.packing import EncodedPair
    from stepdpo.training.packing import micro_batches as _batches
    from stepdpo.training.reference import reference_logps
    from stepdpo.training.trainer import TrainConfig, train_step

    tok = load_tokenizer(model_dir)
    rows = [json.loads(line) for line in Path(data).read_text().splitlines()][:batch]
    enc = [EncodedPair(*encode_like_trl(tok, r)) for r in rows]
    model = load_model(model_dir, dtype="fp32", device="cpu")
    cfg = TrainConfig(global_batch=batch, max_seq_len=1024, rows_per_micro=4)
    acc = Accelerator(cpu=True)
    ref = reference_logps(model, enc, cfg, torch.device("cpu"), torch.float32)
    model.train()
    from stepdpo.training.packing import CompletionLogProbs

    model = CompletionLogProbs(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = get_cosine_schedule_with_warmup(opt, 0, steps)
    loss_fn = make_loss("sigmoid", 0.4)
    base = _rss_mb()
    losses, metrics, t0 = [], [], None
    for step in range(steps):
        if step == 1:
            t0 = time.time()  # the first step warms up allocators; time the rest
        sums = train_step(
            model,
            loss_fn,
            _batches(enc, list(range(len(enc))), cfg),
            ref,
            cfg,
            acc,
            len(enc),
            torch.device("cpu"),
            torch.float32,
        )
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(sums[0]) / len(enc))
        metrics.append({k: float(v) / len(enc) for k, v in zip(METRICS, sums.tolist()[1:])})
    secs = time.time() - t0
    return {
        "pairs_per_s": batch * (steps - 1) / secs,
        "peak_mem_mb": _rss_mb() - base,
        "losses": losses,
        "metrics": metrics,
    }


def run_trl(model_dir: str, data: str, steps: int, batch: int, lr: float) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from stepdpo.models import load_tokenizer

    tok = load_tokenizer(model_dir)
    rows = [json.loads(line) for line in Path(data).read_text().splitlines()][:batch]
    # TRL appends EOS to non-conversational completions; it is part of what it trains on
    ds = Dataset.from_list(rows)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    out = tempfile.mkdtemp()
    args = DPOConfig(
        output_dir=out,
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        beta=0.4,
        loss_type=["sigmoid"],
        precompute_ref_log_probs=True,
        precompute_ref_batch_size=16,
        max_length=None,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        dataloader_drop_last=False,
        bf16=False,
        gradient_checkpointing=False,
    )
    state = {"losses": [], "metrics": [], "t0": None, "base": None}

    class Clock(TrainerCallback):
        def on_step_begin(self, a, s, c, **kw):
            if s.global_step == 0:
                state["base"] = _rss_mb()
            if s.global_step == 1:
                state["t0"] = time.time()

        def on_log(self, a, s, c, logs=None, **kw):
            if logs and "loss" in logs:
                state["losses"].append(float(logs["loss"]))
                state["metrics"].append({k: float(logs[f"rewards/{t}"]) for k, t in zip(METRICS, TRL_NAMES)})

    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[Clock()])
    trainer.train()
    secs = time.time() - state["t0"]
    return {
        "pairs_per_s": batch * (steps - 1) / secs,
        "peak_mem_mb": _rss_mb() - state["base"],
        "losses": state["losses"],
        "metrics": state["metrics"],
    }


def child(which: str, model_dir: str, data: str, steps: int, batch: int, lr: float) -> None:
    fn = run_ours if which == "ours" else run_trl
    print("RESULT " + json.dumps(fn(model_dir, data, steps, batch, lr)), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each trainer")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        which, model_dir, data, steps, batch, lr = args.child
        return child(which, model_dir, data, int(steps), int(batch), float(lr))
    if args.quick:
        args.steps, args.batch, args.rounds = 4, 16, 1
    work = Path(tempfile.mkdtemp(prefix="stepdpo-bench-"))
    make_model(work / "model")
    info = make_pairs(work / "pairs.jsonl", args.batch)
    runs: dict[str, list[dict]] = {"ours": [], "trl": []}
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    for rnd in range(args.rounds):
        for which in ("ours", "trl"):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                which,
                str(work / "model"),
                str(work / "pairs.jsonl"),
                str(args.steps),
                str(args.batch),
                str(args.lr),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = next((line for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
            if line is None:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                raise SystemExit(f"{which} run failed")
            res = json.loads(line[7:])
            runs[which].append(res)
            print(
                f"round {rnd + 1} {which}: {res['pairs_per_s']:.2f} pairs/s, peak +{res['peak_mem_mb']:.0f} MB, "
                f"losses {[round(x, 5) for x in res['losses']]}",
                flush=True,
            )
    best = {k: max(r["pairs_per_s"] for r in v) for k, v in runs.items()}
    mem = {k: min(r["peak_mem_mb"] for r in v) for k, v in runs.items()}
    n = min(len(runs["ours"][0]["losses"]), len(runs["trl"][0]["losses"]))
    diff = max(abs(a - b) for a, b in zip(runs["ours"][0]["losses"][:n], runs["trl"][0]["losses"][:n]))
    result = {
        "speedup": best["ours"] / best["trl"],
        "loss_max_abs_diff": diff,
        "peak_mem_ratio": mem["ours"] / mem["trl"] if mem["trl"] > 0 else None,
        "ideal_speedup": info["ideal_speedup"],
        "pairs_per_s": best,
        "peak_mem_mb": mem,
        "steps": args.steps,
        "batch": args.batch,
        "loss_steps_compared": n,
        "losses": {k: v[0]["losses"] for k, v in runs.items()},
    }
    result["goals"] = {
        "speedup>=1.8": result["speedup"] >= 1.8,
        "loss_max_abs_diff<=1e-3": diff <= 1e-3,
        "peak_mem_ratio<=1.0": result["peak_mem_ratio"] is not None and result["peak_mem_ratio"] <= 1.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
