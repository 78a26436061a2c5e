"""Images stored in CIFAR's python layout that are not the official CIFAR release.

mmpretrain's ``CIFAR10`` / ``CIFAR100`` read the official archives and check their md5 sums
(the probe configs use them for the real CIFAR). :class:`CIFARLayout` reads any set written in
the same layout, e.g. the scene classification set of the scenes plugin (its ``classification``
task), with any class count and image side, and no sums:

- CIFAR-10 style: ``data_batch_1 ... data_batch_N`` (train), ``test_batch``, ``batches.meta``
  (``label_names``); rows carry ``labels``;
- CIFAR-100 style: ``train``, ``test``, ``meta`` (``fine_label_names``, ``coarse_label_names``);
  rows carry ``fine_labels`` and ``coarse_labels``.

Each batch file is a pickled dict with ``data`` [N, 3 * S * S] uint8 (all red values of an
image, then green, then blue, each row by row) and its labels; keys may be str (the official
Python 2 pickles) or bytes (files written by Python 3).
"""

from __future__ import annotations

import math
import os
import pickle
import re

import numpy as np

from ..models.parts import ComponentArgumentError
from ..registry import DATASETS
from .bad_rows import DataFileError
from .classified import ClassifiedDataset

#: label key -> the meta file key holding its class names.
NAME_KEYS = {
    'labels': 'label_names',
    'fine_labels': 'fine_label_names',
    'coarse_labels': 'coarse_label_names',
}
SPLITS = ('train', 'test')
DOC = 'docs/tasks/linear_probe_data.md'


def read_batch(path: str) -> dict:
    """A pickled CIFAR batch or meta file -> a dict with str keys (bytes keys decoded)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'CIFAR layout file {path} does not exist; see {DOC}')
    try:
        with open(path, 'rb') as stream:
            content = pickle.load(stream, encoding='latin1')
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataFileError(
            f'{path} is not a pickled CIFAR batch ({type(error).__name__}: {error})'
        ) from None
    if not isinstance(content, dict):
        raise DataFileError(f'{path} holds a {type(content).__name__}, not a CIFAR batch dict')
    return {_text(key): value for key, value in content.items()}


def _text(value) -> str:
    return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def batch_files(root: str, split: str) -> tuple[list[str], str]:
    """The batch files of ``split`` and the meta file, CIFAR-10 or CIFAR-100 style."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f'CIFAR layout folder {root} does not exist; see {DOC}')
    names = os.listdir(root)
    numbered = sorted(
        (n for n in names if re.fullmatch(r'data_batch_\d+', n)),
        key=lambda n: int(n.rsplit('_', 1)[1]),
    )
    if numbered or 'test_batch' in names:
        files = numbered if split == 'train' else ['test_batch']
        meta = 'batches.meta'
    elif 'train' in names or 'test' in names:
        files, meta = [split], 'meta'
    else:
        raise FileNotFoundError(
            f'{root} holds neither data_batch_* / test_batch (CIFAR-10 style) nor train / test '
            f'(CIFAR-100 style); see {DOC}'
        )
    if not files:
        raise FileNotFoundError(f'{root} has no data_batch_* files for the train split')
    return [os.path.join(root, f) for f in files], os.path.join(root, meta)


def batch_images(path: str, batch: dict) -> np.ndarray:
    """``batch['data']`` [N, 3 * S * S] (channel-major RGB) -> [N, S, S, 3] BGR uint8."""
    if 'data' not in batch:
        raise DataFileError(f'{path} has no data entry (keys: {sorted(batch)})')
    data = np.asarray(batch['data'])
    if data.dtype != np.uint8 or data.ndim != 2:
        raise DataFileError(f'{path}: data is {data.dtype} {data.shape}, not uint8 [N, 3 * S * S]')
    side = math.isqrt(data.shape[1] // 3)
    if 3 * side * side != data.shape[1]:
        raise DataFileError(f'{path}: rows of {data.shape[1]} values are not 3 square channels')
    rgb = data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(rgb[..., ::-1])


@DATASETS.register_module()
class CIFARLayout(ClassifiedDataset):
    """A classification set in CIFAR's python layout, read without md5 sums.

    Args:
        data_root: the folder holding the batch files (e.g. ``.../cifar-10-batches-py``).
        split: ``'train'`` (every ``data_batch_*``, in numeric order, or ``train``) or
            ``'test'`` (``test_batch`` or ``test``).
        label_key: the rows' label entry (``labels``, ``fine_labels``, ``coarse_labels``);
            None: ``labels`` if the rows have it, else ``fine_labels``. Class names come from
            the meta file's matching entry, unless ``metainfo``/``classes`` give them.
        **kwargs: mmengine ``BaseDataset`` arguments (``pipeline``, ``test_mode``, ...).

    Item: ``img`` (S, S, 3) uint8 BGR, ``gt_label`` int. A file that is missing or not of the
    layout, rows and labels of different counts, or a label outside the class names stop
    it with a one-line error naming the file (and row).
    """

    def __init__(
        self, data_root: str, split: str = 'train', label_key: str | None = None, **kwargs
    ) -> None:
        if split not in SPLITS:
            raise ComponentArgumentError(
                f'CIFARLayout: split must be one of {SPLITS}, not {split!r}'
            )
        if label_key is not None and label_key not in NAME_KEYS:
            raise ComponentArgumentError(
                f'CIFARLayout: label_key must be one of {tuple(NAME_KEYS)}'
            )
        self.split, self.label_key = split, label_key
        kwargs.setdefault('test_mode', split == 'test')
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        files, meta_path = batch_files(self.data_root, self.split)
        images, labels, owners = [], [], []
        for path in files:
            batch = read_batch(path)
            key = self.label_key or ('labels' if 'labels' in batch else 'fine_labels')
            if key not in batch:
                raise DataFileError(f'{path} has no {key} entry (keys: {sorted(batch)})')
            self.label_key = key
            batch_labels = [int(label) for label in batch[key]]
            batch_imgs = batch_images(path, batch)
            if len(batch_labels) != len(batch_imgs):
                raise DataFileError(
                    f'{path} has {len(batch_imgs)} images but {len(batch_labels)} {key}'
                )
            images.append(batch_imgs)
            labels.extend(batch_labels)
            owners.extend((path, row) for row in range(len(batch_labels)))
        if self.CLASSES is None:
            self._metainfo['classes'] = self._class_names(meta_path)
        num_classes = len(self.CLASSES)
        for label, (path, row) in zip(labels, owners):
            if not 0 <= label < num_classes:
                raise DataFileError(
                    f'{path} row {row} has label {label}, outside the {num_classes} classes '
                    f'of {meta_path}'
                )
        stacked = np.concatenate(images)
        return [dict(img=img, gt_label=label) for img, label in zip(stacked, labels)]

    def _class_names(self, meta_path: str) -> tuple[str, ...]:
        meta = read_batch(meta_path)
        names_key = NAME_KEYS[self.label_key]
        if names_key not in meta:
            raise DataFileError(f'{meta_path} has no {names_key} entry (keys: {sorted(meta)})')
        return tuple(_text(name) for name in meta[names_key])

    def extra_repr(self) -> list[str]:
        return [f'Root of dataset: \t{self.data_root}', f'Split: \t{self.split}']
