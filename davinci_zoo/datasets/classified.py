"""A base for image classification datasets with class names, without importing mmpretrain.

mmpretrain's ``BaseDataset`` keeps class names in ``metainfo['classes']``; importing it loads
mmpretrain's transforms and torchvision, which listing the zoo's components must not do. This
base gives the same convention on mmengine's ``BaseDataset``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmengine.dataset import BaseDataset


class ClassifiedDataset(BaseDataset):
    """mmengine ``BaseDataset`` with ``classes`` (names, in label order) in the metainfo.

    Args:
        classes: the class names; None: the subclass reads them from its files
            (``load_data_list`` sets ``self._metainfo['classes']``).
        metainfo, **kwargs: mmengine ``BaseDataset`` arguments (``pipeline``, ``test_mode``,
            ``data_root``, ``lazy_init``, ...).
    """

    def __init__(self, *args, classes: Sequence[str] | None = None, metainfo=None, **kwargs):
        if classes is not None:
            metainfo = dict(metainfo or {}, classes=tuple(classes))
        super().__init__(*args, metainfo=metainfo, **kwargs)

    @property
    def CLASSES(self) -> tuple[str, ...] | None:  # noqa: N802  (mmpretrain's name)
        """The class names in label order (``metainfo['classes']``), None before loading."""
        return self._metainfo.get('classes')
