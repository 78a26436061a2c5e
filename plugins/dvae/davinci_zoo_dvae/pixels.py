"""The logit-Laplace pixel mapping of the dVAE: [0, 1] <-> [eps, 1 - eps]."""

from __future__ import annotations

import torch

#: Pixels are squeezed into [EPS, 1 - EPS] so that the logit-Laplace density stays finite.
LOGIT_LAPLACE_EPS = 0.1


def map_pixels(images: torch.Tensor, eps: float = LOGIT_LAPLACE_EPS) -> torch.Tensor:
    """[B, C, H, W] in [0, 1] -> the same shape in [eps, 1 - eps] (the encoder's input)."""
    return (1 - 2 * eps) * images + eps


def unmap_pixels(values: torch.Tensor, eps: float = LOGIT_LAPLACE_EPS) -> torch.Tensor:
    """Inverse of :func:`map_pixels`, clamped to [0, 1]; differentiable inside the range."""
    return torch.clamp((values - eps) / (1 - 2 * eps), 0, 1)


def pixels_from_statistics(statistics: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """Decoder output [B, 2*C, H, W] -> images [B, C, H, W] in [0, 1] (sigmoid of the means)."""
    return unmap_pixels(torch.sigmoid(statistics[:, :channels]))
