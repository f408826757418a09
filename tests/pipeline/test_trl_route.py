"""The route the dataset card gives a TRL user: ``load_dataset`` on the pipeline's folder trains TRL's
DPOTrainer on prompts that hold the prior steps s1..s(k-1), not on the problem alone."""

import pytest
from helpers import toy_pairs

from stepdpo.recordio import write_records


def test_the_cards_trl_route_trains_dpotrainer_on_prompts_with_the_prior_steps(default_model, tmp_path):
    pytest.importorskip("trl")
    import torch
    from datasets import load_dataset
    from huggingface_hub import DatasetCard
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from stepdpo.models import load_tokenizer
    from stepdpo.pipeline.card import pipeline_card, write_card, write_trl_pairs
    from stepdpo.pipeline.run import PipelineConfig

    folder = tmp_path / "run"
    folder.mkdir()
    pairs = [p for p in toy_pairs(12) if "Step 1:" in p.initial_reason_steps][:4]  # k >= 2: prior steps
    assert pairs
    write_records(folder / "pairs.jsonl", pairs)
    write_records(folder / "pairs_dpo.jsonl", pairs)
    write_trl_pairs(folder / "pairs.jsonl", folder / "pairs.trl.jsonl", default_model, "auto")
    cfg = PipelineConfig(model=default_model, out=str(folder))
    files = [str(folder / f) for f in ("pairs.jsonl", "pairs.trl.jsonl", "pairs_dpo.jsonl")]
    assert write_card(folder, pipeline_card(cfg, [], files))
    card = DatasetCard.load(folder / "README.md")
    assert card.data.configs[0] == {"config_name": "default", "data_files": "pairs.trl.jsonl"}
    loading = card.text.split("## Loading", 1)[1]
    assert loading.index("pairs.trl.jsonl") < loading.index('data_files="pairs.jsonl"')  # the TRL route first
    assert "Do not give TRL `pairs.jsonl`" in loading

    ds = load_dataset(str(folder), split="train")  # what the card's default config gives
    assert set(ds.column_names) == {"prompt", "chosen", "rejected"}
    tok = load_tokenizer(default_model)
    args = DPOConfig(output_dir=str(tmp_path / "trl"), per_device_train_batch_size=2, max_steps=1, report_to=[],
                     use_cpu=True, save_strategy="no", bf16=False, max_length=None)  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(default_model, dtype=torch.float32)
    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    trainer.train()
    for row, pair in zip(trainer.train_dataset, pairs):
        seen = tok.decode(row["prompt_ids"])
        assert pair.prompt.strip() in seen and pair.initial_reason_steps.strip() in seen  # the prior steps
        assert pair.chosen.strip() in tok.decode(row["chosen_ids"])
