"""The original's linear probe head: BatchNorm1d(F, affine=False, eps 1e-6) + Linear(F, C),
trained with AdamW on frozen features (docs/original.md 4.6).

The original trained it with the whole model in eval mode, so the BatchNorm never updated its
running statistics (mean 0, var 1): an identity. Here the BatchNorm also stays in eval mode and
never updates, but by default (``bn_statistics='train'``) its statistics are set once to the
training features' mean and variance, i.e. the features are standardised as the head evidently
meant to; ``bn_statistics='identity'`` keeps the original's (0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


class BNLinearHead(nn.Module):
    """features [N, F] -> logits [N, C] through a frozen-statistics BatchNorm and a Linear."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(num_features, affine=False, eps=1e-6)
        self.fc = nn.Linear(num_features, num_classes)

    def set_statistics(self, features: torch.Tensor) -> None:
        """Running mean and (biased) variance <- those of features [N, F]."""
        self.bn.running_mean.copy_(features.mean(0))
        self.bn.running_var.copy_(features.var(0, unbiased=False))

    def train(self, mode: bool = True):
        super().train(mode)
        self.bn.eval()  # its statistics never move
        return self

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(features))


@dataclass
class BNLinearSettings:
    """AdamW and its schedule: warm-up for ``warmup_epochs`` then ``schedule`` ('linear' or
    'cosine') down to 0 at the last step, per step."""

    epochs: int = 100
    warmup_epochs: int = 10
    batch_size: int = 256
    lr: float = 6e-4
    weight_decay: float = 0.01
    schedule: str = 'linear'
    bn_statistics: str = 'train'
    seed: int = 0


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The lr multiplier at ``step`` of ``total``: linear warm-up over ``warmup`` steps,
    then linear or half-cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == 'linear':
        return max(0.0, 1 - progress)
    if schedule == 'cosine':
        return 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"schedule must be 'linear' or 'cosine', got {schedule!r}")


def train_bn_linear(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    settings: BNLinearSettings | None = None,
) -> BNLinearHead:
    """Train the head on features [N, F], labels [N] with cross-entropy; seeded shuffling."""
    settings = settings or BNLinearSettings()
    if settings.bn_statistics not in ('train', 'identity'):
        raise ValueError(
            f"bn_statistics must be 'train' or 'identity', got {settings.bn_statistics!r}"
        )
    generator = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        head = BNLinearHead(features.shape[1], num_classes).to(features.device)
    if settings.bn_statistics == 'train':
        head.set_statistics(features)
    optimizer = torch.optim.AdamW(
        head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    steps_per_epoch = math.ceil(len(labels) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    warmup = steps_per_epoch * settings.warmup_epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, settings.schedule)
    )
    head.train()
    with torch.enable_grad():
        for _ in range(settings.epochs):
            order = torch.randperm(len(labels), generator=generator).to(features.device)
            for batch in order.split(settings.batch_size):
                loss = F.cross_entropy(head(features[batch]), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
    return head.eval()


@torch.no_grad()
def head_accuracy(head: BNLinearHead, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of the head on features [N, F], labels [N]."""
    return float((head(features).argmax(1) == labels).float().mean())
