"""The convolutional encoder and decoder of a VQGAN, laid out like taming-transformers.

Attribute names follow taming's state-dict layout (``down.{i}.block.{j}.conv1``,
``mid.attn_1.q``, ``up.{i}.upsample.conv`` ...) so that a taming checkpoint loads 1:1.
Every normalisation is a GroupNorm with ``norm_groups`` groups (taming: 32), eps 1e-6.

``Encoder(cell_local=True)`` is our variant for small procedural images: each output cell is
computed from its own f x f input pixels only (1x1 convolutions, non-overlapping 2x2
downsampling, GroupNorm statistics per position, no attention), so equal cells always get equal
latents and hence equal codes. The taming layout and parameter names are otherwise kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from davinci_zoo.models.parts import ComponentArgumentError


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """The normalisation layer used everywhere (taming's ``Normalize``)."""
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class PositionNorm(nn.GroupNorm):
    """GroupNorm with statistics taken at each position separately (over the channels of a
    group only), so no position sees another: [B, C, H, W] -> [B, C, H, W]. Same parameters
    as :func:`group_norm`."""

    def __init__(self, channels: int, groups: int):
        super().__init__(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        grouped = x.permute(0, 2, 3, 1).reshape(
            batch, height, width, self.num_groups, channels // self.num_groups
        )
        normed = F.layer_norm(grouped, grouped.shape[-1:], eps=self.eps)
        normed = normed.reshape(batch, height, width, channels).permute(0, 3, 1, 2)
        return normed * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ResnetBlock(nn.Module):
    """(GroupNorm, swish, conv3x3) twice plus a residual; [B, C_in, H, W] -> [B, C_out, H, W].

    A 1x1 ``nin_shortcut`` maps the residual when the channel count changes. ``cell_local``
    makes both convolutions 1x1 and the normalisation per position.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm_groups: int,
        dropout: float,
        cell_local: bool = False,
    ):
        super().__init__()
        norm = PositionNorm if cell_local else group_norm
        kernel = 1 if cell_local else 3
        self.norm1 = norm(in_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)
        self.norm2 = norm(out_channels, norm_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel, padding=kernel // 2)
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


class CellDownsample(nn.Module):
    """A stride-2 conv2x2 over non-overlapping 2x2 blocks: [B, C, H, W] -> [B, C, H/2, W/2]."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


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
        cell_local: bool = False,
    ):
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()
        for index in range(num_blocks):
            channels_in = in_channels if index == 0 else out_channels
            self.block.append(
                ResnetBlock(channels_in, out_channels, norm_groups, dropout, cell_local)
            )
            if with_attention:
                self.attn.append(AttnBlock(out_channels, norm_groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[index](x)
        return x


class Middle(nn.Module):
    """ResnetBlock, AttnBlock, ResnetBlock at the lowest resolution; shape-preserving.

    ``cell_local``: per-position ResnetBlocks and no AttnBlock.
    """

    def __init__(self, channels: int, norm_groups: int, dropout: float, cell_local: bool = False):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, norm_groups, dropout, cell_local)
        if not cell_local:
            self.attn_1 = AttnBlock(channels, norm_groups)
        self.block_2 = ResnetBlock(channels, channels, norm_groups, dropout, cell_local)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block_1(x)
        if hasattr(self, 'attn_1'):
            x = self.attn_1(x)
        return self.block_2(x)


class Encoder(nn.Module):
    """[B, in_channels, H, W] -> [B, z_channels, H/f, W/f] with f = 2 ** (len(ch_mult) - 1).

    Attention follows each ResnetBlock of a level whose nominal resolution (``resolution``
    halved once per level) is in ``attn_resolutions``. ``cell_local``: each output cell sees
    only its own f x f pixels (see the module docstring); ``attn_resolutions`` must be empty.
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
        cell_local: bool = False,
    ):
        super().__init__()
        if cell_local and attn_resolutions:
            raise ComponentArgumentError(
                'a cell-local encoder has no attention: set attn_resolutions=() '
                f'(got {tuple(attn_resolutions)})'
            )
        kernel = 1 if cell_local else 3
        self.conv_in = nn.Conv2d(in_channels, ch, kernel, padding=kernel // 2)
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
                cell_local,
            )
            channels = ch * multiplier
            if index != len(ch_mult) - 1:
                level.downsample = CellDownsample(channels) if cell_local else Downsample(channels)
                current_resolution //= 2
            self.down.append(level)
        self.mid = Middle(channels, norm_groups, dropout, cell_local)
        self.norm_out = (PositionNorm if cell_local else group_norm)(channels, norm_groups)
        self.conv_out = nn.Conv2d(channels, z_channels, kernel, padding=kernel // 2)

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
