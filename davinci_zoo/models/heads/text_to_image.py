"""Text-to-image: paint N samples per caption and keep the one a scorer rates best."""

from __future__ import annotations

import torch

from ...registry import HEADS
from ..davinci import inference
from ..davinci.objectives import PrefixImage
from ..davinci.reranking import build_scorer, paint_scored
from ..parts import IMAGE_TOKENIZER, ComponentArgumentError
from .base import Head, generation_argument, samples_for


@HEADS.register_module()
class TextToImageHead(Head):
    """Fine-tunes and evaluates painting from a caption (docs/original.md 3.2).

    Args:
        num_samples: paintings drawn per caption (the original: 128); the best is kept.
        scorer: how they are ranked: a ``SCORERS`` name or config (default
            ``'CaptionLikelihoodScorer'``, the model's own caption likelihood; the original
            ranked with CLIP: ``dict(type='CLIPScorer', ...)`` from davinci-zoo-clip).
        generation: :class:`~..davinci.generation.GenerationConfig` keywords of the sampling
            (default: plain sampling, ``do_sample=True``; the original: ``top_k=4000``).
        loss_weight: multiplies the loss.

    ``loss``: the painting cross-entropy of :class:`~..davinci.objectives.PrefixImage` at
    ``mode='static'`` (the encoder reads the whole caption, the decoder paints every code),
    with the model's ``label_smoothing``.
    ``predict`` sets on each data sample ``pred_painting`` ([3, H, W] RGB in [0, 1], the best
    of ``num_samples``), ``pred_painting_score`` (its score) and ``gt_image`` (the batch's
    real image as uint8 RGB [3, H, W], the reference of :class:`ImageGenerationMetric`).
    Reads ``inputs['caption']`` and, for the loss and ``gt_image``, ``inputs['images']``.
    """

    inputs = ('caption',)
    parts = (IMAGE_TOKENIZER,)

    def __init__(
        self,
        num_samples: int = 8,
        scorer: str | dict | None = None,
        generation: dict | None = None,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if num_samples < 1:
            raise ComponentArgumentError(f'num_samples must be at least 1, got {num_samples}')
        self.num_samples = num_samples
        sampling = {'do_sample': True, **(generation or {})}
        self.generation = generation_argument(
            self, 'generation', sampling, inference.check_painting_config
        )
        self.scorer_config = scorer
        self._scorer = None  # built on first use, outside the module tree (not saved)
        self.painting = PrefixImage(weight=loss_weight, mode='static', name='paint')

    def loss(self, model, inputs: dict, data_samples) -> dict[str, torch.Tensor]:
        return self.painting(model, inputs)

    def scorer(self, model):
        """The re-ranking scorer, built once (a scorer with weights, e.g. CLIP, is not part of
        the checkpoint) and moved to the model's device."""
        if self._scorer is None:
            object.__setattr__(self, '_scorer', build_scorer(self.scorer_config))
        if isinstance(self._scorer, torch.nn.Module):
            self._scorer.to(model.device)
        return self._scorer

    @torch.no_grad()
    def predict(self, model, inputs: dict, data_samples) -> list:
        captions = inputs['caption']
        if data_samples is None or any('caption' not in s for s in data_samples):
            raise ValueError("TextToImageHead paints the data samples' caption texts; pack them")
        samples = samples_for(data_samples, captions.num_texts)
        texts = [sample.caption for sample in samples]
        paintings, scores = paint_scored(
            model, texts, self.generation, self.num_samples, self.scorer(model)
        )
        best = scores.argmax(1)
        chosen = paintings[torch.arange(len(paintings)), best]
        real = None
        if 'images' in inputs:
            pixels = model.data_preprocessor.pixels(inputs['images'])
            real = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
        for row, sample in enumerate(samples):
            sample.set_field(chosen[row], 'pred_painting')
            sample.set_field(float(scores[row, best[row]]), 'pred_painting_score')
            if real is not None:
                sample.set_field(real[row], 'gt_image')
        return samples
