import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import toy_pairs
from safetensors.torch import load_file

from stepdpo.recordio import write_records
from stepdpo.training.trainer import TrainConfig, split_pairs, train

HERE = Path(__file__).resolve().parents[1]  # the tests folder: helpers and the DDP worker


@pytest.fixture(scope="module")
def pair_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    write_records(path, toy_pairs(40))
    return path


def _cfg(pair_file, default_model, out, **kw):
    base = dict(
        data=str(pair_file),
        model=default_model,
        out=str(out),
        lr=1e-3,
        global_batch=8,
        max_seq_len=700,
        rows_per_micro=2,
        warmup_ratio=0.0,
        val_fraction=0.2,
        eval_every=2,
        dtype="fp32",
    )
    base.update(kw)
    return TrainConfig(**base)


def test_training_logs_plots_and_saves(pair_file, default_model, tmp_path):
    result = train(_cfg(pair_file, default_model, tmp_path / "run", max_steps=4))
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # policy == reference at step 1
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert "eval/rewards/accuracies" in rows[1] and "eval/rewards/margins" in rows[-1]
    # TRL's DPOTrainer's names, so that a user's dashboards and scripts read them unchanged
    assert {"loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"} <= set(rows[0])
    assert {"logps/chosen", "logps/rejected", "learning_rate", "grad_norm"} <= set(rows[0])
    assert rows[0]["logps/chosen"] < 0 and rows[0]["grad_norm"] > 0
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert list((tmp_path / "run" / "tb").iterdir())
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(result["model"])


def test_a_validation_pass_at_step_0_reads_the_reference_model(pair_file, default_model, tmp_path):
    train(_cfg(pair_file, default_model, tmp_path / "run", max_steps=2, eval_on_start=True))
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2] and "loss" not in rows[0]
    start, end = rows[0], rows[-1]
    # the policy is the reference: every reward is zero, the loss log 2, the margin of log-probs the reference's own
    assert start["eval/loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert start["eval/rewards/margins"] == pytest.approx(0, abs=1e-4)
    assert start["eval/logps/chosen"] < 0 and start["eval/entropy"] > 0
    assert end["eval/rewards/margins"] != 0  # training moved it
    moved = (end["eval/logps/chosen"] - end["eval/logps/rejected"]) - (
        start["eval/logps/chosen"] - start["eval/logps/rejected"]
    )
    assert end["eval/rewards/margins"] == pytest.approx(0.4 * moved, rel=1e-3, abs=1e-6)  # beta x the margin's move
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000


def test_resume_gives_the_same_model(pair_file, default_model, tmp_path):
    train(_cfg(pair_file, default_model, tmp_path / "a", max_steps=4))
    train(_cfg(pair_file, default_model, tmp_path / "b", max_steps=4, save_every=2))
    # as if killed after step 2: drop what came later, then resume
    (tmp_path / "b" / "model" / "model.safetensors").unlink()
    log = tmp_path / "b" / "log.jsonl"
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:2]))
    train(_cfg(pair_file, default_model, tmp_path / "b", max_steps=4, save_every=2, resume=True))
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4]
    a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_resume_after_a_kill_drops_later_log_rows_and_skips_a_damaged_checkpoint(
    pair_file, default_model, tmp_path, stepdpo_log
):
    """Killed after step 5 of 6 with checkpoints at 2 and 4, the second torn while being written:
    the resumed run names it, continues from step 2, logs each step once, and ends with the model
    an uninterrupted run gives."""
    train(_cfg(pair_file, default_model, tmp_path / "a", max_steps=6))
    b = tmp_path / "b"
    train(_cfg(pair_file, default_model, b, max_steps=6, save_every=2))
    (b / "model" / "model.safetensors").unlink()
    log = b / "log.jsonl"
    rows = log.read_text().splitlines()
    log.write_text("".join(line + "\n" for line in rows[:5]) + rows[5][:20])  # a torn row for step 6
    (b / "checkpoints" / "step-4" / "step.json").write_text('{"st')
    train(_cfg(pair_file, default_model, b, max_steps=6, save_every=2, resume=True))
    assert f"{b / 'checkpoints' / 'step-4' / 'step.json'}: damaged" in "\n".join(stepdpo_log)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4, 5, 6]
    ma = load_file(tmp_path / "a" / "model" / "model.safetensors")
    mb = load_file(b / "model" / "model.safetensors")
    assert all(torch.allclose(ma[k], mb[k], atol=1e-6) for k in ma)
    # no checkpoint loads: a clear error, never a silent restart from partly loaded weights
    for ckpt in (b / "checkpoints").iterdir():
        for f in ckpt.glob("*.safetensors"):
            f.write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="could be loaded; rerun without --resume"):
        train(_cfg(pair_file, default_model, b, max_steps=8, save_every=2, resume=True))


