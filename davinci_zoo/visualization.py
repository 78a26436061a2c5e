"""Image grids as PNG files (originals beside reconstructions, paintings for prompts)."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from .checkpoint import atomic_write


def image_grid(rows: list[list[torch.Tensor]], padding: int = 2) -> np.ndarray:
    """Tile rows of [3, H, W] images in [0, 1] (all the same size) into [H', W', 3] uint8."""
    if not rows or not rows[0]:
        raise ValueError('image_grid needs at least one image')
    height, width = rows[0][0].shape[-2:]
    columns = max(len(row) for row in rows)
    grid = np.zeros(
        (len(rows) * (height + padding) + padding, columns * (width + padding) + padding, 3),
        dtype=np.uint8,
    )
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            pixels = (image.detach().float().clamp(0, 1) * 255).round().byte()
            top, left = padding + r * (height + padding), padding + c * (width + padding)
            grid[top : top + height, left : left + width] = pixels.permute(1, 2, 0).cpu().numpy()
    return grid


def save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write an [H, W, 3] uint8 array as a PNG, atomically."""
    atomic_write(path, lambda stream: Image.fromarray(array).save(stream, format='PNG'))


def save_figure(figure, path: str | os.PathLike) -> None:
    """Write a matplotlib figure as a PNG (100 dpi), atomically, and close it."""
    from matplotlib import pyplot as plt

    atomic_write(path, lambda stream: figure.savefig(stream, format='png', dpi=100))
    plt.close(figure)
