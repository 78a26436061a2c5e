"""PSNR and SSIM of images in [0, 1] (written here: mmpretrain has neither)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image; inputs [B, C, H, W] in [0, 1] -> [B]."""
    mse = ((prediction - target) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def _gaussian_window(size: int, sigma: float, channels: int) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel_1d = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel_1d /= kernel_1d.sum()
    kernel = torch.outer(kernel_1d, kernel_1d)
    return kernel.expand(channels, 1, size, size).contiguous()


def ssim(
    prediction: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004, Gaussian window, valid region).

    Inputs [B, C, H, W] in [0, 1] -> [B]. The window shrinks to the image for small images.
    """
    channels = prediction.shape[1]
    window = min(window, prediction.shape[-1], prediction.shape[-2])
    kernel = _gaussian_window(window, sigma, channels).to(prediction)
    x, y = prediction.double(), target.double()
    kernel = kernel.double()

    def blur(image):
        return F.conv2d(image, kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return index.flatten(1).mean(1).float()
