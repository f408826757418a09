"""Preference losses on one step (Step-DPO, eq. 2) or one whole answer (DPO).

Every loss is a small module: ``forward`` takes the policy's and the reference's summed log-probs
of the chosen and rejected completions (and, for IPO, their token counts) and returns per-pair
losses and the implicit rewards ``beta * (log pi - log ref)`` of both completions. There is no
trainer state inside. Step-DPO (Lai et al., 2024, eq. 2) is :class:`SigmoidLoss` applied to a
single reasoning step s_win / s_lose after the shared prefix (x, s1..s(k-1)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PreferenceLoss(nn.Module):
    """Shared bookkeeping: h = [log pi(w) - log ref(w)] - [log pi(l) - log ref(l)]."""

    def __init__(self, beta: float = 0.4):
        super().__init__()
        if beta <= 0:
            raise ValueError("beta must be positive")
        self.beta = beta

    def rewards(self, pc, pr, rc, rr) -> tuple[torch.Tensor, torch.Tensor]:
        return self.beta * (pc - rc).detach(), self.beta * (pr - rr).detach()

    def pair_loss(self, h: torch.Tensor, **kw) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(
        self,
        policy_chosen: torch.Tensor,
        policy_rejected: torch.Tensor,
        ref_chosen: torch.Tensor,
        ref_rejected: torch.Tensor,
        chosen_tokens: torch.Tensor | None = None,
        rejected_tokens: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(losses, chosen_rewards, rejected_rewards)``, each of shape (pairs,)."""
        h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
        losses = self.pair_loss(
            h,
            pc=policy_chosen,
            pr=policy_rejected,
            rc=ref_chosen,
            rr=ref_rejected,
            nc=chosen_tokens,
            nr=rejected_tokens,
        )
        return (losses, *self.rewards(policy_chosen, policy_rejected, ref_chosen, ref_rejected))


class SigmoidLoss(PreferenceLoss):
    """DPO (Rafailov et al., 2023) and Step-DPO (Lai et al., 2024, eq. 2):
    L = -log sigmoid(beta * h). With ``label_smoothing`` eps > 0 it is conservative DPO (cDPO):
    L = -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h).
    """

    def __init__(self, beta: float = 0.4, label_smoothing: float = 0.0):
        super().__init__(beta)
        self.eps = label_smoothing

    def pair_loss(self, h, **kw):
        return -(1 - self.eps) * F.logsigmoid(self.beta * h) - self.eps * F.logsigmoid(-self.beta * h)


class RobustLoss(PreferenceLoss):
    """Robust DPO (Chowdhury et al., 2024), unbiased under preference-label noise of rate eps:
    L = [-(1 - eps) log sigmoid(beta h) + eps log sigmoid(-beta h)] / (1 - 2 eps).
    """

    def __init__(self, beta: float = 0.4, label_smoothing: float = 0.0):
        super().__init__(beta)
        if not 0 <= label_smoothing < 0.5:
            raise ValueError("robust loss needs 0 <= label_smoothing < 0.5")
        self.eps = label_smoothing

    def pair_loss(self, h, **kw):
        return (-(1 - self.eps) * F.logsigmoid(self.beta * h) + self.eps * F.logsigmoid(-self.beta * h)) / (
            1 - 2 * self.eps
        )


class HingeLoss(PreferenceLoss):
    """SLiC-style hinge loss (Zhao et al., 2023): L = max(0, 1 - beta * h)."""

    def pair_loss(self, h, **kw):
        return torch.relu(1 - self.beta * h)


class IPOLoss(PreferenceLoss):
    """IPO (Azar et al., 2023, eq. 17): L = (h' - 1 / (2 beta))^2, where h' uses log-probs averaged
    over each completion's tokens (the normalisation the IPO authors use, as TRL does)."""

    def pair_loss(self, h, *, pc, pr, rc, rr, nc, nr):
        if nc is None or nr is None:
            raise ValueError("the IPO loss needs the token counts of the completions")
        h_avg = (pc - rc) / nc.clamp(min=1) - (pr - rr) / nr.clamp(min=1)
        return (h_avg - 1 / (2 * self.beta)) ** 2


LOSSES = {"sigmoid": SigmoidLoss, "robust": RobustLoss, "hinge": HingeLoss, "ipo": IPOLoss}


def make_loss(name: str, beta: float, label_smoothing: float = 0.0) -> PreferenceLoss:
    """A loss module by name: sigmoid (DPO / Step-DPO, with optional cDPO smoothing), robust, hinge, ipo."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; use {', '.join(LOSSES)}")
    if name in ("sigmoid", "robust"):
        return LOSSES[name](beta, label_smoothing)
    return LOSSES[name](beta)


def sft_loss(policy_chosen: torch.Tensor, chosen_tokens: torch.Tensor) -> torch.Tensor:
    """Per-pair negative log-likelihood of the chosen completion, averaged over its tokens
    (the optional SFT term on s_win)."""
    return -policy_chosen / chosen_tokens.clamp(min=1)
