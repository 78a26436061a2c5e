"""The interface of a task head: a task on the shared DaVinci parts (see docs/heads.md)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..davinci.generation import GenerationConfig
from ..parts import ComponentArgumentError


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


def check_label_smoothing(value: float) -> None:
    """A ComponentArgumentError unless the cross-entropy's label smoothing lies in [0, 1)."""
    if not 0.0 <= value < 1.0:
        raise ComponentArgumentError(f'label_smoothing must lie in [0, 1), got {value}')


def generation_argument(
    head: Head, argument: str, options: dict | None, check: Callable[[GenerationConfig], None]
) -> GenerationConfig:
    """The head's ``argument`` (GenerationConfig keywords) as a checked GenerationConfig; an
    unknown keyword or a bad value is a ComponentArgumentError naming the head and argument."""
    where = f'{type(head).__name__} {argument}'
    try:
        config = GenerationConfig(**(options or {}))
    except (TypeError, ValueError) as error:  # an unknown keyword or a value out of range
        raise ComponentArgumentError(f'{where}: {error}') from None
    try:
        check(config)
    except ValueError as error:
        raise ComponentArgumentError(f'{where}: {error}') from None
    return config


def samples_for(data_samples: list | None, count: int) -> list:
    """The batch's data samples, or ``count`` new empty ones when it has none."""
    if data_samples is not None:
        if len(data_samples) != count:
            raise ValueError(f'{len(data_samples)} data samples for {count} batch rows')
        return list(data_samples)
    from mmpretrain.structures import DataSample

    return [DataSample() for _ in range(count)]
