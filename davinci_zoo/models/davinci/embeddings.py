"""BERT text embeddings: word + position + token type, LayerNorm, dropout (DAVINCI.md 1.3)."""

from __future__ import annotations

import torch
from torch import nn


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
        self.dropout = nn.Dropout(dropout)

    def __getattr__(self, name: str):
        if name == 'word_embeddings' and '_shared' in self.__dict__:
            return self.__dict__['_shared'][0]
        return super().__getattr__(name)

    @property
    def max_positions(self) -> int:
        return self.position_embeddings.num_embeddings

    def forward(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
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
        return self.dropout(self.LayerNorm(x))
