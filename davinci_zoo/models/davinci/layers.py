"""Post-LN BERT layers (GELU, LayerNorm eps 1e-12), with the original's parameter names.

A layer is ``attention`` (self) [+ ``crossattention``] + ``intermediate`` + ``output``, each
block ``x = LayerNorm(x + dropout(dense(block(x))))`` (docs/original.md sections 1.3, 1.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CacheSlot, MultiHeadAttention, RelativePositionBias2d
from .dropout import Dropout


class AttentionOutput(nn.Module):
    """``LayerNorm(residual + dropout(dense(x)))``."""

    def __init__(self, hidden_size: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class AttentionBlock(nn.Module):
    """``self`` (the attention) + ``output`` (projection, residual, LayerNorm)."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        eps: float,
        dropout: float,
        relative_grid: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.self = MultiHeadAttention(hidden_size, num_heads, dropout=dropout)
        if relative_grid is not None:
            self.self.relative = RelativePositionBias2d(relative_grid, num_heads)
        self.output = AttentionOutput(hidden_size, eps, dropout)

    def forward(self, hidden, keys, values, bias):
        return self.output(self.self.attend(hidden, keys, values, bias), hidden)


class FeedForward(nn.Module):
    """``intermediate`` (dense + GELU) is held by the layer; this is BERT's ``output`` block."""

    def __init__(
        self, intermediate_size: int, hidden_size: int, eps: float, dropout: float
    ) -> None:
        super().__init__()
        self.dense = nn.Linear(intermediate_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class Intermediate(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class TransformerLayer(nn.Module):
    """One BERT layer: self-attention [+ cross-attention] + feed-forward, post-LN.

    Args:
        cross_attention: add ``crossattention`` over a memory (decoder layers).
        relative_grid: give the self-attention a 2-D relative position table (encoder).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        eps: float = 1e-12,
        dropout: float = 0.1,
        cross_attention: bool = False,
        relative_grid: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.attention = AttentionBlock(hidden_size, num_heads, eps, dropout, relative_grid)
        if cross_attention:
            self.crossattention = AttentionBlock(hidden_size, num_heads, eps, dropout)
        self.intermediate = Intermediate(hidden_size, intermediate_size)
        self.output = FeedForward(intermediate_size, hidden_size, eps, dropout)

    def forward(
        self,
        hidden: torch.Tensor,
        self_bias: torch.Tensor | None,
        memory_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        memory_bias: torch.Tensor | None = None,
        past_kv: tuple[torch.Tensor, torch.Tensor] | CacheSlot | None = None,
    ):
        """hidden [B, L, D] -> ([B, L, D], this layer's self-attention keys/values).

        ``past_kv`` holds the keys/values of earlier positions: a tuple of [B, H, P, D/H]
        that this call's keys/values are appended to (new tensors), or a :class:`CacheSlot`
        of a preallocated :class:`~.attention.KeyValueCache` that stores them in place; either
        way the returned keys/values [B, H, P + L, D/H] cover every position. ``memory_kv``
        are the cross-attention keys/values of the memory, computed once per input by
        :meth:`memory_keys_values`, [B, H, S, D/H] or shared by groups of rows, [M, H, S, D/H]
        (see :meth:`~.attention.MultiHeadAttention.attend`).
        """
        keys, values = self.attention.self.keys_values(hidden)
        if isinstance(past_kv, CacheSlot):
            keys, values = past_kv.store(keys, values)
        elif past_kv is not None:
            keys = torch.cat([past_kv[0], keys], dim=2)
            values = torch.cat([past_kv[1], values], dim=2)
        hidden = self.attention(hidden, keys, values, self_bias)
        if memory_kv is not None:
            hidden = self.crossattention(hidden, memory_kv[0], memory_kv[1], memory_bias)
        hidden = self.output(self.intermediate(hidden), hidden)
        return hidden, (keys, values)

    def memory_keys_values(self, memory: torch.Tensor):
        """Cross-attention keys/values of a memory [B, S, D]: two [B, H, S, D/H]."""
        return self.crossattention.self.keys_values(memory)
