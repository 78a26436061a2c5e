"""Training-step benchmark: samples/s, peak memory and utilisation of a DaVinci config.

Utilisation = FLOPs of one full training step (forward + backward, counted by
``torch.utils.flop_counter.FlopCounterMode``) / (step time x the machine's matmul rate), where
the rate is the best fp32 4096x4096 matrix product at the same thread count, measured between
the timed steps (so, on a shared machine, rate and step time come from the same stretch). The batch
is what the data workers deliver (uint8 images, captions already tokenised); the image codes
are computed once before timing (the frozen tokenizer's encoding is reported on its own), so
the step measured is the data preprocessor's and the model's: normalisation, embedder,
encoder, decoder, heads, losses, optimizer.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import numpy as np
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


CAPTION_WORDS = (
    'a',
    'small',
    'large',
    'red',
    'blue',
    'circle',
    'square',
    'in',
    'the',
    'top',
    'left',
)


def synthetic_batch(batch: int, image_size: int, seed: int) -> dict:
    """A collated batch as the data workers deliver it, from seeded noise: uint8 images
    [B, 3, S, S] and tokenised captions of 8-14 words (``mixed_collate`` of packed items).
    The step's cost depends on the shapes, not on what the pixels and words are."""
    from davinci_zoo.datasets.mixing import mixed_collate
    from davinci_zoo.datasets.transforms import build_pipeline

    rng = np.random.default_rng(seed)
    pack = build_pipeline(
        [dict(type='TokenizeText', keys=['caption']), dict(type='PackDaVinciInputs')]
    )
    items = []
    for index in range(batch):
        image = rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
        words = rng.choice(CAPTION_WORDS, size=int(rng.integers(8, 15)))
        shape = image.shape[:2]
        items.append(
            pack(
                dict(
                    img=image,
                    img_shape=shape,
                    ori_shape=shape,
                    caption=' '.join(words),
                    sample_idx=index,
                )
            )
        )
    return mixed_collate(items)


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
    batch = synthetic_batch(settings.batch, image_size, settings.seed)
    images = model.data_preprocessor(batch, True)['inputs']['images']
    encode_flops = count_flops(lambda: model.image_codes(images))
    start = time.perf_counter()
    codes = model.image_codes(images)
    encode_seconds = time.perf_counter() - start
    batch['inputs']['codes'] = codes.cpu()

    def step():
        # the same split points and dropout masks every step: every step does the same work
        np.random.seed(settings.seed)
        torch.manual_seed(settings.seed)
        data = model.data_preprocessor(batch, True)
        losses = model.loss(data['inputs'], data['data_samples'])
        optim_wrapper.update_params(model.parse_losses(losses)[0])
        return losses

    for _ in range(settings.warmup):
        step()
    timings, rates = [], []
    for _ in range(settings.steps):
        begin = time.perf_counter()
        losses = step()
        timings.append(time.perf_counter() - begin)
        rates.append(matmul_flops_per_second(repeats=2))
    step_seconds = min(timings)
    step_flops = count_flops(step)
    rate = max(rates)
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
