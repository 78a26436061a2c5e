"""Images and files of the task generators: checked renders, deterministic JSON, staging.

Images are written in the published format of each task (JPEG for COCO and Flickr30k, PNG
for NLVR2) and kept only when the analyser reads the written file back as its scene, so every
label can be checked from the pixels. JPEGs use quality 95 without chroma subsampling: at
32 px subsampling would smear the colour of a small shape.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from ..analyse import analyse
from ..render import place_scene, render

JPEG_QUALITY = 95
JITTER_STEP = 1 / 16  # objects move in steps of 1/16 of the side, as in the quick start
MAX_RENDER_TRIES = 50
MARKER = 'scenes_task.json'  # written into every task folder; marks it as ours to replace
SPLIT_ID_STRIDE = 10_000_000  # the ids of a task's split k start at k * SPLIT_ID_STRIDE + 1


def encode(image, image_format):
    """File bytes of ``image`` (uint8 [H, W, 3] RGB) as 'JPEG' or 'PNG'."""
    buffer = io.BytesIO()
    options = dict(quality=JPEG_QUALITY, subsampling=0) if image_format == 'JPEG' else {}
    Image.fromarray(image).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def decode(data):
    """uint8 [H, W, 3] RGB of image file bytes."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert('RGB'))


def checked_render(rng, description, size, image_format, paint=None, visible=None):
    """(Scene, file bytes) of ``description`` whose written file reads back as ``description``.

    ``paint(image)`` adds what the analyser must not see (an occluder) before encoding;
    ``visible(image)`` undoes it on the decoded file before reading. Offsets are redrawn
    until the file reads back (ValueError after MAX_RENDER_TRIES).
    """
    for _ in range(MAX_RENDER_TRIES):
        scene = place_scene(rng, description, JITTER_STEP)
        image = render(scene, size)
        data = encode(paint(image) if paint else image, image_format)
        decoded = decode(data)
        if analyse(visible(decoded) if visible else decoded) == description:
            return scene, data
    raise ValueError(f'no render of {description} at {size} px reads back')


def write_bytes(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_json(path, obj):
    """One JSON document, keys in the order given (the official files' order)."""
    Path(path).write_text(json.dumps(obj, ensure_ascii=False) + '\n', encoding='utf-8')


def write_jsonl(path, rows):
    lines = (json.dumps(row, ensure_ascii=False) + '\n' for row in rows)
    Path(path).write_text(''.join(lines), encoding='utf-8')


def split_rng(seed, task_number, split_number):
    """The generator of one split of one task: independent of the others and of --tasks."""
    return np.random.default_rng([seed, task_number, split_number])


def scaled(count, scale):
    """Items of a split at ``scale`` (at least 1)."""
    return max(1, round(count * scale))


def _ours(folder):
    return (folder / MARKER).is_file()


def check_replaceable(final):
    """FileExistsError unless ``final`` is absent or a task folder this generator wrote."""
    final = Path(final)
    if final.exists() and not _ours(final):
        raise FileExistsError(
            f'{final} exists and was not written by this generator; remove it or pick another --out'
        )


def stage(out, task):
    """A fresh ``<out>/<task>.partial`` folder to write ``task`` into.

    A leftover partial folder of ours is removed; anything else there is an error.
    """
    out = Path(out)
    partial = out / f'{task}.partial'
    if partial.exists():
        if not _ours(partial):
            raise FileExistsError(f'{partial} exists and was not written by this generator')
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_json(partial / MARKER, dict(task=task, complete=False))
    return partial


def publish(partial, final, meta):
    """Write ``meta`` as the marker and move ``partial`` to ``final``, replacing our old one."""
    final = Path(final)
    write_json(Path(partial) / MARKER, dict(meta, complete=True))
    check_replaceable(final)
    if final.exists():
        shutil.rmtree(final)
    Path(partial).rename(final)
