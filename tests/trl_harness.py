"""The TRL-parity harness: one training of ours and one of TRL's DPOTrainer on the same model, pairs,
batch, learning rate and schedule, with the losses, reward metrics, speed and peak memory of each.
tests/test_trl_parity.py checks the losses agree; benchmarks/train_throughput.py measures speed."""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path

METRICS = ("reward_accuracy", "reward_margin", "chosen_reward", "rejected_reward")
TRL_NAMES = ("accuracies", "margins", "chosen", "rejected")
TOKEN_STATS = ("entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy")  # same names in both


def encode_like_trl(tok, row: dict) -> tuple[list[int], list[int], list[int]]:
    """Prompt, chosen and rejected ids as TRL makes them: prompt + completion tokenized in one piece
    without special tokens, the completion from where it leaves the prompt's ids, with EOS appended
    (TRL adds it to non-chat completions)."""
    p = tok(row["prompt"], add_special_tokens=False)["input_ids"]
    pc = tok(row["prompt"] + row["chosen"], add_special_tokens=False)["input_ids"]
    pr = tok(row["prompt"] + row["rejected"], add_special_tokens=False)["input_ids"]
    assert pc[: len(p)] == p and pr[: len(p)] == p, "prompt tokens change at the boundary"
    return p, pc[len(p) :] + [tok.eos_token_id], pr[len(p) :] + [tok.eos_token_id]


def lora(model, r: int):
    """The same LoRA adapter (all linear layers, seeded) for both trainers."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    return get_peft_model(
        model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(model_dir: str, data: str, steps: int, batch: int, lr: float, lora_r: int = 0) -> dict:
    import torch
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.training.losses import make_loss
    from stepdpo.training.metrics import METRICS as TRAIN_METRICS
    from stepdpo.training.metrics import token_stat_means
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
    if lora_r:
        model = lora(model, lora_r)
    model.train()
    from stepdpo.training.packing import CompletionLogProbs

    model = CompletionLogProbs(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
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
            1 / len(enc),
            torch.device("cpu"),
            torch.float32,
        )
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(sums[0]) / len(enc))
        metrics.append({k: float(v) / len(enc) for k, v in zip(METRICS, sums.tolist()[1:])})
        metrics[-1].update(token_stat_means(sums.tolist()[len(TRAIN_METRICS) :]))
    secs = time.time() - t0
    return {
        "pairs_per_s": batch * (steps - 1) / secs,
        "peak_mem_mb": _rss_mb() - base,
        "losses": losses,
        "metrics": metrics,
    }


def run_trl(model_dir: str, data: str, steps: int, batch: int, lr: float, lora_r: int = 0) -> dict:
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
    if lora_r:
        model = lora(model, lora_r)
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
                state["metrics"][-1].update({k: float(logs[k]) for k in TOKEN_STATS})

    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[Clock()])
    trainer.train()
    secs = time.time() - state["t0"]
    return {
        "pairs_per_s": batch * (steps - 1) / secs,
        "peak_mem_mb": _rss_mb() - state["base"],
        "losses": state["losses"],
        "metrics": state["metrics"],
    }
