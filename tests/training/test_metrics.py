"""The token statistics a run logs equal TRL's own computation of them."""

from types import SimpleNamespace

import pytest
import torch

from stepdpo.training.metrics import logit_stats, token_stat_means


def test_logit_statistics_match_trls_kernel_token_for_token():
    from trl.kernels import ChunkedLogProbFunction

    torch.manual_seed(0)
    n, h, v = 37, 16, 101
    hidden, weight = torch.randn(n, h), torch.randn(v, h)
    targets = torch.randint(0, v, (n,))
    logits = hidden @ weight.T
    targets[:5] = logits[:5].argmax(-1)  # some tokens that are the top-1 prediction
    segment = torch.randint(0, 6, (n,))  # three pairs: even segments chosen, odd rejected
    _, entropy, _, mean_logits, is_top1 = ChunkedLogProbFunction.apply(
        hidden, weight, None, targets, 1.0, 32, None, 1.0, ("log_probs", "entropy", "mean_logits", "is_top1")
    )
    chosen = segment % 2 == 0
    expected = {
        "entropy": float(entropy.sum() / n),
        "logits/chosen": float(mean_logits[chosen].mean()),
        "logits/rejected": float(mean_logits[~chosen].mean()),
        "mean_token_accuracy": float(is_top1[chosen].float().mean()),
    }
    assert expected["mean_token_accuracy"] > 0
    sums = logit_stats(logits, torch.log_softmax(logits, -1), SimpleNamespace(targets=targets, segment=segment))
    assert token_stat_means(sums.tolist()) == pytest.approx(expected, rel=1e-5)


def test_a_side_without_tokens_reads_zero_as_in_trl():
    logits = torch.zeros(3, 4)
    batch = SimpleNamespace(targets=torch.tensor([0, 1, 2]), segment=torch.tensor([0, 2, 4]))
    means = token_stat_means(logit_stats(logits, torch.log_softmax(logits, -1), batch).tolist())
    assert means["logits/rejected"] == 0.0 and means["entropy"] == pytest.approx(torch.log(torch.tensor(4.0)).item())
    assert means["mean_token_accuracy"] == pytest.approx(1 / 3)  # ties: only the first maximal index counts