def test_prefix_sharing_does_not_change_training(pair_file, default_model, tmp_path):
    train(_cfg(pair_file, default_model, tmp_path / "s", max_steps=2))
    train(_cfg(pair_file, default_model, tmp_path / "u", max_steps=2, prefix_sharing=False))
    ls = [json.loads(line)["loss"] for line in (tmp_path / "s" / "log.jsonl").read_text().splitlines()]
    lu = [json.loads(line)["loss"] for line in (tmp_path / "u" / "log.jsonl").read_text().splitlines()]
    assert ls == pytest.approx(lu, abs=1e-4)


def test_gradient_checkpointing_does_not_change_training(pair_file, default_model, tmp_path):
    train(_cfg(pair_file, default_model, tmp_path / "g", max_steps=2, gradient_checkpointing=True))
    train(_cfg(pair_file, default_model, tmp_path / "n", max_steps=2))
    lg = [json.loads(line)["loss"] for line in (tmp_path / "g" / "log.jsonl").read_text().splitlines()]
    ln = [json.loads(line)["loss"] for line in (tmp_path / "n" / "log.jsonl").read_text().splitlines()]
    assert lg == pytest.approx(ln, abs=1e-5)


def test_trainable_layers_train_the_top_layers_only(pair_file, default_model, tmp_path):
    from transformers import AutoModelForCausalLM

    from stepdpo.models import resolve_model_path

    result = train(_cfg(pair_file, default_model, tmp_path / "top", max_steps=2, trainable_layers=1))
    before = AutoModelForCausalLM.from_pretrained(resolve_model_path(default_model)).state_dict()
    after = AutoModelForCausalLM.from_pretrained(result["model"]).state_dict()
    changed = {n for n, w in after.items() if not torch.equal(w, before[n])}
    last = len(AutoModelForCausalLM.from_pretrained(result["model"]).model.layers) - 1
    assert changed and all(n.startswith((f"model.layers.{last}.", "model.norm.")) for n in changed), changed
    with pytest.raises(ValueError, match="choose one"):
        train(_cfg(pair_file, default_model, tmp_path / "both", max_steps=1, trainable_layers=1, lora_r=4))


def test_sft_loss_at_solution_positions_equals_the_models_own(default_model):
    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.training.sft import _collate, _encode, _loss

    tok, lm = load_tokenizer(default_model), load_model(default_model, dtype="fp32", device="cpu")
    data = _encode(tok, [("What is 2 + 3? ", "Step 1: 2 + 3 = 5."), ("A longer prompt " * 4, "Step 1: x")], 200)
    batch = _collate(data, tok.pad_token_id, torch.device("cpu"))
    assert float(_loss(lm, batch)) == pytest.approx(float(lm(**batch).loss), rel=1e-5)


def test_lora_trains_and_merges(pair_file, default_model, tmp_path):
    result = train(_cfg(pair_file, default_model, tmp_path / "lora", max_steps=2, lora_r=4))
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(result["model"])
    assert not any("lora" in n for n, _ in m.named_parameters())


def test_held_out_split_is_stable():
    pairs = toy_pairs(50)
    a, va = split_pairs(pairs, 0.2, 0)
    b, vb = split_pairs(pairs + toy_pairs(10, seed=9), 0.2, 0)
    assert {p.id for p in va} <= {p.id for p in vb} and len(a) + len(va) == 50


