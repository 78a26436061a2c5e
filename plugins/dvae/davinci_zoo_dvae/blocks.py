"""The building blocks of the dVAE: a weight/bias convolution and the two residual blocks.

Parameter names follow OpenAI's ``dall_e`` package (``w``/``b``; ``id_path``, ``res_path.conv_i``)
so that the modules pickled in ``encoder.pkl``/``decoder.pkl`` map onto these one to one.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class Conv2d(nn.Module):
    """A stride-1, 'same'-padded convolution with parameters ``w`` [out, in, k, k], ``b`` [out].

    Weights start as N(0, 1 / (in * k * k)), biases as zero.
    """

    def __init__(self, n_in: int, n_out: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be a positive odd number, got {kernel_size}')
        self.kernel_size = kernel_size
        weight = torch.randn(n_out, n_in, kernel_size, kernel_size)
        self.w = nn.Parameter(weight / math.sqrt(n_in * kernel_size**2))
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in, H, W] -> [B, out, H, W]."""
        return F.conv2d(x, self.w, self.b, padding=(self.kernel_size - 1) // 2)

    def extra_repr(self) -> str:
        n_out, n_in = self.w.shape[:2]
        return f'{n_in}, {n_out}, kernel_size={self.kernel_size}'


class ResidualBlock(nn.Module):
    """``id_path(x) + res_path(x) / n_layers**2``, with a bottleneck of ``n_out // 4`` channels.

    ``id_path`` is a 1x1 convolution when the width changes, else the identity. ``res_path`` is
    four (ReLU, conv) pairs ``conv_1`` .. ``conv_4`` whose kernel sizes the subclass chooses.
    The small post-gain keeps the deep stack close to the identity at initialisation.
    """

    kernel_sizes: tuple[int, int, int, int]

    def __init__(self, n_in: int, n_out: int, n_layers: int) -> None:
        super().__init__()
        if n_out % 4:
            raise ValueError(f'block width must be a multiple of 4, got {n_out}')
        if n_layers < 1:
            raise ValueError(f'n_layers must be positive, got {n_layers}')
        n_bottleneck = n_out // 4
        widths = (n_in, n_bottleneck, n_bottleneck, n_bottleneck, n_out)
        self.post_gain = 1 / n_layers**2
        self.id_path = Conv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        layers = OrderedDict()
        for index, kernel_size in enumerate(self.kernel_sizes, start=1):
            layers[f'relu_{index}'] = nn.ReLU()
            layers[f'conv_{index}'] = Conv2d(widths[index - 1], widths[index], kernel_size)
        self.res_path = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, n_in, H, W] -> [B, n_out, H, W]."""
        return self.id_path(x) + self.post_gain * self.res_path(x)


class EncoderBlock(ResidualBlock):
    """Residual block of the encoder: 3x3, 3x3, 3x3, 1x1 convolutions."""

    kernel_sizes = (3, 3, 3, 1)


class DecoderBlock(ResidualBlock):
    """Residual block of the decoder: 1x1, 3x3, 3x3, 3x3 convolutions."""

    kernel_sizes = (1, 3, 3, 3)
