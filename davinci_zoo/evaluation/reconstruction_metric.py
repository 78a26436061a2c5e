"""How well an image tokenizer reconstructs: PSNR, SSIM, codebook usage, scene analyser accuracy."""

from __future__ import annotations

import math

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from ..registry import METRICS
from ..scenes import analyse, parse_caption
from .image_quality import psnr, ssim


@METRICS.register_module()
class ReconstructionMetric(BaseMetric):
    """Scores ``decode(encode(x))`` against ``x`` over a test set.

    Args:
        codebook_size: the tokenizer's codebook size (for the usage share).

    Reports ``psnr`` and ``ssim`` (means over images), ``codebook_usage`` (share of codes used
    at least once), ``perplexity`` (of the code histogram over the whole set) and, for images
    with scene captions, ``analyser_accuracy`` (the analyser reads the reconstruction back as
    the caption says; this caps what painting can reach) next to ``analyser_accuracy_original``
    (the same on the originals, a sanity check that should be ~1).
    """

    default_prefix = 'reconstruction'

    def __init__(
        self, codebook_size: int, collect_device: str = 'cpu', prefix: str | None = None
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.codebook_size = codebook_size

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            images = sample['images'][None].float()
            reconstruction = sample['reconstruction'][None].float().clamp(0, 1)
            counts = torch.bincount(sample['codes'].flatten(), minlength=self.codebook_size)
            result = dict(
                psnr=float(psnr(reconstruction, images)[0]),
                ssim=float(ssim(reconstruction, images)[0]),
                code_counts=counts.numpy(),
            )
            description = parse_caption(sample.get('caption') or '')
            if description is not None:
                result['analysed'] = analyse(_to_uint8(reconstruction[0])) == description
                result['analysed_original'] = analyse(_to_uint8(images[0])) == description
            self.results.append(result)

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
        scored = [r for r in results if 'analysed' in r]
        if scored:
            metrics['analyser_accuracy'] = float(np.mean([r['analysed'] for r in scored]))
            metrics['analyser_accuracy_original'] = float(
                np.mean([r['analysed_original'] for r in scored])
            )
            metrics['analysed_images'] = len(scored)
        return metrics


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[3, H, W] float in [0, 1] -> [H, W, 3] uint8."""
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
