"""``stepdpo train``: Step-DPO (eq. 2) on step pairs, or vanilla DPO on whole-solution pairs.

One training step, top to bottom (:func:`train_step`): pack this step's pairs with prefix sharing,
compute the policy's log-probs of chosen and rejected completions, read the reference's from the
precomputed table, apply the loss, step the optimizer. The reference log-probs are computed once,
before training, by the same model in eval mode, so no reference model is in memory while training.

Multi-process training goes through accelerate (``accelerate launch`` or ``torchrun``), with
DeepSpeed ZeRO-3 or FSDP from its config files (see ``configs/``).
"""

from __future__ import annotations

import functools
import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from stepdpo.options import load_yaml, option
from stepdpo.progress import Bar, log
from stepdpo.recordio import exclusive, read_records
from stepdpo.records import StepPair, content_id
from stepdpo.text.prompts import FORMATS
from stepdpo.training.checkpoints import resume_checkpoint, save_checkpoint, save_model
from stepdpo.training.distributed import make_accelerator, rank_share, rank_slice
from stepdpo.training.freeze import freeze_below, wrap_lora
from stepdpo.training.losses import make_loss, sft_loss
from stepdpo.training.metrics import LOGGED, N_SUMS, metric_means, metric_sums
from stepdpo.training.packing import (
    CompletionLogProbs,
    PackedBatch,
    encode_pairs,
    micro_batches,
    read_val_sets,
)
from stepdpo.training.reference import rank_index, reference_tables
from stepdpo.training.trackers import ReportOptions, Trackers, chosen, default_run_name


