"""Images from a folder (tokenizer training on real pictures); bad files skipped and counted."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..registry import DATASETS
from .bad_rows import BadRow, DataFileError
from .transforms import build_pipeline, run_pipeline

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
logger = logging.getLogger(__name__)


@DATASETS.register_module()
class ImageFolderImages(Dataset):
    """Every image file below ``data_root`` (``.jpg .jpeg .png .bmp .webp``, any depth), for
    image tokenizers: images without captions.

    Args:
        data_root: the folder; searched recursively, files sorted by path (item ``i`` is the
            i-th readable file). Other files (``.json``, ``.txt``, ...) are ignored.
        pipeline: transforms from ``dict(img_path=<file>, sample_idx=i)`` to an item, e.g.
            ``LoadImageFromFile``, ``ResizeEdge``, ``CenterCrop``, ``PackDaVinciInputs``
            (``configs/_base_/datasets/image_folder_32.py``, ``image_folder_256.py``).
        max_bad_fraction: the largest share of unreadable files (default 0.1) before the
            dataset stops with a ValueError instead of training on what is left.

    Files that cannot be decoded are skipped: the ones found at start-up (a quick header check)
    are left out and counted in :attr:`num_skipped`; one that fails later in the pipeline is
    replaced by the next good image, counted, and logged. A missing folder, or one without a
    readable image, is a FileNotFoundError. A map-style dataset: use it with mmengine's
    samplers (``sampler=dict(type='InfiniteSampler')``).
    """

    def __init__(
        self, data_root: str, pipeline: Sequence = (), max_bad_fraction: float = 0.1
    ) -> None:
        root = Path(data_root)
        if not root.is_dir():
            raise FileNotFoundError(f'image folder {data_root} does not exist; see docs/data.md')
        candidates = sorted(p for p in root.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
        self.paths = [p for p in candidates if _header_ok(p)]
        self.num_skipped = len(candidates) - len(self.paths)
        self.pipeline = build_pipeline(pipeline)
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
            raise DataFileError(
                f'{self.num_skipped} of {total} images are unreadable, more than '
                f'max_bad_fraction={self.max_bad_fraction}'
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.paths)):
            position = (index + offset) % len(self.paths)
            info = dict(img_path=str(self.paths[position]), sample_idx=position)
            try:
                return run_pipeline(self.pipeline, info)
            except BadRow as error:
                self.num_skipped += 1
                logger.warning('ImageFolderImages: skipping %s (%s)', self.paths[position], error)
                self._check_bad_share()
        raise RuntimeError('no readable image left')


def _header_ok(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return False
    return True
