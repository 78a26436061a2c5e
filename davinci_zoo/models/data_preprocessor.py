"""The batch's way onto the model's device: uint8 images normalised there, texts as id tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from ..registry import BATCH_AUGMENTS, MODELS
from .parts import ComponentArgumentError

#: CLIP's normalisation on the [0, 255] scale (the original's, docs/original.md section 2.1).
CLIP_MEAN = (122.770938, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


@MODELS.register_module()
class DaVinciDataPreprocessor(BaseDataPreprocessor):
    """Moves a collated batch (:func:`~davinci_zoo.datasets.mixing.mixed_collate`) to the
    model's device and normalises its images there.

    Input ``dict(inputs=..., data_samples=[...])``; ``inputs['images']`` is uint8
    [B, 3, H, W] (or image pairs [B, 2, 3, H, W]) in the channel order of the data pipeline
    (mmcv loads BGR). Out: the same dict on the device, with ``images`` float32
    ``(rgb - mean) / std``; texts (:class:`~davinci_zoo.text.TextBatch`), codes and every
    other input key are moved as they are.

    Args:
        mean, std: per RGB channel, on the [0, 255] scale (default: CLIP's, as the original).
        to_rgb: the pipeline's images are BGR (mmcv's order) and are flipped to RGB.
        batch_augments: mmpretrain batch augments applied in training, e.g.
            ``dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)])``;
            they mix ``images`` and the data samples' ``gt_score`` (made one-hot from
            ``gt_label`` with ``num_classes`` when the samples have no score).
        num_classes: classes of ``gt_label``, for the batch augments.
    """

    def __init__(
        self,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        to_rgb: bool = True,
        batch_augments: dict | None = None,
        num_classes: int | None = None,
        non_blocking: bool = False,
    ) -> None:
        super().__init__(non_blocking)
        self.to_rgb = to_rgb
        # kept on the [0, 1] scale: images are divided by 255 first, as the tokenizers see them
        unit_mean = torch.tensor(mean, dtype=torch.float64) / 255
        unit_std = torch.tensor(std, dtype=torch.float64) / 255
        self.register_buffer('mean', unit_mean.float().view(3, 1, 1), False)
        self.register_buffer('std', unit_std.float().view(3, 1, 1), False)
        self.batch_augments = None
        if batch_augments is not None:
            from mmpretrain.models.utils.batch_augments import RandomBatchAugment

            with_registry = dict(batch_augments)
            with_registry['augments'] = [
                BATCH_AUGMENTS.build(a) if isinstance(a, dict) else a
                for a in with_registry['augments']
            ]
            self.batch_augments = RandomBatchAugment(**with_registry)
            if num_classes is None:
                raise ComponentArgumentError(
                    'batch_augments need num_classes (to make gt_label one-hot)'
                )
        self.num_classes = num_classes

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = dict(data.get('inputs') or {})
        data_samples = data.get('data_samples')
        check_collated(inputs)
        if 'images' in inputs:
            inputs['images'] = self.model_input(inputs['images'])
            if training and self.batch_augments is not None:
                inputs['images'], data_samples = self.augment(inputs['images'], data_samples)
        return dict(inputs=inputs, data_samples=data_samples)

    # -- the three image spaces: stored (uint8, pipeline order), unit RGB [0, 1], model input --
    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """Stored images [..., 3, H, W] -> the model's input ``(rgb - mean) / std`` (float32)."""
        return self.normalize(self.unit_rgb(images))

    def unit_rgb(self, images: torch.Tensor) -> torch.Tensor:
        """Stored images [..., 3, H, W] (uint8, the pipeline's channel order) -> RGB in [0, 1]."""
        images = images.float()
        if self.to_rgb:
            images = images.flip(-3)
        return images / 255

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """RGB images [..., 3, H, W] in [0, 1] -> the model's input ``(x - mean / 255) /
        (std / 255)``."""
        return (images - self.mean) / self.std

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """The model's input [..., 3, H, W] -> RGB in [0, 1] (for the image tokenizer, display)."""
        return images * self.std + self.mean

    def augment(self, images: torch.Tensor, data_samples):
        """Mix images [B, ...] and the samples' scores (one-hot ``gt_label`` if they have none)."""
        if 'gt_score' in data_samples[0]:
            scores = torch.stack([sample.gt_score for sample in data_samples])
        else:
            labels = torch.cat([sample.gt_label for sample in data_samples])
            scores = torch.nn.functional.one_hot(labels, self.num_classes).float()
        images, scores = self.batch_augments(images, scores.to(images.device))
        for sample, score in zip(data_samples, scores):
            sample.set_gt_score(score)
        return images, data_samples


def check_collated(inputs: dict) -> None:
    """Raise ValueError when the batch was not collated by ``mixed_collate``."""
    for key, value in inputs.items():
        if isinstance(value, list) and value and isinstance(value[0], (torch.Tensor, tuple)):
            raise ValueError(
                f"input {key!r} arrives as a list of per-sample values: set the dataloader's "
                "collate_fn=dict(type='davinci_zoo.mixed_collate')"
            )


__all__ = ['CLIP_MEAN', 'CLIP_STD', 'DaVinciDataPreprocessor']
