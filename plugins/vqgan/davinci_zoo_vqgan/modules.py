"""The convolutional encoder and decoder of a VQGAN, laid out like taming-transformers.

Attribute names follow taming's state-dict layout (``down.{i}.block.{j}.conv1``,
``mid.attn_1.q``, ``up.{i}.upsample.conv`` ...) so that a taming checkpoint loads 1:1.
Every normalisation is a GroupNorm with ``norm_groups`` groups (taming: 32), eps 1e-6.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """The normalisation layer used everywhere (taming's ``Normalize``)."""
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """(GroupNorm, swish, conv3x3) twice plus a residual; [B, C_in, H, W] -> [B, C_out, H, W].

    A 1x1 ``nin_shortcut`` maps the residual when the channel count changes.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int, dropout: float):
        super().__init__()
        self.norm1 = group_norm(in_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, norm_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if hasattr(self, 'nin_shortcut'):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions plus a residual; shape-preserving."""

    def __init__(self, channels: int, norm_groups: int):
        super().__init__()
        self.norm = group_norm(channels, norm_groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        h = self.norm(x)

        def positions(conv: nn.Conv2d) -> torch.Tensor:  # [B, C, H, W] -> [B, 1, H*W, C]
            return conv(h).reshape(batch, 1, channels, height * width).transpose(2, 3)

        attended = F.scaled_dot_product_attention(
            positions(self.q), positions(self.k), positions(self.v)
        )
        attended = attended.transpose(2, 3).reshape(batch, channels, height, width)
        return x + self.proj_out(attended)


class Downsample(nn.Module):
    """Pad right/bottom by one, then a stride-2 conv3x3: [B, C, H, W] -> [B, C, H/2, W/2]."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest x2, then conv3x3: [B, C, H, W] -> [B, C, 2H, 2W]."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode='nearest'))


class Level(nn.Module):
    """One resolution of the encoder or decoder: ResnetBlocks, each optionally followed by
    an AttnBlock, then an optional resampling layer (registered by the caller)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_blocks: int,
        with_attention: bool,
        norm_groups: int,
        dropout: float,
    ):
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()
        for index in range(num_blocks):
            channels_in = in_channels if index == 0 else out_channels
            self.block.append(ResnetBlock(channels_in, out_channels, norm_groups, dropout))
            if with_attention:
                self.attn.append(AttnBlock(out_channels, norm_groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[index](x)
        return x


class Middle(nn.Module):
    """ResnetBlock, AttnBlock, ResnetBlock at the lowest resolution; shape-preserving."""

    def __init__(self, channels: int, norm_groups: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, norm_groups, dropout)
        self.attn_1 = AttnBlock(channels, norm_groups)
        self.block_2 = ResnetBlock(channels, channels, norm_groups, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    """[B, in_channels, H, W] -> [B, z_channels, H/f, W/f] with f = 2 ** (len(ch_mult) - 1).

    Attention follows each ResnetBlock of a level whose nominal resolution (``resolution``
    halved once per level) is in ``attn_resolutions``.
    """

    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        in_channels: int,
        resolution: int,
        z_channels: int,
        norm_groups: int,
        dropout: float,
    ):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        channels, current_resolution = ch, resolution
        for index, multiplier in enumerate(ch_mult):
            level = Level(
                channels,
                ch * multiplier,
                num_res_blocks,
                current_resolution in attn_resolutions,
                norm_groups,
                dropout,
            )
            channels = ch * multiplier
            if index != len(ch_mult) - 1:
                level.downsample = Downsample(channels)
                current_resolution //= 2
            self.down.append(level)
        self.mid = Middle(channels, norm_groups, dropout)
        self.norm_out = group_norm(channels, norm_groups)
        self.conv_out = nn.Conv2d(channels, z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
            if hasattr(level, 'downsample'):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """[B, z_channels, h, w] -> [B, out_ch, h*f, w*f], the mirror image of :class:`Encoder`.

    ``up`` is indexed like taming's: ``up[0]`` is the highest resolution; it runs last.
    Each level has ``num_res_blocks + 1`` ResnetBlocks.
    """

    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        out_ch: int,
        resolution: int,
        z_channels: int,
        norm_groups: int,
        dropout: float,
    ):
        super().__init__()
        channels = ch * ch_mult[-1]
        current_resolution = resolution // 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(z_channels, channels, 3, padding=1)
        self.mid = Middle(channels, norm_groups, dropout)
        levels = []
        for index in reversed(range(len(ch_mult))):
            level = Level(
                channels,
                ch * ch_mult[index],
                num_res_blocks + 1,
                current_resolution in attn_resolutions,
                norm_groups,
                dropout,
            )
            channels = ch * ch_mult[index]
            if index != 0:
                level.upsample = Upsample(channels)
                current_resolution *= 2
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(channels, norm_groups)
        self.conv_out = nn.Conv2d(channels, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
            if hasattr(level, 'upsample'):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))
