"""Classify a text against an image pair (NLVR2): one [SEP] feature per image, concatenated."""

from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS
from .sequence_classification import SequenceClassificationHead


@HEADS.register_module()
class PairClassificationHead(SequenceClassificationHead):
    """The original's NLVR2 head: each image of a pair is encoded on its own (with an empty
    text) and the decoder reads the sentence against it, as in
    :class:`SequenceClassificationHead`; the two ``[SEP]`` states are concatenated (first
    image, then second) and go through an MLP (2D -> D -> ReLU -> ``num_classes``).

    Reads ``images`` [B, 2, 3, H, W] (pairs, as ``PackDaVinciInputs`` packs a list of two
    images) and one text per row. Loss, ``predict`` and the arguments are those of
    :class:`SequenceClassificationHead`.
    """

    inputs = ('images', 'text')

    def __init__(self, num_classes: int, hidden_size: int = 768, **kwargs) -> None:
        super().__init__(num_classes, hidden_size, **kwargs)
        self.inputs = ('images', self.text_key)
        self.classifier = nn.Sequential(
            nn.Linear(2 * hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, num_classes)
        )

    def features(self, model, inputs: dict) -> torch.Tensor:
        """[B, 2D]: the single-image feature of image 0, then of image 1, of every row.

        Both images of every pair go through the model as one batch of 2B rows (row b's
        images at 2b and 2b + 1, each with row b's text).
        """
        images = inputs.get('images')
        if images is None or images.dim() != 5 or images.shape[1] != 2:
            shape = None if images is None else tuple(images.shape)
            raise ValueError(
                f'{type(self).__name__} reads image pairs [B, 2, 3, H, W], got images of shape '
                f"{shape}; give each row a list of two images (the NLVR2 dataset's img_path)"
            )
        text = inputs[self.text_key]
        if text.num_texts != len(images):
            raise ValueError(f'{text.num_texts} texts for {len(images)} image pairs')
        rows = torch.arange(len(images), device=text.ids.device).repeat_interleave(2)
        single = dict(inputs, images=images.flatten(0, 1))
        single[self.text_key] = text.select(rows)
        return super().features(model, single).view(len(images), -1)
