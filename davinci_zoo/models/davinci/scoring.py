"""Scorers that re-rank paintings: how well images fit texts, higher is better.

A scorer is any callable ``scorer(model, images, texts) -> scores`` with images
[B, 3, H, W] in [0, 1], B strings and scores [B]; register one in
:data:`~davinci_zoo.registry.SCORERS` (a CLIP-style scorer from a plugin ignores ``model``).
The built-in one needs no other weights: the DaVinci model's own caption likelihood.
"""

from __future__ import annotations

import torch

from ...registry import SCORERS
from .vocabulary import TEXT


@SCORERS.register_module()
class CaptionLikelihoodScorer:
    """log p(text | image) under the model's writing, teacher-forced.

    The encoder sees the image and an empty text (``[CLS]``) as when writing a caption
    (:func:`~.inference.write_texts`); the decoder reads ``[CLS] text [SEP]``. The score
    adds (``reduction='sum'``, the log-likelihood) or averages (``'mean'``) the log-probability
    over text ids of every text token and the final ``[SEP]``.

    Args:
        reduction: ``'sum'`` or ``'mean'`` over the scored tokens. Re-ranking samples of one
            text ranks the same either way; ``'mean'`` compares texts of different lengths.
        max_tokens: WordPiece tokens kept per text (PrefixLM's 30), ``[CLS]``/``[SEP]`` included.

    Example:
        >>> scorer = SCORERS.build(dict(type='CaptionLikelihoodScorer'))
        >>> scorer(model, paintings, ['a small red circle in the top left'] * len(paintings))
    """

    def __init__(self, reduction: str = 'sum', max_tokens: int = 30) -> None:
        if reduction not in ('sum', 'mean'):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.reduction, self.max_tokens = reduction, max_tokens

    @torch.no_grad()
    def __call__(self, model, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Images [B, 3, H, W] in [0, 1] and B texts -> scores [B]."""
        if len(texts) != len(images):
            raise ValueError(f'{len(images)} images but {len(texts)} texts')
        if any(not text.strip() for text in texts):
            raise ValueError('an empty text has no likelihood to score')
        empty_ids, empty_mask = model.tokenize([''] * len(images))
        memory, memory_mask = model.encode(images, empty_ids, empty_mask)
        ids, mask = model.tokenize(list(texts), self.max_tokens)
        positions = torch.arange(ids.shape[1] - 1, device=ids.device)
        logits = model.decoder_logits(
            ids[:, :-1], positions, memory, memory_mask, TEXT, padding_mask=mask[:, :-1]
        )
        start = model.vocab.id_range(TEXT)[0]
        targets = (ids[:, 1:] - start)[..., None]
        token_scores = logits.float().log_softmax(-1).gather(-1, targets)[..., 0]
        scored = mask[:, 1:].to(token_scores.dtype)
        total = (token_scores * scored).sum(1)
        return total / scored.sum(1) if self.reduction == 'mean' else total
