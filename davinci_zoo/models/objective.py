"""The interface of a training objective (PrefixLM, PrefixImage, plugins' losses).

An objective turns a model and a batch into named losses. A model holds a list of objectives
with weights, calls each one whose ``inputs`` the batch has, and logs each loss under its own
name, so adding an objective is a config change
(``objectives=[dict(type='PrefixLM', weight=1.0), ...]``).
"""

from __future__ import annotations

import torch
from torch import nn


class Objective(nn.Module):
    """A weighted loss term; subclasses set :attr:`inputs` (and :attr:`parts`) and implement
    :meth:`forward`.

    Args:
        weight: multiplies every loss this objective returns.
        name: the prefix of its losses in the logs (default: the class name in lower case).
        must_fire_within: training steps within which the objective must have given a loss at
            least once (on some rank); otherwise the run stops with
            :class:`~davinci_zoo.models.parts.ObjectiveStarvedError` instead of training
            without it. None or 0: no check.
    """

    #: keys of the preprocessed batch's ``inputs`` it reads; a batch lacking one gives it no
    #: data in that step (it is not called).
    inputs: tuple[str, ...] = ()
    #: model parts it needs beyond the embedder, encoder and decoder ('image_tokenizer').
    parts: tuple[str, ...] = ()

    def __init__(
        self, weight: float = 1.0, name: str | None = None, must_fire_within: int | None = 100
    ) -> None:
        super().__init__()
        self.weight = weight
        self.name = name or type(self).__name__.lower()
        self.must_fire_within = must_fire_within

    def forward(self, model: nn.Module, inputs: dict) -> dict[str, torch.Tensor]:
        """Return ``{'loss_<name>': scalar tensor, ...}`` for the batch (already weighted), or
        ``{}`` when none of its rows can be used (e.g. every caption empty)."""
        raise NotImplementedError
