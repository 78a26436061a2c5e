"""Re-ranking paintings: scorers, and drawing N paintings per text to keep the best.

A scorer is any callable ``scorer(model, images, texts) -> scores`` with images
[B, 3, H, W] RGB in [0, 1], B strings and scores [B], higher is better; register one in
:data:`~davinci_zoo.registry.SCORERS` (a CLIP-style scorer from a plugin ignores ``model``).
The built-in one needs no other weights: the DaVinci model's own caption likelihood.
The API (:func:`davinci_zoo.apis.paint`), ``tools/paint.py`` and
:class:`~davinci_zoo.models.heads.WritePaintHead` all re-rank through this module.
"""

from __future__ import annotations

import torch

from ...registry import SCORERS
from . import inference
from .generation import GenerationConfig
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
        """Images [B, 3, H, W] RGB in [0, 1] and B texts -> scores [B]."""
        if len(texts) != len(images):
            raise ValueError(f'{len(images)} images but {len(texts)} texts')
        if any(not text.strip() for text in texts):
            raise ValueError('an empty text has no likelihood to score')
        empty_ids, empty_mask = model.tokenize([''] * len(images))
        pixels = model.data_preprocessor.normalize(images.to(model.device))
        memory, memory_mask = model.encode(pixels, empty_ids, empty_mask)
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


def build_scorer(scorer=None, **options):
    """None: CaptionLikelihoodScorer; a SCORERS name (with its ``options``) or config dict:
    built; a callable: itself."""
    if scorer is None:
        scorer = 'CaptionLikelihoodScorer'
    if isinstance(scorer, str):
        scorer = dict(type=scorer, **options)
    elif options:
        raise ValueError('scorer options go with a scorer name')
    return SCORERS.build(scorer) if isinstance(scorer, dict) else scorer


@torch.no_grad()
def score_samples(model, images: torch.Tensor, texts: list[str], scorer) -> torch.Tensor:
    """Scores [B, N] of images [B, N, 3, H, W] against their texts (B strings)."""
    batch, samples = images.shape[:2]
    repeated = [text for text in texts for _ in range(samples)]
    scores = scorer(model, images.flatten(0, 1), repeated)
    return torch.as_tensor(scores, dtype=torch.float32).view(batch, samples)


def best_first(images: torch.Tensor, scores: torch.Tensor):
    """Sort samples images [B, N, ...] by scores [B, N], highest first: (images, scores)."""
    scores, order = scores.sort(dim=1, descending=True, stable=True)
    index = order.view(*order.shape, *[1] * (images.dim() - 2)).expand_as(images)
    return images.gather(1, index), scores


@torch.no_grad()
def paint_scored(
    model, texts: list[str], config: GenerationConfig, num_samples: int, scorer=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint ``num_samples`` per text and score them with ``scorer`` (see
    :func:`build_scorer`): (paintings [B, N, 3, H, W] in [0, 1] in drawing order, scores [B, N])."""
    codes, _ = inference.paint_codes(model, texts, config, num_samples)
    images = inference.codes_to_images(model, codes)
    return images, score_samples(model, images, texts, build_scorer(scorer))


def sampled_and_reranked(
    model, texts: list[str], num_samples: int = 8, scorer=None, **gen
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint ``num_samples`` per text (plain sampling unless ``gen`` says otherwise) ->
    (the first sample drawn, the sample ``scorer`` rates best), each [B, 3, H, W] in [0, 1]."""
    config = GenerationConfig(**{'do_sample': True, **gen})
    images, scores = paint_scored(model, texts, config, num_samples, scorer)
    return images[:, 0], images[torch.arange(len(images)), scores.argmax(1)]
