"""Texts of a batch as padded id tensors, and the ``[CLS] span [SEP]`` sequences cut from them.

The data workers tokenise every text once (:class:`~.wordpiece.TokenizedText`); the collate
function pads them into a :class:`TextBatch`. The model then cuts the sequences it feeds the
encoder and the decoder (a caption, its first k words, the words after k) from those tensors,
without tokenising again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from .wordpiece import TokenizedText, WordPieceTokenizer

CLS_ID, SEP_ID, PAD_ID = WordPieceTokenizer.cls_id, WordPieceTokenizer.sep_id, 0


class TextBatch(NamedTuple):
    """N tokenised texts, padded (a NamedTuple, so mmengine's ``cast_data`` moves its tensors).

    Attributes:
        ids: [N, T] WordPiece ids without ``[CLS]``/``[SEP]``, padded with 0.
        words: [N, T] word index of each id, -1 at padding.
        num_words: [N] words per text (0: empty).
        owner: [N] the batch row each text belongs to (``arange(N)`` for one text per row;
            a row with several texts, e.g. VQA answers, owns several).
    """

    ids: torch.Tensor
    words: torch.Tensor
    num_words: torch.Tensor
    owner: torch.Tensor

    @property
    def num_texts(self) -> int:
        """N (``len()`` of a NamedTuple counts its fields, not the texts)."""
        return self.ids.shape[0]

    def select(self, rows) -> TextBatch:
        """The texts ``rows`` (a bool mask [N] or indices)."""
        return TextBatch(self.ids[rows], self.words[rows], self.num_words[rows], self.owner[rows])


def pad_texts(texts: Sequence[TokenizedText], owner: Sequence[int] | None = None) -> TextBatch:
    """Tokenised texts -> one :class:`TextBatch` (``owner`` defaults to 0 .. N-1)."""
    length = max((len(text.ids) for text in texts), default=0)
    ids = torch.zeros(len(texts), length, dtype=torch.long)
    words = torch.full((len(texts), length), -1, dtype=torch.long)
    for row, text in enumerate(texts):
        ids[row, : len(text.ids)] = text.ids
        words[row, : len(text.words)] = text.words
    num_words = torch.tensor([text.num_words for text in texts], dtype=torch.long)
    owner = torch.arange(len(texts)) if owner is None else torch.as_tensor(owner).long()
    return TextBatch(ids, words, num_words, owner)


def tokenize_texts(tokenizer: WordPieceTokenizer, texts: Sequence[str]) -> TextBatch:
    """Strings -> a TextBatch (for inputs that do not come from a data pipeline)."""
    return pad_texts([tokenizer.encode_words(text) for text in texts])


def word_span(texts: TextBatch, first, end) -> torch.Tensor:
    """Mask [N, T] of the ids whose word lies in [first, end) (ints or [N] tensors)."""
    first = torch.as_tensor(first, device=texts.words.device)
    end = torch.as_tensor(end, device=texts.words.device)
    first = first[:, None] if first.dim() else first
    end = end[:, None] if end.dim() else end
    return (texts.words >= first) & (texts.words < end)


def sequences(
    texts: TextBatch,
    keep: torch.Tensor | None = None,
    empty: torch.Tensor | None = None,
    max_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] kept ids [SEP]`` per text -> (ids [N, L], mask [N, L]; 1 = real token).

    Args:
        keep: [N, T] which ids to keep (a contiguous span per row; default: all real ids).
        empty: [N] rows that become ``[CLS]`` alone (the empty text, as the original
            tokenised ``""``); default: texts without words.
        max_tokens: longest sequence, ``[CLS]``/``[SEP]`` included: longer ones keep their
            first ``max_tokens - 2`` ids and the ``[SEP]``.
    """
    if keep is None:
        keep = texts.words >= 0
    if empty is None:
        empty = texts.num_words == 0
    counts = keep.sum(1)
    if max_tokens is not None:
        counts = counts.clamp(max=max_tokens - 2)
    lengths = torch.where(empty, 1, counts + 2)
    width = int(lengths.max()) if len(lengths) else 1
    column = torch.arange(width, device=texts.ids.device)[None]
    if texts.ids.shape[1]:
        start = keep.to(torch.int8).argmax(1)  # first kept id (0 when none is kept)
        source = (start[:, None] + column - 1).clamp(0, texts.ids.shape[1] - 1)
        copied = texts.ids.gather(1, source)
    else:  # no text has an id
        copied = torch.zeros(len(lengths), width, dtype=torch.long, device=texts.ids.device)
    counts, empty = counts[:, None], empty[:, None]
    ids = torch.where(column <= counts, copied, PAD_ID)
    ids = torch.where((column == counts + 1) & ~empty, SEP_ID, ids)
    ids = torch.where(column == 0, CLS_ID, ids)
    mask = (column < lengths[:, None]).long()
    return ids * mask, mask


__all__ = ['TextBatch', 'pad_texts', 'sequences', 'tokenize_texts', 'word_span']
