"""Multi-head attention as in BERT (``query``/``key``/``value`` projections), through SDPA.

The original divides its additive mask by sqrt(head_dim) too (-10000/8 instead of -10000,
DAVINCI.md 1.3); both are "minus infinity" in fp32, so a plain additive bias is used here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NEG_INF = -1e4  # the original's additive mask value; exp(-1e4) is 0 in fp32


class MultiHeadAttention(nn.Module):
    """softmax(q k^T / sqrt(d) + bias) v over ``num_heads`` heads.

    Args:
        hidden_size: width D of queries and outputs.
        num_heads: H; head width is D / H.
        key_size: width of the keys/values input (cross-attention memory); default D.
        dropout: attention-probability dropout.
    """

    def __init__(
        self, hidden_size: int, num_heads: int, key_size: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f'hidden_size {hidden_size} is not divisible by {num_heads} heads')
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(key_size or hidden_size, hidden_size)
        self.value = nn.Linear(key_size or hidden_size, hidden_size)
        self.dropout = dropout

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, D] -> [B, H, L, D/H]."""
        batch, length, width = x.shape
        return x.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, S, Dk] -> keys and values, each [B, H, S, D/H]."""
        return self.split_heads(self.key(source)), self.split_heads(self.value(source))

    def attend(
        self,
        hidden: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """Queries from hidden [B, L, D] over keys/values [B, H, S, D/H] -> [B, L, D]."""
        queries = self.split_heads(self.query(hidden))
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            queries, keys, values, attn_mask=bias, dropout_p=dropout
        )
        batch, _, length, _ = out.shape
        return out.transpose(1, 2).reshape(batch, length, -1)


class RelativePositionBias2d(nn.Module):
    """A learned bias per head for each 2-D offset between image tokens (DAVINCI.md 1.3).

    The table covers a ``grid`` of (rows, cols) -- offsets in [-(rows-1), rows-1] x
    [-(cols-1), cols-1] -- and is indexed by each input's actual (h, w) <= grid. Loading a
    checkpoint made for another grid resizes the table bicubically.

    Parameter ``relative_bias_table``: [(2 rows - 1) (2 cols - 1), heads], zero-initialised.
    """

    def __init__(self, grid: tuple[int, int], num_heads: int) -> None:
        super().__init__()
        self.grid = tuple(grid)
        rows, cols = self.grid
        self.relative_bias_table = nn.Parameter(
            torch.zeros((2 * rows - 1) * (2 * cols - 1), num_heads)
        )

    def forward(self, height: int, width: int) -> torch.Tensor:
        """The bias among an h x w grid of tokens (row-major): [1, heads, h*w, h*w]."""
        rows, cols = self.grid
        if height > rows or width > cols:
            raise ValueError(
                f'image token grid {height}x{width} exceeds the relative '
                f'position table grid {rows}x{cols}; raise relative_grid'
            )
        r = torch.arange(height, device=self.relative_bias_table.device)
        c = torch.arange(width, device=self.relative_bias_table.device)
        rr, cc = torch.meshgrid(r, c, indexing='ij')
        rr, cc = rr.flatten(), cc.flatten()
        index = (rr[:, None] - rr[None] + rows - 1) * (2 * cols - 1) + (
            cc[:, None] - cc[None] + cols - 1
        )
        return self.relative_bias_table[index].permute(2, 0, 1)[None]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + 'relative_bias_table'
        table = state_dict.get(key)
        if table is not None and table.shape != self.relative_bias_table.shape:
            state_dict[key] = resize_relative_table(table, self.grid)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def resize_relative_table(table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bicubically resize a square-grid table [(2n-1)^2, H] to ``grid`` (rows, cols)."""
    side = int(round(table.shape[0] ** 0.5))
    if side * side != table.shape[0]:
        raise ValueError(f'cannot resize a relative position table of {table.shape[0]} rows')
    heads = table.shape[1]
    image = table.T.reshape(1, heads, side, side).float()
    rows, cols = grid
    resized = F.interpolate(
        image, size=(2 * rows - 1, 2 * cols - 1), mode='bicubic', align_corners=False
    )
    return resized.reshape(heads, -1).T.to(table.dtype).contiguous()
