"""PSNR and SSIM per image, from torchmetrics (imported on first use: it takes seconds).

torchmetrics' SSIM averages the index over the whole image, reflect-padding the border
windows; the valid-region mean used before differs from it by ~5e-4 on typical
reconstructions (more on tiny or very different images). See docs/evaluation.md.
"""

from __future__ import annotations

import torch

#: PSNR of identical images (torchmetrics gives inf): keeps a mean over images finite.
MAX_PSNR = 100.0


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB; images [B, C, H, W] in [0, 1] -> [B].

    At most :data:`MAX_PSNR` (identical images).
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    value = peak_signal_noise_ratio(
        prediction, target, data_range=1.0, reduction='none', dim=(1, 2, 3)
    )
    return value.clamp(max=MAX_PSNR)


def ssim(prediction: torch.Tensor, target: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004, Gaussian window of std ``sigma``).

    Images [B, C, H, W] in [0, 1] -> [B]. The window spans ``2 * round(3.5 * sigma) + 1``
    pixels (11 for 1.5) and is reflect-padded, so images need more than half of that per side.
    """
    half_window = int(3.5 * sigma + 0.5)  # torchmetrics' window size rule
    height, width = prediction.shape[-2:]
    if min(height, width) <= half_window:
        raise ValueError(
            f'SSIM with sigma {sigma} needs images of at least {half_window + 1}x'
            f'{half_window + 1} pixels, got {height}x{width}'
        )
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(
        prediction, target, sigma=sigma, data_range=1.0, reduction='none'
    )
