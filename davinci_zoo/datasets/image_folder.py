"""Images from a folder (tokenizer training on real pictures); corrupt files skipped and counted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..registry import DATASETS

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
logger = logging.getLogger(__name__)


def load_rgb(path: str | os.PathLike, size: int) -> torch.Tensor:
    """Read, centre-crop to a square and resize to ``size``: [3, size, size] float in [0, 1]."""
    with Image.open(path) as image:
        image = image.convert('RGB')
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        array = np.asarray(image, dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@DATASETS.register_module()
class ImageFolderImages(Dataset):
    """Every image file below ``data_root``, centre-cropped and resized to ``image_size``.

    Files that cannot be decoded are skipped: the ones found at start-up (a quick header check)
    are left out and counted in :attr:`num_skipped`; one that fails later while decoding is
    replaced by the next good image, counted, and logged. More than ``max_bad_fraction`` bad
    files stops with an error instead of training on what is left.

    Each item is ``dict(images=[3, S, S] float in [0, 1], caption='', index=int)``.
    """

    def __init__(
        self, data_root: str, image_size: int = 256, max_bad_fraction: float = 0.1
    ) -> None:
        root = Path(data_root)
        if not root.is_dir():
            raise FileNotFoundError(f'image folder {data_root} does not exist; see docs/data.md')
        candidates = sorted(p for p in root.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
        self.paths = [p for p in candidates if _header_ok(p)]
        self.num_skipped = len(candidates) - len(self.paths)
        self.image_size = image_size
        self.max_bad_fraction = max_bad_fraction
        if not self.paths:
            raise FileNotFoundError(
                f'no readable images ({", ".join(IMAGE_SUFFIXES)}) below '
                f'{data_root}; {self.num_skipped} unreadable'
            )
        self._check_bad_share()
        if self.num_skipped:
            logger.warning(
                'ImageFolderImages: skipped %d unreadable of %d files in %s',
                self.num_skipped,
                len(candidates),
                data_root,
            )

    def _check_bad_share(self) -> None:
        total = len(self.paths) + self.num_skipped
        if self.num_skipped > self.max_bad_fraction * total:
            raise ValueError(
                f'{self.num_skipped} of {total} images are unreadable, more than '
                f'max_bad_fraction={self.max_bad_fraction}'
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.paths)):
            position = (index + offset) % len(self.paths)
            try:
                images = load_rgb(self.paths[position], self.image_size)
            except (OSError, UnidentifiedImageError, ValueError) as error:
                self.num_skipped += 1
                logger.warning('ImageFolderImages: skipping %s (%s)', self.paths[position], error)
                self._check_bad_share()
                continue
            return dict(images=images, caption='', index=position)
        raise RuntimeError('no readable image left')


def _header_ok(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return False
    return True
