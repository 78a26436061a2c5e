"""Country211 from OpenAI's release (``country211.tgz``), without downloading.

``<data_root>/country211/{train,valid,test}/<ISO 3166 code>/<name>.jpg``: 211 countries, 150
train, 50 valid and 100 test images each (YFCC100m photos with GPS in that country). The class
index is the position of the code in the sorted list of folders, as torchvision's
``ImageFolder`` (which the CLIP paper used) numbers them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..models.parts import ComponentArgumentError
from ..registry import DATASETS
from .bad_rows import BadDataError, BadRow, DataFileError
from .classified import ClassifiedDataset
from .image_folder import _header_ok
from .transforms import run_pipeline

SPLITS = ('train', 'valid', 'test')
SUFFIXES = ('.jpg', '.jpeg', '.png')
DOC = 'docs/tasks/linear_probe_data.md'
logger = logging.getLogger(__name__)


def class_folders(split_dir: str) -> list[str]:
    """The sorted class folder names of one split folder."""
    return sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())


@DATASETS.register_module()
class Country211(ClassifiedDataset):
    """Country211's images, as ``img_path`` (read them with ``LoadImageFromFile``).

    Args:
        data_root: the folder the archive was extracted into (holding ``country211/``).
        split: ``'train'``, ``'valid'`` or ``'test'``.
        check_images: open every image's header at start-up and leave out those that do not
            decode (counted in :attr:`num_skipped`, logged); off by default (63,300 files).
        max_bad_fraction: the largest share of such images before a ValueError.
        **kwargs: mmengine ``BaseDataset`` arguments (``pipeline``, ``test_mode``, ...).

    Item: ``img_path``, ``gt_label`` (the class folder's position among the sorted folders),
    ``metainfo['classes']``: the ISO codes. Every split folder present must hold the same
    class folders (else a one-line error naming them); an image that does not load in the
    pipeline stops it with a one-line error naming the file.
    """

    def __init__(
        self,
        data_root: str,
        split: str = 'train',
        check_images: bool = False,
        max_bad_fraction: float = 0.01,
        **kwargs,
    ) -> None:
        if split not in SPLITS:
            raise ComponentArgumentError(
                f'Country211: split must be one of {SPLITS}, not {split!r}'
            )
        self.split, self.check_images = split, check_images
        self.max_bad_fraction = max_bad_fraction
        self.folder = os.path.join(data_root, 'country211')
        self.num_skipped = 0
        kwargs.setdefault('test_mode', split != 'train')
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        split_dir = os.path.join(self.folder, self.split)
        if not os.path.isdir(split_dir):
            raise FileNotFoundError(f'Country211 folder {split_dir} does not exist; see {DOC}')
        codes = class_folders(split_dir)
        self._check_same_classes(codes)
        if self.CLASSES is None:
            self._metainfo['classes'] = tuple(codes)
        elif tuple(self.CLASSES) != tuple(codes):
            raise DataFileError(
                f'{split_dir} holds {len(codes)} class folders, not the {len(self.CLASSES)} '
                'classes given in metainfo'
            )
        paths = [
            (path, label)
            for label, code in enumerate(codes)
            for path in sorted(Path(split_dir, code).iterdir())
            if path.suffix.lower() in SUFFIXES
        ]
        if self.check_images:
            paths = self._readable(paths)
        if not paths:
            raise FileNotFoundError(f'{split_dir} holds no images ({", ".join(SUFFIXES)})')
        return [dict(img_path=str(path), gt_label=label) for path, label in paths]

    def _check_same_classes(self, codes: list[str]) -> None:
        """Every split folder present has the same class folders (so labels agree)."""
        for other in SPLITS:
            other_dir = os.path.join(self.folder, other)
            if other == self.split or not os.path.isdir(other_dir):
                continue
            difference = sorted(set(codes) ^ set(class_folders(other_dir)))
            if difference:
                raise DataFileError(
                    f'Country211: {self.split} and {other} hold different class folders '
                    f'({", ".join(difference[:5])}{" ..." if len(difference) > 5 else ""}); '
                    're-extract country211.tgz'
                )

    def _readable(self, paths: list) -> list:
        kept = [(path, label) for path, label in paths if _header_ok(path)]
        self.num_skipped = len(paths) - len(kept)
        if self.num_skipped > self.max_bad_fraction * len(paths):
            raise DataFileError(
                f'Country211 {self.split}: {self.num_skipped} of {len(paths)} images do not '
                f'decode, more than max_bad_fraction={self.max_bad_fraction}; re-extract '
                'country211.tgz'
            )
        if self.num_skipped:
            logger.warning(
                'Country211 %s: left out %d of %d images that do not decode',
                self.split,
                self.num_skipped,
                len(paths),
            )
        return kept

    def prepare_data(self, idx: int):
        """The pipeline's output for item ``idx``; a one-line error when its image does not load."""
        info = self.get_data_info(idx)
        try:
            return run_pipeline(self.pipeline, info)
        except BadRow as error:
            raise BadDataError(
                f'Country211 {self.split}: {error}; replace or delete the file, or build the '
                'dataset with check_images=True to leave such files out'
            ) from None

    def extra_repr(self) -> list[str]:
        return [f'Root of dataset: \t{self.data_root}', f'Split: \t{self.split}']