@dataclass
class TrainConfig(ReportOptions):
    """Options of ``stepdpo train``: the command line, a YAML file (``--config``) and Python alike.

    The defaults are the paper's settings for 7B models (Sec. 4.1): AdamW, lr 5e-7, cosine decay
    after a 0.1 warmup, global batch 128, beta 0.4, 8 epochs.
    """

    data: str = option(
        "",
        "Pairs in the Step-DPO schema (JSONL, JSON or Parquet; this project's layout or the "
        "released Math-Step-DPO-10K one).",
    )
    out: str = option("runs/train", "Output folder: model, logs, plots, checkpoints.")
    model: str = option("default", "The model to train, also the reference: a folder, a hub id or a name.")
    pair_format: str = option(
        "step",
        "step: Step-DPO on s_win / s_lose, no EOS after a step (eq. 2); dpo: vanilla "
        "DPO on whole continuations, with EOS.",
        choices=("step", "dpo"),
    )
    add_eos: bool | None = option(None, "Override the pair format's EOS rule.")
    val_data: str | None = option(None, "A held-out pair file; without one, --val-fraction of --data is held out.")
    val_sets: list[str] = option(
        [],
        "More validation pair files scored at every validation pass, each NAME=FORMAT:FILE (FORMAT step or "
        "dpo, as --pair-format), logged as eval_NAME/...; runs of different arms scored on the same pairs.",
    )
    val_fraction: float = option(0.05, "Share of the pairs held out for the validation curves.", min=0.0, max=0.9)
    loss: str = option(
        "sigmoid", "sigmoid (DPO / Step-DPO), robust, hinge or ipo.", choices=("sigmoid", "robust", "hinge", "ipo")
    )
    beta: float = option(0.4, "The KL weight beta of eq. 2 (paper: 0.4, 0.5 for 72B).", min=1e-9)
    label_smoothing: float = option(
        0.0, "eps of cDPO (sigmoid) or robust DPO (robust at 0 is the sigmoid loss).", min=0.0, max=0.499
    )
    sft_weight: float = option(0.0, "Weight of an extra NLL term on the chosen completion (0: off).", min=0.0)
    lr: float = option(5e-7, "Peak learning rate (paper: 5e-7).", min=0.0)
    warmup_ratio: float = option(0.1, "Linear warmup share of the steps, then cosine decay.", min=0.0, max=1.0)
    epochs: float = option(8.0, "Passes over the data (paper: 8 for 7B, 4 for 30B and up).", min=1e-9)
    global_batch: int = option(128, "Pairs per optimizer step, all processes together (paper: 128).", min=1)
    max_seq_len: int = option(2048, "Tokens per packed row.", min=16)
    rows_per_micro: int = option(4, "Packed rows per forward pass (gradient accumulation covers the rest).", min=1)
    max_prompt_tokens: int = option(1024, "Prompt tokens kept (the last ones).", min=1)
    max_completion_tokens: int = option(512, "Completion tokens kept (the first ones).", min=1)
    prefix_sharing: bool = option(True, "Pack prompt, chosen and rejected in one sequence (else two).")
    prompt_format: str = option(
        "auto",
        "auto (chat when the tokenizer has a template), base, chat, or a named "
        "template of the released data's trainer: alpaca, deepseek-math, qwen2-boxed.",
        choices=FORMATS,
    )
    dtype: str = option(
        "auto",
        "auto (bf16 on a GPU that supports it, else fp32), bf16 or fp32.",
        choices=("auto", "bf16", "fp16", "fp32"),
    )
    gradient_checkpointing: bool = option(False, "Recompute activations in backward to save memory.")
    trainable_layers: int = option(
        0,
        "Train only the last N decoder layers and the final norm (0: all parameters); backward stops "
        "at the first trained layer. Not with --lora-r.",
        min=0,
    )
    lora_r: int = option(0, "LoRA rank (0: full fine-tuning).", min=0)
    lora_alpha: int = option(16, "LoRA scaling.", min=1)
    lora_dropout: float = option(0.05, "LoRA dropout.", min=0.0, max=0.99)
    weight_decay: float = option(0.0, "AdamW weight decay.", min=0.0)
    max_grad_norm: float = option(1.0, "Gradient clipping (0: off).", min=0.0)
    log_every: int = option(1, "Optimizer steps between training log lines.", min=1)
    eval_every: int = option(0, "Optimizer steps between validation passes (0: only at the end).", min=0)
    eval_on_start: bool = option(
        False, "A validation pass before the first step, logged at step 0 (the Trainer's eval_on_start)."
    )
    save_every: int = option(0, "Optimizer steps between checkpoints (0: only at the end).", min=0)
    resume: bool = option(False, "Continue from the last checkpoint in --out.")
    max_steps: int = option(0, "Stop after this many optimizer steps (0: all epochs).", min=0)
    seed: int = option(0, "Data order and initialisation seed.")
    run_name: str | None = option(
        None, "The run's name in the trackers (default: the output folder's name and a hash of its path)."
    )
    push_to_hub: str | None = option(
        None, "After training, upload the model folder with its card to this Hub repo (OWNER/NAME; token: HF_TOKEN)."
    )
    ref_cache: str | None = option(
        None,
        "File of cached reference log-probs shared between runs (default "
        "OUT/ref_logps.json), keyed by a hash of the weights and of each pair's tokens.",
    )

    @property
    def eos(self) -> bool:
        return self.add_eos if self.add_eos is not None else self.pair_format == "dpo"

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Options from a YAML file, then ``overrides`` (None values ignored)."""
        return load_yaml(path, cls, {k: v for k, v in overrides.items() if v is not None})


def split_pairs(pairs: list[StepPair], fraction: float, seed: int) -> tuple[list[StepPair], list[StepPair]]:
    """A deterministic held-out split by pair content (stable when the file grows)."""
    if fraction <= 0:
        return pairs, []
    val = [p for p in pairs if int(content_id(p.id, seed), 16) % 10_000 < fraction * 10_000]
    ids = {p.id for p in val}
    return [p for p in pairs if p.id not in ids], val


def pairmetric_means(loss_fn, pc, pr, ref: torch.Tensor, batch: PackedBatch, cfg: TrainConfig):
    """Per-pair total loss and rewards for one micro-batch."""
    counts = batch.tokens_per_completion.to(pc.device)
    nc, nr = counts[0::2].to(pc.dtype), counts[1::2].to(pc.dtype)
    rc, rr = ref[:, 0].to(pc), ref[:, 1].to(pc)
    losses, cr, rj = loss_fn(pc, pr, rc, rr, nc, nr)
    if cfg.sft_weight:
        losses = losses + cfg.sft_weight * sft_loss(pc, nc)
    return losses, cr, rj


def train_step(model, loss_fn, micro, ref_table, cfg, accelerator, weight: float, device, dtype) -> torch.Tensor:
    """One optimizer step's forward and backward passes over this process's micro-batches, each pair's
    loss scaled by ``weight`` (:func:`rank_share`); returns summed metrics over its pairs (zero at
    weight 0)."""
    sums = torch.zeros(N_SUMS, device=device, dtype=torch.float64)
    for j, (order, batch) in enumerate(micro):
        sync = j == len(micro) - 1
        ctx = accelerator.no_sync(model) if not sync and accelerator.num_processes > 1 else nullcontext()
        with ctx:
            pc, pr, stats = model(batch.to(device, dtype))
            losses, cr, rj = pairmetric_means(loss_fn, pc, pr, ref_table[order], batch, cfg)
            accelerator.backward(losses.sum() * weight)
        if weight:
            sums += metric_sums(losses.detach(), cr, rj, pc.detach(), pr.detach(), stats)
    return sums


@torch.no_grad()
def evaluate_pairs(model, loss_fn, pairs, ref_table, cfg, device, dtype) -> torch.Tensor:
    model.eval()
    sums = torch.zeros(N_SUMS, device=device, dtype=torch.float64)
    for order, batch in micro_batches(pairs, list(range(len(pairs))), cfg):
        pc, pr, stats = model(batch.to(device, dtype))
        losses, cr, rj = pairmetric_means(loss_fn, pc, pr, ref_table[order], batch, cfg)
        sums += metric_sums(losses, cr, rj, pc, pr, stats)
    model.train()
    return sums


def _load(cfg: TrainConfig, device: torch.device):
    from transformers import AutoModelForCausalLM

    from stepdpo.models import load_tokenizer, pick_dtype, resolve_model_path

    dtype = pick_dtype(cfg.dtype, device)
    tok = load_tokenizer(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(cfg.model), dtype=dtype).to(device)
    if cfg.gradient_checkpointing:
        # transformers renamed it (activation checkpointing); call the name the installed version has
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
        model.config.use_cache = False
    return tok, model, dtype


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train and save the model; returns the final metrics. Resumable with ``cfg.resume``. One run
    per output folder: a second run on the same ``out`` fails at once, naming the first's process."""
    if cfg.push_to_hub:  # before hours of training, as transformers' Trainer does at init
        from stepdpo.hub import check_hub

        check_hub(cfg.push_to_hub)
    accelerator = make_accelerator()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out / "train") if accelerator.is_main_process else nullcontext():
        return _train(cfg, accelerator, out)


