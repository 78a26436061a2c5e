"""Dropout whose mask is cheap to draw on a CPU.

On a CPU, torch draws a dropout mask with ``bernoulli_``: one number per element from a serial
generator (63 ms for the 8M attention probabilities of one base encoder layer on 2 cores), and
``scaled_dot_product_attention`` with ``dropout_p > 0`` leaves its fused kernel for the
unfused math one (forward + backward of that layer's attention: 125 ms, against 61 ms without
dropout). Here a mask takes 16 random bits per element -- 64-bit draws split in four,
compared with a threshold, so ``p`` is rounded to a multiple of 1/65536 -- and attention
with dropout is written out with such a mask, the bias added inside the score product
(``baddbmm``): 87 ms. The draws come from torch's global generator, as ``F.dropout``'s do
(so seeding and saved RNG states still fix them).

On other devices torch's own dropout and attention kernels are used unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device=None) -> torch.Tensor:
    """Bool [shape]: each element kept with probability 1 - p (p a multiple of 1/65536)."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64)
    words.random_(-(2**63), 2**63 - 1)  # 64 random bits each (the range spans all of them)
    threshold = round(p * 65536) - 32768
    keep = words.view(torch.int16)[:count].view(shape) >= threshold
    return keep.to(device) if device is not None else keep


def cpu_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """``x`` with a share ``p`` of its elements zeroed and the rest scaled by 1 / (1 - p)."""
    return x * torch.where(keep_mask(x.shape, p), 1.0 / (1.0 - p), 0.0).to(x.dtype)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same ``p`` and parameters), drawing its CPU masks with
    :func:`keep_mask`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != 'cpu':
            return super().forward(x)
        return cpu_dropout(x, self.p)


def attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    bias: torch.Tensor | None,
    dropout: float,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v with dropout ``dropout`` on the probabilities:
    [B, H, L, d] queries over [B, H, S, d] keys/values -> [B, H, L, d]."""
    if dropout == 0 or queries.device.type != 'cpu':
        return F.scaled_dot_product_attention(
            queries, keys, values, attn_mask=bias, dropout_p=dropout
        )
    batch, heads, length, width = queries.shape
    flat_queries = (queries * width**-0.5).reshape(batch * heads, length, width)
    flat_keys = keys.reshape(batch * heads, -1, width).transpose(1, 2)
    if bias is None:
        scores = torch.bmm(flat_queries, flat_keys)
    else:
        shape = (batch, heads, length, flat_keys.shape[-1])
        scores = torch.baddbmm(bias.expand(shape).reshape(-1, *shape[2:]), flat_queries, flat_keys)
    probs = cpu_dropout(scores.softmax(-1), dropout)
    return torch.matmul(probs.view(batch, heads, length, -1), values)
