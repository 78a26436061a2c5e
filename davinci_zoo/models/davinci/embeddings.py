"""BERT text embeddings: word + position + token type, LayerNorm, dropout.

As in the original (docs/original.md section 1.3).
"""

from __future__ import annotations

import torch
from torch import nn

from .dropout import Dropout


class TextEmbeddings(nn.Module):
    """ids [B, L] (+ positions [B, L] or [L]) -> [B, L, D].

    ``word_embeddings`` covers text and visual ids; the encoder's table is shared with the
    decoder and the output layer (3-way tying): the decoder gets it as ``word_embeddings``
    and holds it without registering it again, so the parameter has one name (and appears in
    one optimizer group). Token types are always 0, as in the original.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        max_positions: int,
        eps: float = 1e-12,
        dropout: float = 0.1,
        word_embeddings: nn.Embedding | None = None,
    ) -> None:
        super().__init__()
        if word_embeddings is None:
            self.word_embeddings = nn.Embedding(vocab_size, hidden_size)
        else:
            self._shared = [word_embeddings]  # a list: not a registered child
        self.position_embeddings = nn.Embedding(max_positions, hidden_size)
        self.token_type_embeddings = nn.Embedding(2, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = Dropout(dropout)

    def __getattr__(self, name: str):
        if name == 'word_embeddings' and '_shared' in self.__dict__:
            return self.__dict__['_shared'][0]
        return super().__getattr__(name)

    @property
    def max_positions(self) -> int:
        return self.position_embeddings.num_embeddings

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        extra: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``extra`` [B or 1, L, D], if given, is added with the positions (before LayerNorm)."""
        if positions is None:
            positions = torch.arange(ids.shape[1], device=ids.device)
        if int(positions.max()) >= self.max_positions:
            raise ValueError(
                f'position {int(positions.max())} is beyond the '
                f'{self.max_positions} position embeddings'
            )
        x = (
            self.word_embeddings(ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings.weight[0]
        )
        if extra is not None:
            x = x + extra
        return self.dropout(self.LayerNorm(x))


class ImageGridEmbeddings(nn.Module):
    """Learned row and column embeddings of the code each image position predicts.

    Not in the original, whose decoder knows image positions only as 1-D raster indices; the
    factorised row + column embedding is DALL-E's. Decoder position p (p = 0 is the image BOS,
    p = r*w for a BOS after r prefix rows) predicts code p of the h x w grid in raster order,
    so it gets ``rows[p // w] + columns[p % w]``. Text tokens get nothing.

    Args:
        grid: (h, w) codes of a full image.
        hidden_size: D.
        image_ids_from: the first image code id (ids at or above it are image tokens).
        image_bos_id: the image BOS id (an image token too).
    """

    def __init__(
        self, grid: tuple[int, int], hidden_size: int, image_ids_from: int, image_bos_id: int
    ) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.image_ids_from, self.image_bos_id = image_ids_from, image_bos_id
        self.row_embeddings = nn.Embedding(self.grid[0], hidden_size)
        self.column_embeddings = nn.Embedding(self.grid[1], hidden_size)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """ids [B, L] at positions [L] or [B, L] -> [B, L, D] (zero at text tokens)."""
        rows, columns = grid_cells(positions, self.grid)
        grid = self.row_embeddings(rows) + self.column_embeddings(columns)
        is_image = image_tokens(ids, self.image_ids_from, self.image_bos_id)
        return grid * is_image[..., None].to(grid.dtype)


def image_tokens(ids: torch.Tensor, image_ids_from: int, image_bos_id: int) -> torch.Tensor:
    """Bool mask of the image tokens (codes and the image BOS) among ids [...]."""
    return (ids >= image_ids_from) | (ids == image_bos_id)


def grid_cells(positions: torch.Tensor, grid: tuple[int, int]):
    """Decoder positions [...] of a painting -> (rows, cols) [...] of the codes they predict
    in an h x w raster (positions past the grid count as its last cell)."""
    height, width = grid
    cells = positions.clamp(max=height * width - 1)
    return cells // width, cells % width
