"""Classify a text (with its image, when the batch has images) by the decoder state at [SEP]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import HEADS
from ...text import sequences
from ..davinci.features import sep_states
from ..parts import ComponentArgumentError
from .base import Head, check_label_smoothing, samples_for


@HEADS.register_module()
class SequenceClassificationHead(Head):
    """The original's feature for NLVR2, SNLI-VE and GLUE: the decoder reads
    ``[CLS] text [SEP]`` and its state at ``[SEP]`` goes through an MLP (D -> D -> ReLU ->
    ``num_classes``).

    With ``images`` in the batch the encoder sees the image and an empty text (``[CLS]``),
    so the decoder reads the text against the image (with ``text_in_encoder`` the encoder
    reads the image with the text instead); without, the encoder reads the text itself
    (GLUE; a sentence pair arrives as one text ``a [SEP] b`` from ``TokenizeTextPair``).
    Without ``text_in_decoder`` the decoder reads ``[CLS]`` alone and its state there is the
    feature: the text is read by the encoder only, and the decoder no longer runs over it.
    Trained with cross-entropy against the data samples' ``gt_label``.

    Args:
        num_classes: classes (the MLP's outputs).
        hidden_size: the model's width (filled in by the model).
        text_key: the ``inputs`` key of the text.
        max_tokens: longest text, ``[CLS]``/``[SEP]`` included.
        label_smoothing: of the cross-entropy.
        loss_weight: multiplies the loss.
        text_in_encoder: with images, the encoder reads the image with the text, not with an
            empty text (not the original's feature: docs/tasks/nlvr2.md says when it helps).
        text_in_decoder: the decoder reads the text (the original); without, it reads
            ``[CLS]`` alone against the encoder's memory, which must then hold the text:
            it needs ``text_in_encoder`` (which changes nothing for batches without images,
            whose encoder reads the text anyway).

    ``predict`` sets ``pred_score`` (softmax [C]) and ``pred_label`` on each data sample, as
    mmpretrain's classification heads do (its ``Accuracy`` metric reads them).
    """

    inputs = ('text',)
    #: fewest outputs of the MLP (a regression head has one).
    min_outputs = 2

    def __init__(
        self,
        num_classes: int,
        hidden_size: int = 768,
        text_key: str = 'text',
        max_tokens: int = 40,
        label_smoothing: float = 0.0,
        loss_weight: float = 1.0,
        text_in_encoder: bool = False,
        text_in_decoder: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < self.min_outputs:
            raise ComponentArgumentError(
                f'num_classes must be at least {self.min_outputs}, got {num_classes}'
            )
        if not (text_in_encoder or text_in_decoder):
            raise ComponentArgumentError(
                'text_in_decoder=False needs text_in_encoder=True: with images the encoder '
                'reads an empty text otherwise, and nothing would read the text'
            )
        check_label_smoothing(label_smoothing)
        self.inputs = (text_key,)
        self.text_key, self.max_tokens = text_key, max_tokens
        self.label_smoothing, self.loss_weight = label_smoothing, loss_weight
        self.text_in_encoder, self.text_in_decoder = text_in_encoder, text_in_decoder
        self.classifier = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, num_classes)
        )

    def features(self, model, inputs: dict) -> torch.Tensor:
        """The decoder state [B, D] at each text's ``[SEP]`` (without ``text_in_decoder``: at
        the decoder's ``[CLS]``, its only token)."""
        ids, mask = sequences(inputs[self.text_key], max_tokens=self.max_tokens)
        images = inputs.get('images')
        if images is None:
            memory, memory_mask = model.encode(None, ids, mask)
        elif self.text_in_encoder:
            memory, memory_mask = model.encode(images, ids, mask)
        else:
            empty_ids, empty_mask = model.tokenize([''] * len(ids))
            memory, memory_mask = model.encode(images, empty_ids, empty_mask)
        if not self.text_in_decoder:
            ids, mask = model.tokenize([''] * len(ids))
        return sep_states(model, ids, mask, memory, memory_mask)

    def forward(self, model, inputs: dict) -> torch.Tensor:
        """Logits [B, num_classes]."""
        return self.classifier(self.features(model, inputs))

    def loss(self, model, inputs: dict, data_samples) -> dict[str, torch.Tensor]:
        labels = torch.cat([sample.gt_label for sample in data_samples]).to(model.device)
        logits = self(model, inputs)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {'loss_cls': self.loss_weight * loss, 'accuracy': accuracy.detach()}

    @torch.no_grad()
    def predict(self, model, inputs: dict, data_samples) -> list:
        scores = self(model, inputs).softmax(-1)
        samples = samples_for(data_samples, len(scores))
        for sample, score in zip(samples, scores):
            sample.set_pred_score(score).set_pred_label(score.argmax())
        return samples
