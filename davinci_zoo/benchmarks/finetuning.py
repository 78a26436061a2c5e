"""Fine-tuning step benchmark: a task config's training step on batches of its own training
data, for several sets of ``frozen_parts`` of the model, measured in interleaved rounds.

Each variant is the config's model (seeded random weights: the step's cost does not depend on
them) with one set of parts frozen, and its own optimizer from the config. Every round runs one
step of every variant on the same batch, starting with the next variant each round, so the
variants share the machine's slow and fast stretches and none always runs first; a variant's
time is its mean over the rounds, and ``relative`` divides it by the first variant's.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from .training import count_flops, matmul_flops_per_second, peak_rss_mb


@dataclass
class FinetuneSettings:
    """``rounds`` timed steps of each variant (one batch each) after ``warmup`` untimed ones."""

    rounds: int = 5
    warmup: int = 2
    seed: int = 0


def training_batches(cfg, count: int) -> list:
    """The first ``count`` batches of the config's ``train_dataloader`` (collated, as the
    Runner's loop receives them)."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    with DefaultScope.overwrite_default_scope('davinci_zoo'):
        loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader), seed=0)
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == count:
            return batches
    raise ValueError(f'the training set gives {len(batches)} batches; the benchmark needs {count}')


def build_variant(cfg, frozen_parts: list[str], seed: int):
    """(model, optim wrapper) of the config with ``frozen_parts`` frozen, random weights."""
    from ..engine.optim import build_optim_wrapper
    from ..registry import MODELS

    torch.manual_seed(seed)
    model = MODELS.build(dict(cfg.model, pretrained=None, frozen_parts=list(frozen_parts)))
    return model.train(), build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))


def training_step(model, optim_wrapper, batch) -> None:
    """One optimizer step on ``batch``, as mmengine's ``train_step`` runs it."""
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    optim_wrapper.update_params(model.parse_losses(losses)[0])


def run_finetune_benchmark(cfg, variants: list[list[str]], settings: FinetuneSettings) -> dict:
    """Time the config's training step with each set of frozen parts; returns a JSON-ready dict."""
    built = [build_variant(cfg, parts, settings.seed) for parts in variants]  # names checked
    batches = training_batches(cfg, settings.rounds)
    for model, wrapper in built:
        for batch in batches[: settings.warmup]:
            training_step(model, wrapper, batch)
    rate = matmul_flops_per_second(repeats=2)
    seconds = [[] for _ in built]
    for round_index, batch in enumerate(batches):
        for offset in range(len(built)):
            index = (round_index + offset) % len(built)
            model, wrapper = built[index]
            start = time.perf_counter()
            training_step(model, wrapper, batch)
            seconds[index].append(time.perf_counter() - start)
    rate = max(rate, matmul_flops_per_second(repeats=2))
    batch_size = len(batches[0]['data_samples'])
    means = [sum(times) / len(times) for times in seconds]
    results = []
    for parts, (model, wrapper), times, mean in zip(variants, built, seconds, means):
        flops = count_flops(lambda: training_step(model, wrapper, batches[0]))  # noqa: B023
        results.append(
            dict(
                frozen_parts=list(parts),
                trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
                step_seconds_mean=mean,
                step_seconds_best=min(times),
                samples_per_s=batch_size / mean,
                step_gflop=flops / 1e9,
                relative=mean / means[0],
            )
        )
    return dict(
        mode='finetune',
        batch=batch_size,
        rounds=settings.rounds,
        warmup_steps=settings.warmup,
        dtype='float32',
        matmul_gflop_per_s=rate / 1e9,
        variants=results,
        peak_rss_mb=peak_rss_mb(),
    )
