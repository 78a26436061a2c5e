"""How well an image tokenizer reconstructs: PSNR, SSIM, codebook usage, perplexity."""

from __future__ import annotations

import math

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from ..registry import METRICS
from .image_quality import psnr, ssim


@METRICS.register_module()
class ReconstructionMetric(BaseMetric):
    """Scores ``decode(encode(x))`` against ``x`` over a test set.

    Args:
        codebook_size: the tokenizer's codebook size (for the usage share).

    Reports ``psnr`` and ``ssim`` (means over images), ``codebook_usage`` (share of codes used
    at least once) and ``perplexity`` (of the code histogram over the whole set).

    Subclasses add their own scores per image by extending :meth:`score_image` (one dict per
    image) and :meth:`compute_metrics` (e.g. the scenes plugin's analyser accuracy).
    """

    default_prefix = 'reconstruction'

    def __init__(
        self, codebook_size: int, collect_device: str = 'cpu', prefix: str | None = None
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.codebook_size = codebook_size

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            images = sample['images'].float()
            reconstruction = sample['reconstruction'].float().clamp(0, 1)
            self.results.append(self.score_image(sample, reconstruction, images))

    def score_image(self, sample: dict, reconstruction: torch.Tensor, image: torch.Tensor) -> dict:
        """One image's results: reconstruction and image [3, H, W] in [0, 1]."""
        counts = torch.bincount(sample['codes'].flatten(), minlength=self.codebook_size)
        return dict(
            psnr=float(psnr(reconstruction[None], image[None])[0]),
            ssim=float(ssim(reconstruction[None], image[None])[0]),
            code_counts=counts.numpy(),
        )

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        counts = np.sum([r['code_counts'] for r in results], axis=0)
        share = counts / max(counts.sum(), 1)
        entropy = -float(np.sum(share[share > 0] * np.log(share[share > 0])))
        metrics = dict(
            psnr=float(np.mean([r['psnr'] for r in results])),
            ssim=float(np.mean([r['ssim'] for r in results])),
            codebook_usage=float((counts > 0).mean()),
            perplexity=math.exp(entropy),
        )
        return metrics