def _train(cfg: TrainConfig, accelerator: Any, out: Path) -> dict[str, Any]:
    from transformers import get_cosine_schedule_with_warmup

    from stepdpo.training.logs import TrainLog, eval_timing, run_summary, window_mean

    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    pairs, _ = read_records(cfg.data, "step_pair")
    if cfg.val_data:
        val, _ = read_records(cfg.val_data, "step_pair")
        train_pairs = pairs
    else:
        train_pairs, val = split_pairs(pairs, cfg.val_fraction, cfg.seed)
    if not train_pairs:
        raise ValueError(f"{cfg.data}: no training pairs")
    tok, model, dtype = _load(cfg, device)
    enc, venc = (_encode(tok, ps, cfg, cfg.pair_format) for ps in (train_pairs, val))
    extra = [(name, _encode(tok, ps, cfg, fmt)) for name, fmt, ps in read_val_sets(cfg.val_sets)]
    ref, vref = reference_tables(model, enc, venc + [p for _, e in extra for p in e], cfg, out, accelerator, dtype)
    scored, at = [("eval/", venc, vref[: len(venc)])], len(venc)
    for name, e in extra:
        scored.append((f"eval_{name}/", e, vref[at : at + len(e)]))
        at += len(e)
    if cfg.lora_r and cfg.trainable_layers:
        raise ValueError("--trainable-layers and --lora-r are two ways to train part of the model: choose one")
    if cfg.lora_r:
        model = wrap_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)
    freeze_below(model, cfg.trainable_layers)
    model.train()
    steps_per_epoch = math.ceil(len(enc) / cfg.global_batch)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    sched = get_cosine_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    # the forward must run inside the wrapper accelerate puts around it (DDP's gradient sync)
    model, opt, sched = accelerator.prepare(CompletionLogProbs(model), opt, sched)
    loss_fn = make_loss(cfg.loss, cfg.beta, cfg.label_smoothing)
    start = resume_checkpoint(accelerator, out) if cfg.resume else 0
    trackers = None
    if accelerator.is_main_process and chosen(cfg.report_to):
        name = cfg.run_name or default_run_name(out)
        resume_at = start if cfg.resume else None
        trackers = Trackers(chosen(cfg.report_to), out, cfg.project, name, asdict(cfg), resume_at=resume_at)
    tlog = TrainLog(
        out, enabled=accelerator.is_main_process, resume_at=start if cfg.resume else None, trackers=trackers
    )
    step_cfg = cfg
    if accelerator.distributed_type.name == "DEEPSPEED":
        # accelerate's DeepSpeed wrapper steps the engine inside every backward: one backward per
        # optimizer step, so all of a process's pairs of a step go in one forward pass
        from dataclasses import replace

        step_cfg = replace(cfg, rows_per_micro=1 << 30)

    @functools.lru_cache(maxsize=1)  # one shuffle per epoch, not per step
    def epoch_order(epoch: int) -> list[int]:
        order = list(range(len(enc)))
        random.Random(cfg.seed * 1000 + epoch).shuffle(order)
        return order

    def step_pairs(step: int) -> list[int]:  # the pairs of an optimizer step: epoch-seeded shuffles
        epoch, k = divmod(step, steps_per_epoch)
        return epoch_order(epoch)[k * cfg.global_batch : (k + 1) * cfg.global_batch]

    # input tokens seen, as the Trainer counts them (prompt and completion, each side): num_tokens
    tokens = sum(enc[i].length(shared=False) for st in range(start) for i in step_pairs(st))

    def validate(tokens: int) -> dict[str, float]:  # one pass over every validation set
        row: dict[str, float] = {}
        for prefix, e, r in scored:
            if not e:
                continue
            t_eval = time.time()
            part = r[rank_index(len(e), rank, world)]
            vs = evaluate_pairs(model, loss_fn, rank_slice(e, rank, world), part, cfg, device, dtype)
            row.update(metric_means(accelerator.reduce(vs, "sum"), len(e), prefix))
            row.update(eval_timing(prefix, time.time() - t_eval, len(e), cfg.global_batch, tokens))
        return row

    if cfg.eval_on_start and start == 0 and any(e for _, e, _ in scored):
        tlog.write({"step": 0, "epoch": 0.0, **validate(0)})  # the starting point: policy = reference
    t0, seen, window = time.time(), 0, []
    bar = Bar("train", total, initial=start, unit="step", enabled=accelerator.is_main_process)
    for step in range(start, total):
        chunk = step_pairs(step)
        tokens += sum(enc[i].length(shared=False) for i in chunk)
        mine, weight = rank_share(chunk, rank, world)
        n_global = len(chunk)
        sums = train_step(
            model, loss_fn, micro_batches(enc, mine, step_cfg), ref, cfg, accelerator, weight, device, dtype
        )
        # the norm before clipping, as TRL logs it (an infinite limit measures without clipping)
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm or float("inf"))
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        sums = accelerator.reduce(sums, "sum")
        seen += n_global
        row = {
            "step": step + 1,
            "epoch": (step + 1) / steps_per_epoch,  # after the step, as the Trainer counts it
            "learning_rate": sched.get_last_lr()[0],
            **metric_means(sums, n_global, ""),
            "grad_norm": float(grad_norm) if grad_norm is not None else None,
            "num_tokens": float(tokens),
            "pairs_per_s": seen / (time.time() - t0),
        }
        bar.note(loss=f"{row['loss']:.4f}", acc=f"{row['rewards/accuracies']:.2f}")
        bar.update(1)
        last = step + 1 == total
        if any(e for _, e, _ in scored) and ((cfg.eval_every and (step + 1) % cfg.eval_every == 0) or last):
            row.update(validate(tokens))
        window.append(row)
        if (step + 1) % cfg.log_every == 0 or last or "eval/loss" in row:
            tlog.write(window_mean(window, LOGGED))
            window = []
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and not last:
            save_checkpoint(accelerator, out, step + 1)
    bar.close()
    if trackers is not None:  # the Trainer's end-of-run summary, to the trackers as TRL sends it
        trackers.summary(run_summary(tlog.rows, time.time() - t0, seen, total - start, tokens, model), total)
    accelerator.wait_for_everyone()
    final = save_model(accelerator, model, tok, out, cfg)
    tlog.close(plot=True)
    last = tlog.rows[-1] if tlog.rows else {}
    if accelerator.is_main_process:
        from stepdpo.training.card import write_card

        write_card(final, asdict(cfg), total, last)
        if cfg.push_to_hub:
            from stepdpo.hub import plan_upload, upload

            log.info(f"uploaded: {upload(plan_upload(final, cfg.push_to_hub))}")
    return {**last, "model": str(final), "steps": total}


def _encode(tok, pairs: list[StepPair], cfg: TrainConfig, pair_format: str) -> list:
    """Token ids of ``pairs`` in ``pair_format``; whole solutions end with EOS unless ``add_eos`` says
    otherwise for the training format."""
    eos = cfg.eos if pair_format == cfg.pair_format else pair_format == "dpo"
    return encode_pairs(
        tok,
        pairs,
        add_eos=eos,
        prompt_format=cfg.prompt_format,
        pair_format=pair_format,
        max_prompt_tokens=cfg.max_prompt_tokens,
        max_completion_tokens=cfg.max_completion_tokens,
    )
