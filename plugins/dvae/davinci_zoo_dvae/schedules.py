"""Step schedules for the gumbel-softmax temperature and the KL weight.

A schedule goes from ``start`` at step 0 to ``end`` at step ``steps`` and stays there. Configs
give either a number (constant) or ``dict(type='exponential'|'linear'|'cosine', start=...,
end=..., steps=...)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from davinci_zoo.models.parts import ComponentArgumentError


@dataclass(frozen=True)
class Schedule:
    """The value at a training step; subclasses choose the curve between start and end."""

    start: float
    end: float
    steps: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ComponentArgumentError(f'schedule steps must be >= 0, got {self.steps}')

    def __call__(self, step: int) -> float:
        if self.steps == 0:
            return float(self.end)
        progress = min(max(step / self.steps, 0.0), 1.0)
        return float(self.interpolate(progress))

    def interpolate(self, progress: float) -> float:
        """The value at ``progress`` in [0, 1] of the way from start to end."""
        raise NotImplementedError


class LinearSchedule(Schedule):
    """A straight line from start to end (e.g. the KL weight warm-up from 0)."""

    def interpolate(self, progress: float) -> float:
        return self.start + (self.end - self.start) * progress


class ExponentialSchedule(Schedule):
    """Geometric interpolation, start * (end / start) ** progress; both must be positive."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.start <= 0 or self.end <= 0:
            raise ComponentArgumentError(
                'an exponential schedule needs positive start and end values'
            )

    def interpolate(self, progress: float) -> float:
        return self.start * (self.end / self.start) ** progress


class CosineSchedule(Schedule):
    """Half a cosine from start to end (the DALL-E paper's curve)."""

    def interpolate(self, progress: float) -> float:
        return self.end + (self.start - self.end) * 0.5 * (1 + math.cos(math.pi * progress))


SCHEDULES: dict[str, type[Schedule]] = {
    'linear': LinearSchedule,
    'exponential': ExponentialSchedule,
    'cosine': CosineSchedule,
}


def build_schedule(spec: float | dict | Schedule) -> Schedule:
    """A number (constant), a Schedule, or ``dict(type=..., start=..., end=..., steps=...)``."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, (int, float)):
        return LinearSchedule(float(spec), float(spec), 0)
    spec = dict(spec)
    kind = spec.pop('type', 'linear')
    if kind not in SCHEDULES:
        raise ComponentArgumentError(
            f'unknown schedule type {kind!r}; choose from {sorted(SCHEDULES)}'
        )
    return SCHEDULES[kind](**spec)
