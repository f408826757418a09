"""What a training run measures per optimizer step and per validation pass, under TRL's names.

Per-pair means (:data:`METRICS`: the DPO loss of eq. 2, the implicit rewards beta * log-ratio, the
policy's log-probs of the step completions) and token-weighted statistics of the policy's logits
(:data:`TOKEN_STATS`), each summed over a step's micro-batches and processes before dividing.
"""

from __future__ import annotations

from typing import Any

import torch

TOKEN_STATS = ("entropy", "logits/chosen", "logits/rejected", "mean_token_accuracy")
"""Token-level statistics of the policy's logits, under TRL's DPOTrainer's names: the entropy of
the next-token distribution over every completion token, the mean logit (over the vocabulary) over
the chosen and over the rejected tokens, and how often the chosen token is the top-1 prediction."""


def logit_stats(logits: torch.Tensor, logps: torch.Tensor, batch: Any) -> torch.Tensor:
    """Token sums behind :data:`TOKEN_STATS`, as float64: entropy sum, completion tokens; chosen
    mean-logit sum, chosen tokens; rejected mean-logit sum, rejected tokens; chosen top-1 hits.
    Ratios of these sums are TRL's token-weighted figures (``logits`` and ``logps``: one row per
    completion token, ``logps`` the log-softmax of ``logits``; ``batch``: the
    :class:`~stepdpo.training.packing.PackedBatch`, for its ``targets`` and ``segment``)."""
    with torch.no_grad():
        entropy = -(logps.exp() * logps).sum(-1)
        mean_logit = logits.mean(-1)
        # top-1 as TRL counts it: the target is the first index holding the maximum
        top1 = logits.argmax(-1) == batch.targets
        chosen = (batch.segment % 2 == 0).to(logits.dtype)
        rejected = 1 - chosen
        return torch.stack(
            [
                entropy.sum(),
                torch.tensor(float(len(entropy)), device=logits.device),
                (mean_logit * chosen).sum(),
                chosen.sum(),
                (mean_logit * rejected).sum(),
                rejected.sum(),
                (top1.to(logits.dtype) * chosen).sum(),
            ]
        ).double()


def token_stat_means(sums: list[float]) -> dict[str, float]:
    """:data:`TOKEN_STATS` from :func:`logit_stats`' sums (zero where a side has no tokens, as TRL)."""
    ent, n, lc, nc, lr, nr, top1 = sums
    ratio = lambda a, b: a / b if b > 0 else 0.0
    return dict(zip(TOKEN_STATS, (ratio(ent, n), ratio(lc, nc), ratio(lr, nr), ratio(top1, nc))))


METRICS = (
    "loss",
    "rewards/accuracies",
    "rewards/margins",
    "rewards/chosen",
    "rewards/rejected",
    "logps/chosen",
    "logps/rejected",
)
"""The per-pair means a training run logs, under TRL's DPOTrainer's names (``eval/...`` for validation);
beside them it logs the token-weighted :data:`TOKEN_STATS`."""
LOGGED = METRICS + TOKEN_STATS
"""Every training figure a log line averages over its window of steps (``--log-every``)."""
N_SUMS = len(METRICS) + 7  # the pair sums, then logit_stats' seven token sums


def metric_sums(losses, cr, rj, pc, pr, stats) -> torch.Tensor:
    """Sums over pairs of each of :data:`METRICS` (loss, reward accuracy and margin, the chosen and
    rejected rewards, the policy's chosen and rejected log-probs), then the token sums ``stats``."""
    pair_sums = torch.stack(
        [losses.sum(), (cr > rj).sum(), (cr - rj).sum(), cr.sum(), rj.sum(), pc.detach().sum(), pr.detach().sum()]
    ).double()
    return torch.cat([pair_sums, stats.to(pair_sums)])


def metric_means(sums: torch.Tensor, n: int, prefix: str) -> dict[str, float]:
    """Per-pair means of :data:`METRICS` over ``n`` pairs, then the token-weighted :data:`TOKEN_STATS`."""
    values = sums.tolist()
    out = {f"{prefix}{k}": float(v) / max(n, 1) for k, v in zip(METRICS, values)}
    out.update({f"{prefix}{k}": v for k, v in token_stat_means(values[len(METRICS) :]).items()})
    return out
