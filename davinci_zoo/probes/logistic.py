"""The CLIP paper's linear probe: L2-regularised multinomial logistic regression by L-BFGS.

Features are standardised with the fitting set's mean and std. The objective is the mean
cross-entropy plus ``l2 / 2 * |W|^2`` (the bias is not penalised); scikit-learn's ``C``
of the CLIP paper is ``1 / (l2 * N)``. The L2 strength is chosen on a validation split by a
sweep over a grid of strengths (strongest first, each fit starting from the previous one's
weights, stopping once accuracy has fallen for ``patience`` strengths in a row), optionally
refined at the half-decade neighbours of the best; the classifier is
then refit on train + validation with that strength and scored on the test split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

DEFAULT_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


@dataclass
class Standardiser:
    """x -> (x - mean) / std with statistics of the features it was fitted on
    (features [N, F] -> mean, std [F]; a constant feature keeps std 1)."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, features: torch.Tensor) -> Standardiser:
        mean = features.mean(0)
        std = features.std(0, unbiased=False)
        return cls(mean, torch.where(std > 1e-8, std, torch.ones_like(std)))

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std


@dataclass
class LogisticModel:
    """Weights [F, C], bias [C] on standardised features."""

    weight: torch.Tensor
    bias: torch.Tensor
    scaler: Standardiser

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """features [N, F] -> logits [N, C]."""
        return self.scaler(features.to(self.weight)) @ self.weight + self.bias

    def accuracy(self, features: torch.Tensor, labels: torch.Tensor) -> float:
        predicted = self.logits(features).argmax(1).cpu()
        return float((predicted == labels.cpu()).float().mean())


def fit_logistic(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    l2: float,
    max_iter: int = 1000,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    scaler: Standardiser | None = None,
) -> LogisticModel:
    """Minimise mean CE + l2/2 |W|^2 over features [N, F], labels [N] by L-BFGS (strong
    Wolfe line search); ``start`` = (weight [F, C], bias [C]) to start from."""
    scaler = scaler or Standardiser.fit(features)
    x = scaler(features)
    y = labels.to(x.device)
    if start is None:
        weight = torch.zeros(x.shape[1], num_classes, dtype=x.dtype, device=x.device)
        bias = torch.zeros(num_classes, dtype=x.dtype, device=x.device)
    else:
        weight, bias = (part.detach().clone() for part in start)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        max_eval=max_iter * 5 // 4,
        tolerance_grad=1e-4,  # scikit-learn's default tol (max |gradient|) for lbfgs
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn='strong_wolfe',
    )

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return LogisticModel(weight.detach(), bias.detach(), scaler)


@dataclass
class SweepResult:
    """The chosen strength, the validation accuracy of every strength tried, the test
    accuracy of the refit model."""

    l2: float
    val_accuracy: dict[float, float] = field(default_factory=dict)
    test_accuracy: float = float('nan')


def sweep_and_fit(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    grid=DEFAULT_GRID,
    refine: bool = True,
    max_iter: int = 1000,
    patience: int | None = 2,
) -> SweepResult:
    """Choose l2 by validation accuracy (ties: the stronger), refit on train + val, score
    test. Each pair is (features [N, F], labels [N]).

    The grid is walked from the strongest strength down, each fit starting from the previous
    one's weights; after ``patience`` strengths in a row below the best so far the weaker ones
    are not tried (they are the slowest to fit; None: try every strength).
    """
    scaler = Standardiser.fit(train[0])
    result = SweepResult(l2=float('nan'))

    def trial(l2: float, start=None) -> LogisticModel:
        model = fit_logistic(*train, num_classes, l2, max_iter, start=start, scaler=scaler)
        result.val_accuracy[l2] = model.accuracy(*val)
        return model

    previous, worse = None, 0
    for l2 in sorted((float(value) for value in grid), reverse=True):
        model = trial(l2, previous)
        previous = (model.weight, model.bias)
        worse = worse + 1 if result.val_accuracy[l2] < max(result.val_accuracy.values()) else 0
        if patience is not None and worse >= patience:
            break
    best = _best(result.val_accuracy)
    if refine:
        for neighbour in (best * 10**0.5, best / 10**0.5):
            if neighbour not in result.val_accuracy:
                trial(neighbour)
        best = _best(result.val_accuracy)
    result.l2 = best
    features = torch.cat([train[0], val[0]])
    labels = torch.cat([train[1], val[1]])
    model = fit_logistic(features, labels, num_classes, best, max_iter)
    result.test_accuracy = model.accuracy(*test)
    return result


def _best(accuracy: dict[float, float]) -> float:
    return max(accuracy, key=lambda l2: (accuracy[l2], l2))


def holdout_split(
    features: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A seeded random hold-out: (train, val) pairs, ``fraction`` of the rows in val."""
    if not 0 < fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got {fraction}')
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    cut = max(1, int(round(len(labels) * fraction)))
    held, kept = order[:cut], order[cut:]
    return (features[kept], labels[kept]), (features[held], labels[held])
