"""STL-10 from its official binary release (``stl10_binary.tar.gz``), without downloading.

``<data_root>/stl10_binary/``: ``train_X.bin`` (5,000 images), ``train_y.bin``, ``test_X.bin``
(8,000), ``test_y.bin``, ``class_names.txt`` (10 lines). An image is 96 x 96 x 3 uint8 stored
channel by channel (red, green, blue), each channel column-major (MATLAB's order: down the
first column, then the second, ...); a label is one uint8 byte, 1..10. The unlabeled split
(``unlabeled_X.bin``) and the ten training folds (``fold_indices.txt``) are not used.
"""

from __future__ import annotations

import os

import numpy as np

from ..models.parts import ComponentArgumentError
from ..registry import DATASETS
from .bad_rows import DataFileError
from .classified import ClassifiedDataset

SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE
SPLITS = ('train', 'test')
DOC = 'docs/tasks/linear_probe_data.md'


def _existing(path: str) -> str:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'STL-10 file {path} does not exist; see {DOC}')
    return path


@DATASETS.register_module()
class STL10(ClassifiedDataset):
    """STL-10's labelled splits, the images read from the binary file on access (memory-mapped).

    Args:
        data_root: the folder the archive was extracted into (holding ``stl10_binary/``).
        split: ``'train'`` (5,000 images) or ``'test'`` (8,000).
        **kwargs: mmengine ``BaseDataset`` arguments (``pipeline``, ``test_mode``, ...).

    Item: ``img`` (96, 96, 3) uint8 BGR, ``gt_label`` int in 0..9 (the file's 1..10 minus
    one), ``metainfo['classes']`` from ``class_names.txt``. A truncated image file (a size that
    is not a whole number of images), a label file of another length, or a label outside
    1..number of class names stop it with a one-line error naming the file.
    """

    def __init__(self, data_root: str, split: str = 'train', **kwargs) -> None:
        if split not in SPLITS:
            raise ComponentArgumentError(f'STL10: split must be one of {SPLITS}, not {split!r}')
        self.split = split
        self.folder = os.path.join(data_root, 'stl10_binary')
        self.images_path = os.path.join(self.folder, f'{split}_X.bin')
        self._images = None
        kwargs.setdefault('test_mode', split == 'test')
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        size = os.path.getsize(_existing(self.images_path))
        if size == 0 or size % IMAGE_BYTES:
            raise DataFileError(
                f'{self.images_path} has {size} bytes, not a whole number of {IMAGE_BYTES}-byte '
                f'96x96x3 images: truncated or not STL-10; extract the archive again'
            )
        labels_path = _existing(os.path.join(self.folder, f'{self.split}_y.bin'))
        labels = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64)
        if len(labels) != size // IMAGE_BYTES:
            raise DataFileError(
                f'{labels_path} has {len(labels)} labels for the {size // IMAGE_BYTES} images '
                f'of {self.images_path}'
            )
        if self.CLASSES is None:
            names_path = _existing(os.path.join(self.folder, 'class_names.txt'))
            with open(names_path, encoding='utf-8') as stream:
                names = tuple(line.strip() for line in stream if line.strip())
            self._metainfo['classes'] = names
        bad = np.flatnonzero((labels < 1) | (labels > len(self.CLASSES)))
        if len(bad):
            raise DataFileError(
                f'{labels_path}: label {labels[bad[0]]} of image {bad[0]} is outside '
                f'1..{len(self.CLASSES)} ({len(bad)} such labels)'
            )
        return [dict(image_index=i, gt_label=int(label) - 1) for i, label in enumerate(labels)]

    def get_data_info(self, idx: int) -> dict:
        """The item's fields, with ``img`` (96, 96, 3) BGR read from the binary file."""
        info = super().get_data_info(idx)
        stored = self._image_file()[info['image_index']]  # [3, x (column), y (row)], RGB
        info['img'] = np.ascontiguousarray(stored.transpose(2, 1, 0)[..., ::-1])
        return info

    def _image_file(self) -> np.memmap:
        """[N, 3, 96, 96] view of the image file, opened once per process."""
        if self._images is None:
            self._images = np.memmap(self.images_path, dtype=np.uint8, mode='r').reshape(
                -1, 3, SIDE, SIDE
            )
        return self._images

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_images'] = None  # a data worker maps the file itself
        return state

    def extra_repr(self) -> list[str]:
        return [f'Root of dataset: \t{self.data_root}', f'Split: \t{self.split}']
