"""The interface of a training objective (PrefixLM, PrefixImage, plugins' losses).

An objective turns a model and a batch into named losses. A model holds a list of objectives
with weights, calls each one whose ``inputs`` the batch has, and logs each loss under its own
name, so adding an objective is a config change
(``objectives=[dict(type='PrefixLM', weight=1.0), ...]``). Objectives run in list order on
one shared ``inputs`` dict, so an earlier one may leave something for a later one (ITC leaves
its similarities for ITM's hard negatives). Parameters an objective adds are its own
(:meth:`Objective.attach`): they live under ``objectives.<i>.`` in pretraining checkpoints and
task models drop them.
"""

from __future__ import annotations

import torch
from torch import nn

from .parts import ComponentArgumentError


def check_log_prefix(name: str) -> str:
    """``name`` if it can prefix logged values that are not losses (``<name>_accuracy``):
    mmengine sums every logged value whose key contains 'loss', so such a name may not."""
    if 'loss' in name:
        raise ComponentArgumentError(
            f"name {name!r} must not contain 'loss': mmengine sums every logged value whose "
            'key contains it'
        )
    return name


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
    #: what a model trained with it can do without a task head: 'write' (image -> text through
    #: the decoder), 'paint' (text -> image codes). Ablation tables show "n/a" for the rest.
    teaches: tuple[str, ...] = ()

    def __init__(
        self, weight: float = 1.0, name: str | None = None, must_fire_within: int | None = 100
    ) -> None:
        super().__init__()
        self.weight = weight
        self.name = name or type(self).__name__.lower()
        self.must_fire_within = must_fire_within

    def attach(self, model: nn.Module) -> None:
        """Build the parameters the objective owns (projections, heads) once the model's parts
        exist: read sizes from ``model`` (``hidden_size``, ``vocab``, ``image_embedder``,
        ``image_tokenizer``), never keep a reference to it. The default owns nothing."""

    def forward(self, model: nn.Module, inputs: dict) -> dict[str, torch.Tensor]:
        """Return ``{'loss_<name>': scalar tensor, ...}`` for the batch (already weighted), or
        ``{}`` when none of its rows can be used (e.g. every caption empty)."""
        raise NotImplementedError
