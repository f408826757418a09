"""Run under torchrun (2 processes, gloo, CPU): one training step's gradients through accelerate.

Each rank takes its share of the step's pairs, runs :func:`stepdpo.training.trainer.train_step`, and saves the
synchronised gradient of every parameter. Run alone (1 process) it computes the full batch.
"""

import sys

import torch


def main(model_dir: str, out: str) -> None:
    from accelerate import Accelerator
    from helpers import toy_pairs

    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.training.losses import make_loss
    from stepdpo.training.packing import encode_pairs
    from stepdpo.training.packing import micro_batches as _batches
    from stepdpo.training.reference import reference_logps
    from stepdpo.training.trainer import TrainConfig, train_step

    acc = Accelerator(cpu=True)
    cfg = TrainConfig(global_batch=8, max_seq_len=512, rows_per_micro=1)
    tok = load_tokenizer(model_dir)
    model = load_model(model_dir, dtype="fp32", device="cpu")
    enc = encode_pairs(tok, toy_pairs(8, seed=3), add_eos=False)
    ref = reference_logps(model, enc, cfg, torch.device("cpu"), torch.float32)
    with torch.no_grad():  # make policy != reference so that the loss has a gradient
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p, generator=torch.Generator().manual_seed(p.numel())))
    model.train()
    from stepdpo.training.packing import CompletionLogProbs

    model = acc.prepare(CompletionLogProbs(model))
    per_rank = 8 // acc.num_processes
    mine = list(range(acc.process_index * per_rank, (acc.process_index + 1) * per_rank))
    micro = _batches(enc, mine, cfg)
    train_step(model, make_loss("sigmoid", 0.4), micro, ref, cfg, acc, len(mine), torch.device("cpu"), torch.float32)
    grads = {n: p.grad.detach().clone() for n, p in acc.unwrap_model(model).named_parameters() if p.grad is not None}
    torch.save(
        {"rank": acc.process_index, "world": acc.num_processes, "n_micro": len(micro), "grads": grads},
        f"{out}.rank{acc.process_index}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
