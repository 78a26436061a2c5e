"""The interface of a task head: a task on the shared DaVinci parts (see docs/heads.md)."""

from __future__ import annotations

import torch
from torch import nn


class Head(nn.Module):
    """A task: ``loss`` for fine-tuning and ``predict`` for evaluation, both computed with the
    model's shared parts (``model.encode``, ``model.decoder_hidden``, ``model.vocab`` ...).

    The model calls ``head.loss(model, inputs, data_samples)`` in ``mode='loss'`` (its
    losses join the objectives') and returns ``head.predict(model, inputs, data_samples)`` in
    ``mode='predict'``. ``inputs`` is the preprocessed batch (normalised ``images``, texts as
    :class:`~davinci_zoo.text.TextBatch`); ``data_samples`` are the batch's mmpretrain
    ``DataSample`` s (labels, raw texts, metainfo). The head's parameters are saved under
    ``head.`` in the model's checkpoints.
    """

    #: keys of ``inputs`` the head reads.
    inputs: tuple[str, ...] = ()
    #: model parts it needs beyond the embedder, encoder and decoder ('image_tokenizer').
    parts: tuple[str, ...] = ()

    def loss(self, model, inputs: dict, data_samples: list | None) -> dict[str, torch.Tensor]:
        """``{'loss_<name>': scalar, ...}`` (keys with ``loss`` are summed and optimised; other
        keys are logged), or ``{}`` for a head that only evaluates."""
        raise NotImplementedError

    def predict(self, model, inputs: dict, data_samples: list | None) -> list:
        """One mmpretrain ``DataSample`` per row of the batch (the given ones, with the
        prediction fields set: ``pred_caption``, ``pred_label``/``pred_score`` ...)."""
        raise NotImplementedError


def samples_for(data_samples: list | None, count: int) -> list:
    """The batch's data samples, or ``count`` new empty ones when it has none."""
    if data_samples is not None:
        if len(data_samples) != count:
            raise ValueError(f'{len(data_samples)} data samples for {count} batch rows')
        return list(data_samples)
    from mmpretrain.structures import DataSample

    return [DataSample() for _ in range(count)]
