"""``python -m davinci_zoo_scenes.train_features``: train the scene-FID feature network.

Renders fresh seeded scenes (never a task's images; half stored as JPEG like the tasks'),
trains :class:`~.features.SceneFeatures` to name each scene's layout and both objects' classes,
saves it as ``.safetensors`` and prints JSON with its accuracies on separately seeded held-out
scenes. The defaults take about a minute and a half on one thread.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from davinci_zoo.checkpoint import save_checkpoint_file
from davinci_zoo.cli import UserError

from .features import INPUT_SIZE, NO_OBJECT, OBJECT_CLASSES, SceneFeatures, labels_of
from .render import render, sample_scene

TWO_OBJECT_PROB = 0.5  # as the scene tasks draw them
JITTER_STEP = 1 / 16  # objects move in steps of 1/16 of the side, as in the scene tasks
JPEG_SHARE = 0.5  # share of training images stored as JPEG (the tasks' format) before reading
JPEG_QUALITY = 95  # the tasks' JPEG quality, without chroma subsampling
DEFAULT_OUT = 'data/scenes_tasks/scene_features_32px.safetensors'


def jpeg_round_trip(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] stored as JPEG and read back."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='JPEG', quality=JPEG_QUALITY, subsampling=0)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert('RGB'))


def rendered_scenes(count: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` fresh scenes drawn with ``rng``: uint8 RGB [count, 3, 32, 32] and their
    labels [count, 3] (layout, first object, second object)."""
    images, labels = [], []
    for _ in range(count):
        scene = sample_scene(rng, TWO_OBJECT_PROB, None, JITTER_STEP)
        image = render(scene, INPUT_SIZE)
        if rng.random() < JPEG_SHARE:
            image = jpeg_round_trip(image)
        images.append(image)
        labels.append(labels_of(scene.description))
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return pixels, torch.tensor(labels)


def loss_of(network: SceneFeatures, images, labels) -> torch.Tensor:
    """Summed cross-entropy of the three heads on uint8 images [B, 3, H, W], labels [B, 3]."""
    logits = network.logits(images)
    return sum(F.cross_entropy(logits[name], labels[:, k]) for k, name in enumerate(logits))


@torch.no_grad()
def accuracies(network: SceneFeatures, images, labels, batch_size: int = 500) -> dict:
    """Accuracies on uint8 images [N, 3, H, W] with labels [N, 3]: ``layout``,
    ``first_object``, ``second_object`` (whole classes; the second over two-object scenes),
    ``shape``, ``colour``, ``size`` (over every object) and ``scene`` (every head right)."""
    network.eval()
    predicted = []
    for start in range(0, len(images), batch_size):
        logits = network.logits(images[start : start + batch_size])
        predicted.append(torch.stack([logits[name].argmax(1) for name in logits], 1))
    predicted = torch.cat(predicted)
    right = predicted == labels
    two = labels[:, 2] != NO_OBJECT
    result = {
        'layout': right[:, 0].float().mean(),
        'first_object': right[:, 1].float().mean(),
        'second_object': right[two, 2].float().mean(),
        'scene': right.all(1).float().mean(),
    }
    truth = torch.cat([labels[:, 1], labels[two, 2]]).tolist()
    guess = torch.cat([predicted[:, 1], predicted[two, 2]]).tolist()
    for index, name in enumerate(('shape', 'colour', 'size')):
        result[name] = np.mean(
            [
                g != NO_OBJECT and OBJECT_CLASSES[g][index] == OBJECT_CLASSES[t][index]
                for g, t in zip(guess, truth)
            ]
        )
    return {name: round(float(value), 4) for name, value in result.items()}


def train(
    out: str,
    seed: int = 0,
    train_scenes: int = 24_000,
    held_out_scenes: int = 2_000,
    steps: int = 1_500,
    batch_size: int = 64,
    lr: float = 2e-3,
) -> dict:
    """Train a SceneFeatures on fresh scenes of ``seed``, save it to ``out`` (``.safetensors``,
    the report as its metadata) and return the report (held-out accuracies, counts, seconds)."""
    if not out.endswith('.safetensors'):
        raise ValueError(f'--out must name a .safetensors file, got {out}')
    start = time.perf_counter()
    torch.manual_seed(seed)
    images, labels = rendered_scenes(train_scenes, np.random.default_rng([seed, 0]))
    held_images, held_labels = rendered_scenes(held_out_scenes, np.random.default_rng([seed, 1]))
    network = SceneFeatures()
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1)
    order = torch.Generator().manual_seed(seed)
    network.train()
    for _ in range(steps):
        batch = torch.randint(len(images), (batch_size,), generator=order)
        loss = loss_of(network, images[batch], labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    report = dict(
        out=out,
        seed=seed,
        train_scenes=train_scenes,
        held_out_scenes=held_out_scenes,
        steps=steps,
        batch_size=batch_size,
        final_loss=round(float(loss.detach()), 4),
        held_out_accuracy=accuracies(network, held_images, held_labels),
        seconds=round(time.perf_counter() - start, 1),
    )
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    save_checkpoint_file(dict(state_dict=network.state_dict(), meta=report), out)
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m davinci_zoo_scenes.train_features',
        description='Train the scene classifier whose features give the scene FID.',
    )
    parser.add_argument('--out', default=DEFAULT_OUT, help='the .safetensors file to write')
    parser.add_argument('--seed', type=int, default=0, help='seeds the scenes and the training')
    parser.add_argument('--train-scenes', type=int, default=24_000, help='scenes rendered')
    parser.add_argument('--held-out-scenes', type=int, default=2_000, help='scored at the end')
    parser.add_argument('--steps', type=int, default=1_500, help='optimiser steps')
    parser.add_argument('--batch-size', type=int, default=64, help='scenes per step')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    for name in ('train_scenes', 'held_out_scenes', 'steps', 'batch_size'):
        if getattr(args, name) < 1:
            raise UserError(f'--{name.replace("_", "-")} must be at least 1')
    if not args.out.endswith('.safetensors'):
        raise UserError(f'--out must name a .safetensors file, got {args.out}')
    report = train(
        args.out, args.seed, args.train_scenes, args.held_out_scenes, args.steps, args.batch_size
    )
    print(json.dumps(report))
    return report


if __name__ == '__main__':
    from davinci_zoo.cli import run_tool

    run_tool(main)
