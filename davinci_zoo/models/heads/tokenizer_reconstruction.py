"""The tokenizer-reconstruction floor of text-to-image: 'paint' each real image's own codes."""

from __future__ import annotations

import torch

from ...registry import HEADS
from ..davinci import inference
from ..parts import IMAGE_TOKENIZER
from .base import Head, samples_for


@HEADS.register_module()
class TokenizerReconstructionHead(Head):
    """Evaluation only: the best painting a model with this image tokenizer could make.

    ``predict`` sets on each data sample ``pred_painting`` = the tokenizer's decoding of the
    real image's codes ([3, H, W] RGB in [0, 1]) and ``gt_image`` (the real image, uint8 RGB
    [3, H, W]), the keys :class:`~.text_to_image.TextToImageHead` sets, so the same metrics
    (``ImageGenerationMetric``, the scenes' ``ScenePaintAccuracy``) give the floor that no
    painting can beat. There is no ``pred_painting_score`` (nothing is ranked). Reads
    ``inputs['images']``; ``loss`` is ``{}`` (it has no parameters and nothing to learn).
    """

    inputs = ('images',)
    parts = (IMAGE_TOKENIZER,)

    def loss(self, model, inputs: dict, data_samples) -> dict[str, torch.Tensor]:
        return {}

    @torch.no_grad()
    def predict(self, model, inputs: dict, data_samples) -> list:
        images = inputs['images']
        samples = samples_for(data_samples, len(images))
        reconstructions = inference.codes_to_images(model, model.image_codes(images))
        pixels = model.data_preprocessor.pixels(images)
        real = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
        for row, sample in enumerate(samples):
            sample.set_field(reconstructions[row], 'pred_painting')
            sample.set_field(real[row], 'gt_image')
        return samples
