"""The dVAE encoder (pixels -> code logits) and decoder (code distributions -> pixel statistics).

Both hold their layers in ``blocks`` with the children ``input``, ``group_1`` ..
``group_{group_count}`` and ``output``, the module tree of OpenAI's pickled Encoder/Decoder.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Conv2d, DecoderBlock, EncoderBlock


def _group(blocks: list[nn.Module], resample: tuple[str, nn.Module] | None) -> nn.Sequential:
    layers = OrderedDict((f'block_{index}', block) for index, block in enumerate(blocks, start=1))
    if resample is not None:
        layers[resample[0]] = resample[1]
    return nn.Sequential(layers)


def _output_head(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(relu=nn.ReLU(), conv=Conv2d(n_in, n_out, 1)))


class Encoder(nn.Module):
    """[B, C, H, W] mapped pixels -> [B, codebook_size, H/f, W/f] logits, f = 2**(groups-1).

    Group g has ``n_blk_per_group`` blocks of width ``n_hid * 2**(g-1)`` and, except the last,
    a 2x2 max-pool.
    """

    def __init__(
        self,
        codebook_size: int,
        n_hid: int,
        n_blk_per_group: int,
        group_count: int,
        input_channels: int = 3,
    ) -> None:
        super().__init__()
        n_layers = group_count * n_blk_per_group
        blocks = OrderedDict(input=Conv2d(input_channels, n_hid, 7))
        width = n_hid
        for group in range(1, group_count + 1):
            group_width = n_hid * 2 ** (group - 1)
            members = []
            for _ in range(n_blk_per_group):
                members.append(EncoderBlock(width, group_width, n_layers))
                width = group_width
            pool = ('pool', nn.MaxPool2d(kernel_size=2)) if group < group_count else None
            blocks[f'group_{group}'] = _group(members, pool)
        blocks['output'] = _output_head(width, codebook_size)
        self.blocks = nn.Sequential(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, codebook_size, H/f, W/f]."""
        return self.blocks(x)


class Decoder(nn.Module):
    """[B, codebook_size, h, w] (one-hot or soft codes) -> [B, 2*C, h*f, w*f] pixel statistics.

    ``blocks.input`` is a 1x1 convolution to ``n_init`` channels; group g has blocks of width
    ``n_hid * 2**(group_count-g)`` and, except the last, a nearest 2x upsampling. The first C
    output channels are the logit-Laplace means, the others its log-scales.
    """

    def __init__(
        self,
        codebook_size: int,
        n_hid: int,
        n_blk_per_group: int,
        group_count: int,
        n_init: int,
        output_channels: int = 3,
    ) -> None:
        super().__init__()
        n_layers = group_count * n_blk_per_group
        blocks = OrderedDict(input=Conv2d(codebook_size, n_init, 1))
        width = n_init
        for group in range(1, group_count + 1):
            group_width = n_hid * 2 ** (group_count - group)
            members = []
            for _ in range(n_blk_per_group):
                members.append(DecoderBlock(width, group_width, n_layers))
                width = group_width
            upsample = (
                ('upsample', nn.Upsample(scale_factor=2, mode='nearest'))
                if group < group_count
                else None
            )
            blocks[f'group_{group}'] = _group(members, upsample)
        blocks['output'] = _output_head(width, 2 * output_channels)
        self.blocks = nn.Sequential(blocks)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, codebook_size, h, w] code distributions -> [B, 2*C, h*f, w*f]."""
        return self.blocks(codes)

    def forward_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, h, w] int64 codes -> [B, 2*C, h*f, w*f]; equals ``forward(one_hot(codes))``.

        The one-hot 1x1 input convolution is a column lookup, done without materialising the
        [B, codebook_size, h, w] one-hot tensor.
        """
        conv = self.blocks.input
        columns = conv.w[:, :, 0, 0].t()  # [codebook_size, n_init]
        features = F.embedding(codes, columns).permute(0, 3, 1, 2) + conv.b[:, None, None]
        for name, block in self.blocks.named_children():
            if name != 'input':
                features = block(features)
        return features
