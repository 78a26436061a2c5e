"""The bidirectional encoder and the causal decoder with cross-attention.

As in the original (docs/original.md sections 1.3, 1.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import NEG_INF, KeyValueCache, RelativePositionBias2d
from .embeddings import ImageGridEmbeddings, TextEmbeddings, grid_cells, image_tokens
from .layers import TransformerLayer


def padding_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Key mask [B, S] (1 = attend) -> additive bias [B, 1, 1, S]."""
    return ((1.0 - mask.to(dtype)) * NEG_INF)[:, None, None, :]


class DaVinciEncoder(nn.Module):
    """Bidirectional post-LN transformer over [image tokens ; text] (either may be absent).

    Image tokens (already projected, with their own positions) are joined in front of the
    text embeddings *after* the embedding LayerNorm; text positions start at 0. The 2-D
    relative position bias, when asked for, is added among the image patch tokens (after the
    image cls token).
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        num_layers: int,
        max_positions: int,
        relative_grid: tuple[int, int],
        eps: float = 1e-12,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embeddings = TextEmbeddings(vocab_size, hidden_size, max_positions, eps, dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(
                hidden_size, num_heads, intermediate_size, eps, dropout, relative_grid=relative_grid
            )
            for _ in range(num_layers)
        )

    def forward(
        self,
        text_ids: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        image_tokens: torch.Tensor | None = None,
        relative_grid: tuple[int, int] | None = None,
    ):
        """-> (hidden [B, S, D], mask [B, S]); S = image tokens + text tokens.

        Args:
            text_ids, text_mask: [B, T] (mask 1 for real tokens).
            image_tokens: [B, 1 + h*w, D] from the image embedder.
            relative_grid: (h, w) of the image tokens to add the 2-D relative bias; None
                for no bias (text only, or prefix-image passes by default).
        """
        parts, masks = [], []
        if image_tokens is not None:
            parts.append(image_tokens)
            masks.append(image_tokens.new_ones(image_tokens.shape[:2]))
        if text_ids is not None:
            parts.append(self.embeddings(text_ids))
            masks.append(text_mask.to(parts[-1].dtype))
        if not parts:
            raise ValueError('the encoder needs text, an image, or both')
        hidden, mask = torch.cat(parts, dim=1), torch.cat(masks, dim=1)
        bias = padding_bias(mask, hidden.dtype)
        for layer in self.layers:
            layer_bias = bias
            if relative_grid is not None:
                layer_bias = bias + self._relative(layer, relative_grid, hidden.shape[1])
            hidden, _ = layer(hidden, layer_bias)
        return hidden, mask

    @staticmethod
    def _relative(layer, grid: tuple[int, int], length: int) -> torch.Tensor:
        patches = layer.attention.self.relative(*grid)  # [1, H, hw, hw]
        count = patches.shape[-1]
        pad = (1, length - 1 - count, 1, length - 1 - count)  # skip the image cls token
        return F.pad(patches, pad)


class LMHead(nn.Module):
    """``transform`` (dense, GELU, LayerNorm) then the tied word embeddings + ``bias``."""

    def __init__(
        self, hidden_size: int, vocab_size: int, eps: float, word_embeddings: nn.Embedding
    ) -> None:
        super().__init__()
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(hidden_size, hidden_size)
        self.transform.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.word_embeddings = [word_embeddings]  # a list: not registered twice
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, hidden: torch.Tensor, id_range: tuple[int, int]) -> torch.Tensor:
        """hidden [..., D] -> logits [..., end - start] over ids start..end-1 only."""
        start, end = id_range
        x = self.transform.LayerNorm(F.gelu(self.transform.dense(hidden)))
        weight = self.word_embeddings[0].weight[start:end]
        return F.linear(x, weight, self.bias[start:end])


class PaintingRelativeBias(nn.Module):
    """A learned 2-D relative position bias per decoder layer among a painting's tokens (ours;
    the original's decoder has none).

    Decoder position p of a painting predicts code p of the h x w grid in raster order, so the
    bias from position p to position q is the table entry for the offset between the cells
    they predict. Calls over text tokens get no bias. Tables start at zero.

    Args:
        grid: (h, w) codes of a full image.
        num_heads, num_layers: of the decoder.
        image_ids_from, image_bos_id: which ids are image tokens.
    """

    def __init__(
        self,
        grid: tuple[int, int],
        num_heads: int,
        num_layers: int,
        image_ids_from: int,
        image_bos_id: int,
    ) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.image_ids_from, self.image_bos_id = image_ids_from, image_bos_id
        self.tables = nn.ModuleList(
            RelativePositionBias2d(self.grid, num_heads) for _ in range(num_layers)
        )

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, cached: int):
        """Per layer bias [1, H, L, cached + L] for ids [B, L] at positions [L] or [B, L]
        after ``cached`` earlier positions (contiguous, as decoding feeds them); None for text.
        """
        is_image = image_tokens(ids, self.image_ids_from, self.image_bos_id)
        if not is_image.any():
            return None
        if not is_image.all():
            raise ValueError('a decoder call mixes text and image tokens')
        queries = positions.reshape(-1, positions.shape[-1])[0]
        start = int(queries[0]) - cached
        keys = torch.arange(start, start + cached + len(queries), device=positions.device)
        if start < 0 or not torch.equal(keys[cached:], queries):
            raise ValueError('painting positions must be contiguous after the cached ones')
        query_cells, key_cells = grid_cells(queries, self.grid), grid_cells(keys, self.grid)
        return [table.between(query_cells, key_cells) for table in self.tables]


class DaVinciDecoder(nn.Module):
    """Causal post-LN transformer with cross-attention over the encoder output.

    Supports an incremental KV cache: :meth:`forward` takes and returns the per-layer
    self-attention keys/values, and cross-attention keys/values are computed once per
    memory by :meth:`memory_keys_values`. ``image_grid_embeddings`` and ``painting_bias``,
    if given, add 2-D positions to image tokens (:class:`~.embeddings.ImageGridEmbeddings`,
    :class:`PaintingRelativeBias`).
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        num_layers: int,
        max_positions: int,
        word_embeddings: nn.Embedding,
        eps: float = 1e-12,
        dropout: float = 0.1,
        image_grid_embeddings: ImageGridEmbeddings | None = None,
        painting_bias: PaintingRelativeBias | None = None,
    ) -> None:
        super().__init__()
        self.embeddings = TextEmbeddings(
            vocab_size, hidden_size, max_positions, eps, dropout, word_embeddings=word_embeddings
        )
        self.image_grid_embeddings = image_grid_embeddings
        self.painting_bias = painting_bias
        self.layers = nn.ModuleList(
            TransformerLayer(
                hidden_size, num_heads, intermediate_size, eps, dropout, cross_attention=True
            )
            for _ in range(num_layers)
        )
        self.head = LMHead(hidden_size, vocab_size, eps, word_embeddings)

    def memory_keys_values(self, memory: torch.Tensor) -> list:
        """Per layer cross-attention (keys, values) of memory [B, S, D]."""
        return [layer.memory_keys_values(memory) for layer in self.layers]

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        memory_kv: list,
        memory_mask: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        past: list | KeyValueCache | None = None,
    ):
        """ids [B, L] at positions [B, L] -> (hidden [B, L, D], new past).

        Position i attends to past positions and to positions <= i of this call;
        ``padding_mask`` [B, P + L] (1 = real) additionally hides padded keys.

        ``past``: None; per layer (keys, values) [B, H, P, D/H], returned extended by this
        call's positions as a new list; or a :class:`~.attention.KeyValueCache`, which
        stores this call's keys/values in place and is returned. ``memory_kv`` per layer
        [B, H, S, D/H], or [M, H, S, D/H] with ``memory_mask`` [M, S] when groups of B / M
        rows share one memory (an input's beams or samples).
        """
        grid = None
        if self.image_grid_embeddings is not None:
            grid = self.image_grid_embeddings(ids, positions)
        hidden = self.embeddings(ids, positions, grid)
        length = ids.shape[1]
        bias = None  # one new position attends to every cached one and to itself
        if length > 1:
            bias = causal_bias(length, past_length(past), hidden.dtype, ids.device)
        if padding_mask is not None:
            padding = padding_bias(padding_mask, hidden.dtype)
            bias = padding if bias is None else bias + padding
        relative = None
        if self.painting_bias is not None:
            relative = self.painting_bias(ids, positions, past_length(past))
        memory_bias = padding_bias(memory_mask, hidden.dtype)
        if isinstance(past, KeyValueCache):
            slots = [past.slot(index) for index in range(len(self.layers))]
        else:
            slots = past or [None] * len(self.layers)
        new_past = []
        for index, (layer, layer_memory, slot) in enumerate(zip(self.layers, memory_kv, slots)):
            layer_bias = bias
            if relative is not None:
                layer_bias = relative[index] if bias is None else bias + relative[index]
            hidden, kv = layer(hidden, layer_bias, layer_memory, memory_bias, slot)
            new_past.append(kv)
        if isinstance(past, KeyValueCache):
            past.advance(length)
            return hidden, past
        return hidden, new_past


def past_length(past: list | KeyValueCache | None) -> int:
    """How many positions ``past`` (as :meth:`DaVinciDecoder.forward` takes it) holds."""
    if past is None:
        return 0
    if isinstance(past, KeyValueCache):
        return past.length
    return past[0][0].shape[2]


def causal_bias(length: int, cached: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Additive bias [1, 1, L, P + L]: new position i sees the P cached ones and new ones <= i."""
    causal = torch.ones(length, cached + length, dtype=torch.bool, device=device)
    causal = torch.tril(causal, diagonal=cached)
    bias = torch.zeros(causal.shape, dtype=dtype, device=device)
    return bias.masked_fill(~causal, NEG_INF)[None, None]
