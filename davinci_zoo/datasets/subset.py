"""A seeded subset of a dataset, for training on a smaller share of the same data.

The subset of ``size`` items is the first ``size`` indices of one seeded permutation of the
wrapped dataset, so for one seed the subsets are nested: 500 items are inside 2,000, which are
inside 8,000 (the data scales of configs/ablations/, docs/ablations.md).
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from ..models.parts import ComponentArgumentError
from ..registry import DATASETS


def subset_indices(length: int, size: int | float, seed: int) -> np.ndarray:
    """The first items of a ``seed``-ed permutation of ``range(length)``: [count] int64.

    ``size`` is a count (int, 1..length) or a fraction (float in (0, 1]; at least one item).
    """
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise TypeError(f'size must be an int count or a float fraction, got {size!r}')
    if isinstance(size, (float, np.floating)):
        if not 0.0 < size <= 1.0:
            raise ComponentArgumentError(f'a fractional size must lie in (0, 1], got {size}')
        count = max(1, int(round(size * length)))
    else:
        count = int(size)
        if count <= 0:
            raise ComponentArgumentError(f'size must be at least 1, got {count}')
    if count > length:
        raise ComponentArgumentError(
            f'size {count} is more than the {length} items of the wrapped dataset; lower '
            'size or make the wrapped dataset larger'
        )
    return np.random.default_rng(seed).permutation(length)[:count]


@DATASETS.register_module()
class SubsetDataset(Dataset):
    """``size`` items of ``dataset``, chosen by ``seed`` (nested across sizes for one seed).

    Args:
        dataset: the wrapped dataset, or its config.
        size: a count of items (int) or a fraction of the dataset (float in (0, 1]).
        seed: the permutation's seed.

    ``len``, item access, ``metainfo`` and ``get_data_info`` follow the wrapped dataset; item
    ``i`` is the wrapped dataset's item ``indices[i]``.
    """

    def __init__(self, dataset, size: int | float, seed: int = 0) -> None:
        if isinstance(dataset, dict):
            from mmengine.registry import DefaultScope

            with DefaultScope.overwrite_default_scope('davinci_zoo'):
                dataset = DATASETS.build(dataset)
        self.dataset = dataset
        self.size, self.seed = size, seed
        self.indices = subset_indices(len(dataset), size, seed)

    @property
    def metainfo(self) -> dict:
        return getattr(self.dataset, 'metainfo', {})

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[int(self.indices[index])]

    def get_data_info(self, index: int) -> dict:
        return self.dataset.get_data_info(int(self.indices[index]))
