"""The interface of a training objective (PrefixLM, PrefixImage, plugins' losses).

An objective turns a model and a batch into named losses. A model holds a list of objectives
with weights, calls each one, and logs each loss under its own name, so adding an objective is
a config change (``objectives=[dict(type='PrefixLM', weight=1.0), ...]``).
"""

from __future__ import annotations

import torch
from torch import nn


class Objective(nn.Module):
    """A weighted loss term; subclasses implement :meth:`forward`.

    Args:
        weight: multiplies every loss this objective returns.
        name: the prefix of its losses in the logs (default: the class name in lower case).
    """

    def __init__(self, weight: float = 1.0, name: str | None = None) -> None:
        super().__init__()
        self.weight = weight
        self.name = name or type(self).__name__.lower()

    def forward(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        """Return ``{'loss_<name>': scalar tensor, ...}`` for ``batch`` (already weighted)."""
        raise NotImplementedError