@pytest.mark.slow
def test_two_processes_synchronise_gradients(default_model, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    out = str(tmp_path / "g")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        str(HERE / "_ddp_worker.py"),
        default_model,
        out,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, str(HERE / "_ddp_worker.py"), default_model, out + "-single"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    r0, r1 = torch.load(out + ".rank0.pt"), torch.load(out + ".rank1.pt")
    full = torch.load(out + "-single.rank0.pt")
    assert r0["world"] == r1["world"] == 2 and full["world"] == 1
    # an even split, an uneven one (3 and 2 pairs), and one pair: rank 1 has none and runs one at weight 0
    assert [(r0["sizes"][n]["n_mine"], r1["sizes"][n]["weight"]) for n in (8, 5, 1)] == [(4, 0.25), (3, 0.4), (1, 0.0)]
    for n in (8, 5, 1):
        g0, g1, g = r0["sizes"][n]["grads"], r1["sizes"][n]["grads"], full["sizes"][n]["grads"]
        # float32 sums over other micro-batches (other padding): about 1e-6 apart; a lost or doubled
        # pair moves it by a whole loss
        both = r0["sizes"][n]["loss_sum"] + r1["sizes"][n]["loss_sum"]
        assert both == pytest.approx(full["sizes"][n]["loss_sum"], rel=1e-5)
        for name in g:
            assert torch.allclose(g0[name], g1[name], atol=1e-7), (n, name)  # the ranks agree
            # and equal the full batch's gradient, to float32's rounding of sums over other batchings
            # (measured up to about 1e-5 of the tensor's largest entry); a lost pair moves it by tens of %
            diff = float((g0[name] - g[name]).abs().max() / g[name].abs().max().clamp_min(1e-12))
            assert diff < 1e-4, (n, name, diff)


def test_shared_reference_cache_is_reused_across_runs(pair_file, default_model, tmp_path, monkeypatch):
    import stepdpo.training.reference as tr

    cache = tmp_path / "ref.json"
    train(_cfg(pair_file, default_model, tmp_path / "a", max_steps=2, ref_cache=str(cache)))
    calls = []
    real = tr.reference_logps
    monkeypatch.setattr(tr, "reference_logps", lambda *a, **k: calls.append(1) or real(*a, **k))
    # another seed holds out other pairs: the same pair ids overall, so nothing is recomputed
    train(_cfg(pair_file, default_model, tmp_path / "b", max_steps=2, ref_cache=str(cache), seed=1))
    assert calls == []
    # other tokens (whole solutions end with EOS) are computed and added; the first entries stay
    before = len(next(iter(json.loads(cache.read_text())["entries"].values())))
    train(_cfg(pair_file, default_model, tmp_path / "c", max_steps=2, ref_cache=str(cache), pair_format="dpo"))
    assert calls == [1]
    assert len(next(iter(json.loads(cache.read_text())["entries"].values()))) == 2 * before
    a = [json.loads(line)["loss"] for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    train(_cfg(pair_file, default_model, tmp_path / "d", max_steps=2, ref_cache=str(cache)))
    d = [json.loads(line)["loss"] for line in (tmp_path / "d" / "log.jsonl").read_text().splitlines()]
    assert a == pytest.approx(d, abs=1e-9)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_train_as_one_on_uneven_batches(tmp_path, default_model):
    """Two CPU processes under torchrun, which accelerate runs as DDP over gloo (MULTI_CPU; it runs
    FSDP and DeepSpeed on accelerators only), train as one process does at every step: 37 pairs at
    global batch 4 leave the epoch's last step one pair, so rank 1 has none (it used to hang in the
    gradient all-reduce there). The scheduler steps once per optimizer step whatever the number of
    processes. The gradient of uneven splits is pinned exactly by test_two_processes_synchronise_gradients."""
    data = tmp_path / "pairs37.jsonl"
    write_records(data, toy_pairs(37, seed=5))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    args = ["train", "--data", str(data), "--model", default_model, "--global-batch", "4", "--epochs", "2"]
    args += ["--lr", "3e-4", "--val-fraction", "0", "--dtype", "fp32", "--max-seq-len", "700", "--rows-per-micro", "1"]
    one = subprocess.run(
        [sys.executable, "-m", "stepdpo.cli", *args, "--out", str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29534"]
    two = subprocess.run(
        [*launch, "-m", "stepdpo.cli", *args, "--out", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    launched = json.loads((tmp_path / "two" / "launch.json").read_text())
    assert launched == {"num_processes": 2, "distributed_type": "MULTI_CPU"}  # what really ran
    assert json.loads((tmp_path / "one" / "launch.json").read_text())["num_processes"] == 1
    r1, r2 = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert len(r1) == len(r2) == 20  # 10 steps an epoch, the 10th of one pair
    assert [r["learning_rate"] for r in r2] == pytest.approx([r["learning_rate"] for r in r1], rel=1e-9)
    lr = [r["learning_rate"] for r in r1]
    assert lr[-1] < lr[len(lr) // 2] < lr[1]  # warmup, then a cosine decay that never climbs back
    for a, b in zip(r1, r2):
        # equal up to the order of floating-point sums (all-reduce against one process's sum)
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-2, abs=1e-5), a["step"]
        assert b["rewards/margins"] == pytest.approx(a["rewards/margins"], rel=2e-2, abs=1e-4), a["step"]
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tmp_path / "two" / "model")


def test_new_weights_in_the_same_folder_recompute_the_reference(pair_file, default_model, tmp_path):
    """The reference cache is keyed by the weights, not the model's name: replacing the weights in a
    folder and training again with the same cache starts from log 2 (policy == reference)."""
    import shutil

    from safetensors.torch import save_file

    folder = tmp_path / "model"
    shutil.copytree(default_model, folder)
    cache = str(tmp_path / "ref.json")
    train(_cfg(pair_file, str(folder), tmp_path / "a", max_steps=1, ref_cache=cache))
    weights = load_file(folder / "model.safetensors")
    gen = torch.Generator().manual_seed(0)
    save_file(
        {k: v + 0.02 * torch.randn(v.shape, generator=gen) for k, v in weights.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    train(_cfg(pair_file, str(folder), tmp_path / "b", max_steps=1, ref_cache=cache))
    first = json.loads((tmp_path / "b" / "log.jsonl").read_text().splitlines()[0])
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)
    # the same weights loaded in another dtype are another reference too
    from transformers import AutoModelForCausalLM

    from stepdpo.training.reference import weights_fingerprint

    m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert weights_fingerprint(m) != weights_fingerprint(m.to(torch.bfloat16))


def test_a_second_training_run_on_the_same_folder_fails_at_once(pair_file, default_model, tmp_path):
    from stepdpo.recordio import OutputLocked, exclusive

    with exclusive(tmp_path / "run" / "train"), pytest.raises(OutputLocked, match="being written by process"):
        train(_cfg(pair_file, default_model, tmp_path / "run", max_steps=1))


def test_a_full_disk_while_saving_the_model_is_named_and_the_rerun_completes(pair_file, tmp_path):
    """safetensors reports a full disk in its own error type; the CLI names the file either way."""
    import resource

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "stepdpo.cli", "-q", "train", "--data", str(pair_file), "--out", str(out)]
    cmd += ["--max-steps", "1", "--global-batch", "4", "--val-fraction", "0", "--dtype", "fp32"]
    full = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (5_000_000, 5_000_000)),
    )
    assert full.returncode == 1, full.stderr[-2000:]
    assert f"no space left writing the trained model to {out / 'model'}" in full.stdout + full.stderr
    assert "Traceback" not in full.stdout + full.stderr
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "model" / "model.safetensors").stat().st_size > 5_000_000


def test_more_validation_sets_are_scored_in_their_own_format(pair_file, default_model, tmp_path):
    whole = tmp_path / "whole.jsonl"
    write_records(whole, toy_pairs(6))
    sets = [f"same=step:{pair_file}", f"whole=dpo:{whole}", f"whole_as_steps=step:{whole}"]
    train(_cfg(pair_file, default_model, tmp_path / "run", max_steps=2, val_data=str(pair_file), val_sets=sets))
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    last = rows[-1]
    for prefix in ("eval/", "eval_same/", "eval_whole/", "eval_whole_as_steps/"):
        assert {f"{prefix}rewards/accuracies", f"{prefix}rewards/margins", f"{prefix}loss"} <= set(last), prefix
    # the same pairs in the same format score as the trainer's own validation set
    for k in ("loss", "rewards/accuracies", "rewards/margins"):
        assert last[f"eval_same/{k}"] == pytest.approx(last[f"eval/{k}"], rel=1e-5)  # packed otherwise: fp32 sums
    # a set's format is its own: whole solutions with EOS against the same text without it
    assert last["eval_whole/rewards/margins"] != pytest.approx(last["eval_whole_as_steps/rewards/margins"], rel=1e-6)
    with pytest.raises(ValueError, match="NAME=FORMAT:FILE"):
        train(_cfg(pair_file, default_model, tmp_path / "bad", max_steps=1, val_sets=[f"x=holistic:{whole}"]))


def test_old_logs_read_under_trls_names(tmp_path):
    from stepdpo.training.logs import normalize_row, plot_curves

    old = {"step": 3, "epoch": 0.5, "lr": 1e-5, "train/loss": 0.6, "train/reward_accuracy": 0.75}
    old |= {"val/reward_margin": 0.2, "val_step/reward_accuracy": 0.5, "pairs_per_s": 2.0}
    assert normalize_row(old) == {
        "step": 3,
        "epoch": 0.5,
        "learning_rate": 1e-5,
        "loss": 0.6,
        "rewards/accuracies": 0.75,
        "eval/rewards/margins": 0.2,
        "eval_step/rewards/accuracies": 0.5,
        "pairs_per_s": 2.0,
    }
    new = {"step": 1, "loss": 0.5, "eval/loss": 0.4, "rewards/margins": 0.1}
    assert normalize_row(new) == new
    assert plot_curves({"old": [old], "new": [new]}, tmp_path / "c.png").stat().st_size > 1000


def test_a_trained_model_carries_a_hub_model_card_that_eval_extends(pair_file, default_model, tmp_path):
    from huggingface_hub import ModelCard
    from typer.testing import CliRunner

    from stepdpo.cli import app

    res = train(_cfg(pair_file, default_model, tmp_path / "run", max_steps=2))
    card = ModelCard.load(Path(res["model"]) / "README.md")
    assert card.data.library_name == "transformers" and card.data.tags == ["stepdpo", "step-dpo", "dpo"]
    # a local file or folder has no Hub id: none named (the Hub would link a file name to nowhere)
    assert card.data.datasets is None and card.data.base_model is None
    assert "Step-DPO" in card.text and "lai2024stepdpo" in card.text and "- torch " in card.text
    assert "model-index" not in card.content
    ok = CliRunner().invoke(app, ["eval", "--model", res["model"], "--limit", "4", "--max-new-tokens", "60"])
    assert ok.exit_code == 0, ok.output
    ok = CliRunner().invoke(app, ["eval", "--model", res["model"], "--limit", "6", "--max-new-tokens", "60"])
    assert ok.exit_code == 0, ok.output
    card = ModelCard.load(Path(res["model"]) / "README.md")
    four, six = card.data.eval_results  # each evaluation kept with its problem count and split
    assert four.dataset_name == "synthetic (test, 4 problems)" and six.dataset_name == "synthetic (test, 6 problems)"
    assert four.dataset_split == "test" and four.metric_type == "accuracy" and 0 <= four.metric_value <= 100
    from stepdpo.training.card import model_card

    hub = model_card(
        {**json.loads((tmp_path / "run" / "train_config.json").read_text()), "model": "smollm2-135m-instruct"}, 2, {}
    )
    parsed = ModelCard(hub).data
    assert parsed.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and parsed.license == "apache-2.0"
    on_hub = model_card(
        {**json.loads((tmp_path / "run" / "train_config.json").read_text()), "data": "hub:me/pairs"}, 2, {}
    )
    assert ModelCard(on_hub).data.datasets == ["me/pairs"]


def test_an_unknown_or_missing_tracker_is_named(pair_file, default_model, tmp_path, monkeypatch):
    from stepdpo.options import OptionError, build

    with pytest.raises(OptionError, match="--report-to: 'neptune' is not one of"):
        build(TrainConfig, {"report_to": "tensorboard,neptune"})
    import builtins

    real = builtins.__import__
    monkeypatch.setattr(
        builtins,
        "__import__",
        lambda n, *a, **k: (_ for _ in ()).throw(ImportError(n)) if n == "wandb" else real(n, *a, **k),
    )
    with pytest.raises(ImportError, match="--report-to wandb needs its library: pip install wandb"):
        train(_cfg(pair_file, default_model, tmp_path / "w", max_steps=1, report_to=["wandb"]))


def test_wandb_runs_offline_into_the_output_folder(pair_file, default_model, tmp_path, monkeypatch):
    """W&B in offline mode writes its run into OUT/wandb (``wandb sync`` uploads it later). Its series
    are in wandb's binary run file, which only wandb's internals read, so only the run is checked."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    train(_cfg(pair_file, default_model, out, max_steps=2, report_to=["wandb"], run_name="w"))
    (run,) = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert run.stat().st_size > 0
