"""Training-step benchmark: samples/s, peak memory and utilisation of a DaVinci config.

Utilisation = FLOPs of one full training step (forward + backward, counted by
``torch.utils.flop_counter.FlopCounterMode``) / (step time x the machine's matmul rate), where
the rate is the best of 5 fp32 4096x4096 matrix products at the same thread count. The image
codes are computed once before timing (the frozen tokenizer's encoding is reported on its own),
so the step measured is the model's: embedder, encoder, decoder, heads, losses, optimizer.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

MATMUL_SIZE = 4096


@dataclass
class TrainingSettings:
    batch: int = 8
    steps: int = 5
    warmup: int = 2
    profile_ops: int = 15
    seed: int = 0


def matmul_flops_per_second(repeats: int = 5) -> float:
    """Best rate of ``repeats`` fp32 [4096, 4096] @ [4096, 4096] products at the current threads."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator)
    torch.mm(a, b)  # warm-up
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * MATMUL_SIZE**3 / best


def scene_batch(batch: int, image_size: int, seed: int) -> dict:
    """A batch of procedural scenes: images [B, 3, S, S] in [0, 1] and their captions."""
    from davinci_zoo.datasets.scene_dataset import ProceduralScenes

    scenes = ProceduralScenes(batch, image_size, seed=seed, two_object_prob=0.5)
    samples = [scenes[index] for index in range(batch)]
    return dict(
        images=torch.stack([sample['images'] for sample in samples]),
        caption=[sample['caption'] for sample in samples],
    )


def count_flops(function) -> int:
    """Total FLOPs that ``function()`` runs (matrix products, convolutions, attention)."""
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def op_profile(function, rows: int) -> list[dict]:
    """The ``rows`` ops with the most self CPU time in one ``function()`` call."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        function()
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events) or 1
    return [
        dict(
            op=event.key,
            calls=event.count,
            self_ms=round(event.self_cpu_time_total / 1e3, 2),
            share=round(event.self_cpu_time_total / total, 4),
        )
        for event in events[:rows]
    ]


def run_training_benchmark(model, optim_wrapper, image_size: int, settings: TrainingSettings):
    """Measure one config's training step; returns a JSON-ready dict."""
    torch.manual_seed(settings.seed)
    model.train()
    batch = scene_batch(settings.batch, image_size, settings.seed)
    encode_flops = count_flops(lambda: model.image_codes(batch['images']))
    start = time.perf_counter()
    codes = model.image_codes(batch['images'])
    encode_seconds = time.perf_counter() - start
    batch['codes'] = codes

    def step():
        losses = model.loss(dict(batch))
        optim_wrapper.update_params(sum(losses.values()))
        return losses

    for _ in range(settings.warmup):
        step()
    timings = []
    for _ in range(settings.steps):
        begin = time.perf_counter()
        losses = step()
        timings.append(time.perf_counter() - begin)
    step_seconds = min(timings)
    step_flops = count_flops(step)
    rate = matmul_flops_per_second()
    return dict(
        mode='training',
        batch=settings.batch,
        image_size=image_size,
        code_grid=list(codes.shape[1:]),
        parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        losses={name: round(float(value.detach()), 4) for name, value in losses.items()},
        dtype='float32',
        step_seconds_best=step_seconds,
        step_seconds_median=sorted(timings)[len(timings) // 2],
        samples_per_s=settings.batch / step_seconds,
        step_gflop=step_flops / 1e9,
        matmul_gflop_per_s=rate / 1e9,
        utilisation=step_flops / (step_seconds * rate),
        tokenizer_encode=dict(
            gflop=encode_flops / 1e9,
            seconds=encode_seconds,
            share_of_step_time=encode_seconds / step_seconds,
        ),
        peak_rss_mb=peak_rss_mb(),
        op_profile=op_profile(step, settings.profile_ops),
        steps_timed=settings.steps,
        warmup_steps=settings.warmup,
    )
