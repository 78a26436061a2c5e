"""Write a caption for every image and paint every caption (the pretraining evaluation)."""

from __future__ import annotations

import torch

from ...registry import HEADS
from ..davinci import inference
from ..davinci.reranking import CaptionLikelihoodScorer, sampled_and_reranked
from ..parts import IMAGE_TOKENIZER
from .base import Head, generation_argument, samples_for


@HEADS.register_module()
class WritePaintHead(Head):
    """Evaluates what pretraining taught: ``predict`` writes a caption from each image and
    paints each caption; it has no parameters and no loss of its own (the objectives train
    the parts it uses).

    Args:
        caption_generation: :class:`~..davinci.generation.GenerationConfig` keywords for the
            captions (default: greedy).
        painting_generation: the same for the paintings (default: greedy; e.g.
            ``dict(guidance_scale=3.0)``).
        reranked_painting: also paint ``num_samples`` samples per caption and keep the best
            by ``scorer`` (keywords of :func:`~..davinci.reranking.sampled_and_reranked`, e.g.
            ``dict(num_samples=8, temperature=0.5)``); None: greedy only.
        painting_likelihood: also score each painting with the model's own caption
            likelihood (:class:`~..davinci.reranking.CaptionLikelihoodScorer`, mean
            log-probability per token), for ``WritePaintMetric``'s ``self_likelihood``.

    Reads ``inputs['images']`` and ``inputs['caption']`` (one per image). Sets on each data
    sample: ``pred_caption`` (str) and ``pred_painting`` ([3, H, W] RGB in [0, 1]); with
    ``reranked_painting`` also ``pred_painting_sampled`` (one plain sample) and
    ``pred_painting_reranked`` (the best of N), which need the samples' ``caption`` texts;
    with ``painting_likelihood`` also ``pred_painting_likelihood`` (float).
    """

    inputs = ('images', 'caption')
    parts = (IMAGE_TOKENIZER,)

    def __init__(
        self,
        caption_generation: dict | None = None,
        painting_generation: dict | None = None,
        reranked_painting: dict | None = None,
        painting_likelihood: bool = False,
    ) -> None:
        super().__init__()
        self.caption_generation = generation_argument(
            self, 'caption_generation', caption_generation, inference.check_writing_config
        )
        self.painting_generation = generation_argument(
            self, 'painting_generation', painting_generation, inference.check_painting_config
        )
        self.reranked_painting = None if reranked_painting is None else dict(reranked_painting)
        self.painting_likelihood = painting_likelihood

    def loss(self, model, inputs: dict, data_samples) -> dict[str, torch.Tensor]:
        return {}

    @torch.no_grad()
    def predict(self, model, inputs: dict, data_samples) -> list:
        images = inputs['images']
        samples = samples_for(data_samples, len(images))
        written = inference.write_texts(model, images, self.caption_generation)
        codes, _ = inference.paint_codes(model, inputs['caption'], self.painting_generation)
        paintings = inference.codes_to_images(model, codes[:, 0])
        for sample, text, painting in zip(samples, written, paintings):
            sample.set_field(text, 'pred_caption')
            sample.set_field(painting, 'pred_painting')
        if self.painting_likelihood:
            scorer = CaptionLikelihoodScorer(reduction='mean')
            scores = scorer(model, paintings, [sample.caption for sample in samples])
            for sample, score in zip(samples, scores.tolist()):
                sample.set_field(score, 'pred_painting_likelihood')
        if self.reranked_painting is not None:
            captions = [sample.caption for sample in samples]
            first, best = sampled_and_reranked(model, captions, **self.reranked_painting)
            for sample, sampled, reranked in zip(samples, first, best):
                sample.set_field(sampled, 'pred_painting_sampled')
                sample.set_field(reranked, 'pred_painting_reranked')
        return samples
