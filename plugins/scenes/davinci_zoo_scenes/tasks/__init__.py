"""Scene versions of the downstream tasks, written in each task's published format.

    python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 \
        [--tasks vqa,nlvr2,snli_ve,caption,classification,pairs] [--scale 1.0] [--image-size 32]

writes ``<out>/vqa`` (VQAv2), ``<out>/nlvr2``, ``<out>/snli_ve``, ``<out>/caption`` (COCO
Karpathy split, also for text-to-image), ``<out>/classification`` (CIFAR-10's python layout and
ImageFolder; 32 px only) and ``<out>/pairs`` (GLUE's MRPC), so the real loaders, heads and
metrics run on them.
Every file depends only on the seed, scale and image size. Training splits leave out the
held-out colour/shape pairs; test splits include them, and ``scenes_task.json`` in each task
folder lists the test items that show or name one (``unseen``). Classification is the
exception: every split shows every pair, so colours stay independent of the class.
"""

from __future__ import annotations

from pathlib import Path

from ..vocabulary import HELD_OUT_PAIRS
from . import caption, classification, nlvr2, pairs, snli_ve, vqa
from .files import check_replaceable, publish, stage

TASKS = {
    'vqa': vqa,
    'nlvr2': nlvr2,
    'snli_ve': snli_ve,
    'caption': caption,
    'classification': classification,
    'pairs': pairs,
}


def generate_task(task, out, seed=0, scale=1.0, image_size=32):
    """Write ``task`` into ``<out>/<task>`` (replacing an earlier one of ours); its meta dict."""
    if task not in TASKS:
        raise ValueError(f'unknown task {task!r}; choose from {", ".join(TASKS)}')
    final = Path(out) / task
    check_replaceable(final)
    partial = stage(out, task)
    written = TASKS[task].write(partial, seed, scale, image_size)
    meta = dict(
        task=task,
        seed=seed,
        scale=scale,
        image_size=image_size,
        held_out_pairs=sorted(list(pair) for pair in HELD_OUT_PAIRS),
        **written,
    )
    publish(partial, final, meta)
    return meta


__all__ = ['TASKS', 'generate_task']
