"""Multi-head attention as in BERT (``query``/``key``/``value`` projections), through SDPA
(written out on a CPU when attention dropout is on: :mod:`.dropout`).

The original divides its additive mask by sqrt(head_dim) too (-10000/8 instead of -10000,
docs/original.md section 1.3); both are "minus infinity" in fp32, so a plain additive bias is
used here.

For decoding, keys/values may be shared by groups of query rows (the memory of one input,
read by all its beams or samples: stored once, not repeated), and :class:`KeyValueCache`
holds the decoder's self-attention keys/values in buffers written in place step by step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..parts import ComponentArgumentError
from .dropout import attention

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
            raise ComponentArgumentError(
                f'hidden_size {hidden_size} is not divisible by {num_heads} heads'
            )
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
        """Queries from hidden [B, L, D] over keys/values [M, H, S, D/H] -> [B, L, D].

        M = B: row b attends to keys row b. M < B (shared keys, M divides B): rows
        m*g .. m*g + g - 1 (g = B / M) all attend to keys row m; ``bias`` must then be the
        same for every query (shape [M or 1, 1, 1, S]), as a memory's padding bias is.
        """
        queries = self.split_heads(self.query(hidden))
        batch, _, length, _ = queries.shape
        shared = len(keys) != batch
        if shared:
            queries = group_rows(queries, len(keys))
        out = attention(queries, keys, values, bias, self.dropout if self.training else 0.0)
        if shared:
            return ungroup_rows(out, batch)
        return out.transpose(1, 2).reshape(batch, length, -1)


def group_rows(queries: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, H, L, d] -> [M, H, g*L, d] (M = ``groups``, g = B / M): each group's queries in one row.

    Attention treats queries independently, so g rows over one keys row are the same as one
    row of g*L queries over it; :func:`ungroup_rows` undoes this on the output. With L = 1
    (a decoding step) the result is a view, not a copy.
    """
    batch, heads, length, width = queries.shape
    if groups < 1 or batch % groups:
        raise ValueError(f'{batch} query rows cannot share keys of {groups} rows')
    per_group = batch // groups
    grouped = queries.view(groups, per_group, heads, length, width).transpose(1, 2)
    return grouped.reshape(groups, heads, per_group * length, width)


def ungroup_rows(out: torch.Tensor, batch: int) -> torch.Tensor:
    """Attention output [M, H, g*L, d] of :func:`group_rows`' queries -> [B, L, H*d] (B = M*g).

    Undoes the grouping and merges the heads in one copy.
    """
    groups, heads, total, width = out.shape
    per_group = batch // groups
    length = total // per_group
    ungrouped = out.view(groups, heads, per_group, length, width).permute(0, 2, 3, 1, 4)
    return ungrouped.reshape(batch, length, heads * width)


class RelativePositionBias2d(nn.Module):
    """A learned bias per head for each 2-D offset between image tokens
    (docs/original.md section 1.3).

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
        return self.between((rr, cc), (rr, cc))

    def between(self, queries, keys) -> torch.Tensor:
        """The bias from query cells to key cells: [1, heads, Lq, Lk].

        ``queries`` and ``keys``: (rows, cols) int tensors [Lq] and [Lk] inside the grid.
        """
        rows, cols = self.grid
        index = (queries[0][:, None] - keys[0][None] + rows - 1) * (2 * cols - 1) + (
            queries[1][:, None] - keys[1][None] + cols - 1
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


class KeyValueCache:
    """Self-attention keys/values of every decoder layer for incremental decoding, preallocated.

    ``buffer`` [N, layers, 2, H, capacity, d] holds, for each of the N rows and each layer,
    the keys (index 0) and values (1) of the ``length`` positions fed so far. A step writes
    its positions into the next free slots in place (no concatenation) and attends over the
    filled prefix, a view. The buffer is allocated on the first write with room for
    ``capacity`` positions (or that write's, if more); it doubles whenever a write overflows.

    Protocol of one decoder call over L new positions: every layer ``i`` calls
    ``slot(i).store(keys, values)``, then the decoder calls :meth:`advance` (L).
    """

    def __init__(self, num_layers: int, capacity: int = 0) -> None:
        self.num_layers, self.capacity, self.length = num_layers, capacity, 0
        self.buffer: torch.Tensor | None = None

    def layer(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [N, H, length, d] of layer ``index`` (views into the buffer)."""
        filled = self.buffer[:, index, :, :, : self.length]
        return filled[:, 0], filled[:, 1]

    def slot(self, index: int) -> CacheSlot:
        """Layer ``index``'s handle for :class:`~.layers.TransformerLayer` (``past_kv``)."""
        return CacheSlot(self, index)

    def store(self, index: int, keys: torch.Tensor, values: torch.Tensor):
        """Write layer ``index``'s keys/values [N, H, L, d] after the ``length`` filled slots.

        Returns the layer's keys and values [N, H, length + L, d] (views into the buffer).
        """
        end = self.length + keys.shape[2]
        if self.buffer is None:
            rows, heads, _, width = keys.shape
            shape = (rows, self.num_layers, 2, heads, max(self.capacity, end), width)
            self.buffer = keys.new_empty(shape)
        elif end > self.buffer.shape[4]:
            self._resize(max(end, 2 * self.buffer.shape[4]))
        written = self.buffer[:, index, :, :, self.length : end]
        written[:, 0] = keys
        written[:, 1] = values
        filled = self.buffer[:, index, :, :, :end]
        return filled[:, 0], filled[:, 1]

    def advance(self, count: int) -> None:
        """Mark ``count`` more positions filled (after every layer stored them)."""
        self.length += count

    def reorder(self, index: torch.Tensor) -> None:
        """Keep (or repeat) rows ``index`` [N'] of the filled positions."""
        if self.buffer is None:
            return
        kept = self.buffer[index, :, :, :, : self.length]  # a gather of the filled prefix
        if len(index) != len(self.buffer):
            self.buffer = self.buffer.new_empty((len(index), *self.buffer.shape[1:]))
        self.buffer[:, :, :, :, : self.length] = kept

    def _resize(self, capacity: int) -> None:
        """Move the filled positions into a buffer with room for ``capacity`` positions."""
        old = self.buffer
        self.buffer = old.new_empty((*old.shape[:4], capacity, old.shape[5]))
        self.buffer[:, :, :, :, : self.length] = old[:, :, :, :, : self.length]


class CacheSlot:
    """One layer's view of a :class:`KeyValueCache`: ``store(keys, values)`` as the layer
    sees it (keys/values [N, H, L, d] in, the layer's [N, H, length + L, d] out)."""

    def __init__(self, cache: KeyValueCache, index: int) -> None:
        self.cache, self.index = cache, index

    def store(self, keys: torch.Tensor, values: torch.Tensor):
        return self.cache.store(self.index, keys, values)
