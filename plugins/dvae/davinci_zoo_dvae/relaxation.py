"""The gumbel-softmax relaxation of the code choice and the statistics of the codes chosen."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from davinci_zoo.models.parts import ComponentArgumentError


def gumbel_softmax_codes(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """[B, K, h, w] logits -> [B, K, h, w] soft one-hot samples (sum 1 over K), differentiable."""
    return F.gumbel_softmax(logits, tau=temperature, hard=False, dim=1)


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(logits) || uniform over K): summed over K, averaged over the B*h*w positions.

    [B, K, h, w] -> scalar >= 0; exactly 0 when every position's logits are constant.
    """
    log_probs = F.log_softmax(logits, dim=1)
    per_position = (log_probs.exp() * (log_probs + math.log(logits.shape[1]))).sum(dim=1)
    return per_position.mean()


def code_histogram(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """[B, h, w] int64 codes -> [codebook_size] float counts."""
    return torch.bincount(codes.flatten(), minlength=codebook_size).float()


def perplexity(counts: torch.Tensor) -> float:
    """exp(entropy) of the code distribution ``counts`` [K]; K when all codes are equally used."""
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum()
    return float(entropy.exp())


class CodeUsage(nn.Module):
    """A running (exponential moving average) share of positions per code, to spot dead codes.

    Every code starts at the uniform share 1/K. A code is dead when its running share is below
    ``dead_threshold / K``. The state is a non-persistent buffer: it is not part of checkpoints.
    """

    def __init__(self, codebook_size: int, decay: float = 0.99, dead_threshold: float = 0.01):
        super().__init__()
        if not 0 <= decay < 1:
            raise ComponentArgumentError(f'usage decay must be in [0, 1), got {decay}')
        self.decay = decay
        self.dead_threshold = dead_threshold
        self.register_buffer(
            'share', torch.full((codebook_size,), 1 / codebook_size), persistent=False
        )

    @torch.no_grad()
    def update(self, counts: torch.Tensor) -> None:
        """Fold in one batch's code counts [K]."""
        batch_share = counts.to(self.share) / counts.sum().clamp_min(1)
        self.share.mul_(self.decay).add_((1 - self.decay) * batch_share)

    def dead_codes(self) -> int:
        """How many codes have a running share below ``dead_threshold / K``."""
        return int((self.share < self.dead_threshold / self.share.numel()).sum())
