"""Training checkpoints: saved every ``save_every`` steps under ``OUT/checkpoints/step-N``, a
``step.json`` written last (and atomically) marking each complete; ``--resume`` loads the newest
complete, readable one, naming and passing over any that is not."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stepdpo.progress import log
from stepdpo.recordio import atomic_write_text, saving


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(accelerator, out: Path, step: int) -> None:
    """Save the training state; ``step.json``, written last and atomically, marks it complete."""
    path = out / "checkpoints" / f"step-{step}"
    with saving(path, "a checkpoint"):
        accelerator.save_state(str(path))
    if accelerator.is_main_process:
        atomic_write_text(path / "step.json", json.dumps({"step": step}))
    accelerator.wait_for_everyone()


def resume_checkpoint(accelerator, out: Path) -> int:
    """Load the newest complete, readable checkpoint and return its step (0 without one). An
    incomplete or damaged checkpoint is named and the one before it used."""
    ckpts = _checkpoints(out)
    tried_loading = False
    for ckpt in reversed(ckpts):
        marker = ckpt / "step.json"
        try:
            step = int(json.loads(marker.read_text(encoding="utf-8"))["step"])
        except FileNotFoundError:
            log.warning(f"{ckpt}: incomplete (its save was interrupted); using the checkpoint before it")
            continue
        except (ValueError, KeyError, TypeError) as e:
            log.warning(f"{marker}: damaged ({type(e).__name__}: {e}); using the checkpoint before it")
            continue
        try:
            tried_loading = True
            accelerator.load_state(str(ckpt))
        except Exception as e:
            log.warning(f"{ckpt}: cannot be loaded ({type(e).__name__}: {e}); using the checkpoint before it")
            continue
        log.info(f"resuming from {ckpt} (step {step})")
        return step
    if tried_loading:
        # a failed load may have changed some weights already: starting over from them would train wrong
        raise RuntimeError(f"no checkpoint in {out / 'checkpoints'} could be loaded; rerun without --resume")
    if ckpts:
        log.warning(f"no complete checkpoint in {out / 'checkpoints'}; starting from step 0")
    return 0


def save_model(accelerator: Any, model: Any, tok: Any, out: Path, cfg: Any) -> Path:
    """The trained model (LoRA merged; the full state gathered under ZeRO-3 / FSDP) in ``out/model``,
    with ``train_config.json`` and ``launch.json`` (how many processes, which distributed type)."""
    final = out / "model"
    unwrapped = accelerator.unwrap_model(model).model
    if cfg.lora_r:
        unwrapped = unwrapped.merge_and_unload()
    if accelerator.is_main_process:
        state = None
        if not cfg.lora_r:  # gathered from all processes under ZeRO-3 / FSDP; drop the wrapper's prefix
            state = {k.removeprefix("model."): v for k, v in accelerator.get_state_dict(model).items()}
        with saving(final, "the trained model"):
            unwrapped.save_pretrained(final, state_dict=state)
            tok.save_pretrained(final)
        atomic_write_text(out / "train_config.json", json.dumps(asdict(cfg), indent=2))
        launch = {"num_processes": accelerator.num_processes, "distributed_type": accelerator.distributed_type.name}
        atomic_write_text(out / "launch.json", json.dumps(launch, indent=2))
    accelerator.wait_for_everyone()
    return final
