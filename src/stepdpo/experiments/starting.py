"""The model every arm of the demo starts from: the setting's model, or its short SFT on the task's
reference solutions (the paper starts Step-DPO from SFT models)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

from stepdpo.experiments.common import DemoConfig, kept, run_key
from stepdpo.recordio import atomic_write_text


def starting_model(cfg: DemoConfig, out: Path) -> DemoConfig:
    """``cfg`` with the model the arms start from: the setting's model, or, for a setting with an
    ``sft`` entry, that model fine-tuned on the reference solutions of the task's first training
    problems (none of which any other set holds). The SFT model is written once into
    ``out/sft-KEY``, KEY that of its settings and problems, and reused under the same key."""
    st = cfg.setting
    spec = st.get("sft")
    if not spec or cfg.base_model:
        return cfg
    from stepdpo.tasks import get_task

    task = get_task(st["data"])
    problems = task.generate(spec["problems"], seed=task.train_seed)
    key = run_key(st["model"], spec, [(p.problem, p.solution) for p in problems])
    folder = out / f"sft-{key}"
    if kept(folder / "done.json", key) is None:
        from stepdpo.models import load_model, load_tokenizer
        from stepdpo.text.prompts import build_prompt
        from stepdpo.training.card import write_card
        from stepdpo.training.sft import SFTConfig, sft_train

        shutil.rmtree(folder, ignore_errors=True)
        tok = load_tokenizer(st["model"])
        lm = load_model(st["model"], dtype="fp32", device="cpu")
        scfg = SFTConfig(**{k: v for k, v in spec.items() if k != "problems"}, log_every=5)
        t = time.time()
        rows = sft_train(lm, tok, [(build_prompt(p.problem, tokenizer=tok), p.solution) for p in problems], scfg)
        lm.save_pretrained(folder)
        tok.save_pretrained(folder)
        atomic_write_text(folder / "sft_log.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        card = {"model": st["model"], "data": st["data"], "out": str(folder), "prompt_format": "auto", **asdict(scfg)}
        write_card(folder, card, rows[-1]["step"], {"loss": rows[-1]["loss"]})
        done = {"key": key, "base": st["model"], "problems": len(problems), "seconds": round(time.time() - t, 1)}
        atomic_write_text(folder / "done.json", json.dumps(done))
    return replace(cfg, base_model=str(folder))
