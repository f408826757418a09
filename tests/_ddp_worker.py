"""Run under torchrun (2 processes, gloo, CPU): one training step's gradients through accelerate.

For each step size in ``SIZES`` (an even split, an uneven one, and one pair, which leaves rank 1
without a pair), each rank takes its share of the step's pairs (:func:`stepdpo.training.trainer.rank_share`),
runs :func:`stepdpo.training.trainer.train_step`, and saves the synchronised gradient of every
parameter. Run alone (1 process) it computes each full batch.
"""

import sys

import torch

SIZES = (8, 5, 1)


def main(model_dir: str, out: str) -> None:
    from accelerate import Accelerator
    from helpers import toy_pairs

    from stepdpo.models import load_model, load_tokenizer
    from stepdpo.training.distributed import rank_share
    from stepdpo.training.losses import make_loss
    from stepdpo.training.packing import CompletionLogProbs, encode_pairs
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
    model = acc.prepare(CompletionLogProbs(model))
    results = {}
    for size in SIZES:
        mine, weight = rank_share(list(range(size)), acc.process_index, acc.num_processes)
        micro = _batches(enc, mine, cfg)
        sums = train_step(
            model, make_loss("sigmoid", 0.4), micro, ref, cfg, acc, weight, torch.device("cpu"), torch.float32
        )
        grads = {
            n: p.grad.detach().clone() for n, p in acc.unwrap_model(model).named_parameters() if p.grad is not None
        }
        model.zero_grad(set_to_none=True)
        results[size] = {"n_mine": len(mine), "weight": weight, "loss_sum": float(sums[0]), "grads": grads}
    torch.save(
        {"rank": acc.process_index, "world": acc.num_processes, "sizes": results},
        f"{out}.rank{acc.process_index}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
