"""Classify an image from its DaVinci feature (ImageNet fine-tuning, docs/original.md 4.7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import HEADS
from ..davinci.features import PROMPT, image_features
from ..parts import ComponentArgumentError
from .base import Head, check_label_smoothing, samples_for


@HEADS.register_module()
class ImageClassificationHead(Head):
    """The original's image fine-tuning head: the image feature of
    :func:`~..davinci.features.image_features` (image ``[CLS]`` state, mean patch state,
    decoder state at the ``[SEP]`` of ``a picture of``: [B, 3D]) through an MLP
    (3D -> D -> ReLU -> ``num_classes``); every weight of the model trains through it.

    Args:
        num_classes: classes (the MLP's outputs).
        hidden_size: the model's width D (filled in by the model).
        label_smoothing: of the cross-entropy (the original: 0.1).
        prompt: the decoder prompt of the feature.
        loss_weight: multiplies the loss.

    ``loss``: cross-entropy against the data samples' ``gt_score`` when they have one (soft
    targets [C], as mmpretrain's Mixup / CutMix batch augments in
    :class:`~..data_preprocessor.DaVinciDataPreprocessor` make them), else against
    ``gt_label``; label smoothing mixes the target with the uniform distribution first
    (timm's smoothing of the Mixup targets). ``accuracy`` (logged only) counts the argmax
    against each row's largest target. ``predict`` sets ``pred_score`` (softmax [C]) and
    ``pred_label``, which mmpretrain's ``Accuracy`` (top-1 / top-5) reads. Reads
    ``inputs['images']`` [B, 3, H, W]; builds no image tokenizer.
    """

    inputs = ('images',)

    def __init__(
        self,
        num_classes: int,
        hidden_size: int = 768,
        label_smoothing: float = 0.0,
        prompt: str = PROMPT,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ComponentArgumentError(f'num_classes must be at least 2, got {num_classes}')
        check_label_smoothing(label_smoothing)
        self.num_classes, self.prompt = num_classes, prompt
        self.label_smoothing, self.loss_weight = label_smoothing, loss_weight
        self.classifier = nn.Sequential(
            nn.Linear(3 * hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, num_classes)
        )

    def forward(self, model, inputs: dict) -> torch.Tensor:
        """Logits [B, num_classes] of ``inputs['images']`` [B, 3, H, W]."""
        images = inputs.get('images')
        if images is None or images.dim() != 4:
            shape = None if images is None else tuple(images.shape)
            raise ValueError(
                f'{type(self).__name__} reads images [B, 3, H, W], got {shape}; the pipeline '
                'must load an image per row (LoadImageFromFile, then PackDaVinciInputs)'
            )
        return self.classifier(image_features(model, images, self.prompt))

    def targets(self, data_samples, device) -> torch.Tensor:
        """Class ids [B] from ``gt_label``, or soft targets [B, C] from ``gt_score``."""
        if data_samples and 'gt_score' in data_samples[0]:
            scores = torch.stack([sample.gt_score for sample in data_samples]).float()
            if scores.shape[1] != self.num_classes:
                raise ValueError(
                    f'gt_score has {scores.shape[1]} classes, the head {self.num_classes}: '
                    "set the data preprocessor's num_classes to the head's"
                )
            return scores.to(device)
        return torch.cat([sample.gt_label for sample in data_samples]).to(device)

    def loss(self, model, inputs: dict, data_samples) -> dict[str, torch.Tensor]:
        logits = self(model, inputs)
        targets = self.targets(data_samples, logits.device)
        loss = F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)
        truth = targets.argmax(1) if targets.dim() == 2 else targets
        accuracy = (logits.argmax(1) == truth).float().mean()
        return {'loss_cls': self.loss_weight * loss, 'accuracy': accuracy.detach()}

    @torch.no_grad()
    def predict(self, model, inputs: dict, data_samples) -> list:
        scores = self(model, inputs).float().softmax(-1)
        samples = samples_for(data_samples, len(scores))
        for sample, score in zip(samples, scores):
            sample.set_pred_score(score).set_pred_label(score.argmax())
        return samples


__all__ = ['ImageClassificationHead']
