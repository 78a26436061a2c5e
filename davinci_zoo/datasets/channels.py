"""Channel order of in-memory images: RGB or grey arrays -> mmcv's (H, W, 3) BGR.

mmpretrain's CIFAR10/CIFAR100 give ``img`` as RGB arrays and its MNIST as (H, W) grey ones;
every zoo pipeline expects mmcv's BGR (what ``LoadImageFromFile`` gives and what
:class:`~davinci_zoo.models.data_preprocessor.DaVinciDataPreprocessor` flips to RGB).
"""

from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform

from ..models.parts import ComponentArgumentError
from ..registry import TRANSFORMS

SOURCES = ('rgb', 'gray')


@TRANSFORMS.register_module()
class ToBGR(BaseTransform):
    """``img`` -> (H, W, 3) uint8 in BGR order.

    Args:
        source: ``'rgb'``: ``img`` is (H, W, 3) RGB, its channels are reversed;
            ``'gray'``: ``img`` is (H, W) or (H, W, 1), its one channel is repeated.
    """

    def __init__(self, source: str = 'rgb') -> None:
        if source not in SOURCES:
            raise ComponentArgumentError(f'ToBGR: source must be one of {SOURCES}, not {source!r}')
        self.source = source

    def transform(self, results: dict) -> dict:
        image = np.asarray(results['img'])
        if self.source == 'gray':
            if image.ndim == 3 and image.shape[2] == 1:
                image = image[..., 0]
            if image.ndim != 2:
                raise ValueError(f'ToBGR(source=gray): img has shape {image.shape}, not (H, W)')
            image = np.repeat(image[..., None], 3, axis=2)
        else:
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f'ToBGR(source=rgb): img has shape {image.shape}, not (H, W, 3)')
            image = np.ascontiguousarray(image[..., ::-1])
        results['img'] = image
        results['img_shape'] = results['ori_shape'] = image.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(source={self.source!r})'
