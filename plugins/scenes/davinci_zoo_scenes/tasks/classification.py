"""Scene image classification, written in CIFAR-10's python layout and as ImageFolder.

    classification/cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta
        pickled dicts as CIFAR-10's (b'data' [N, 3072] uint8 channel-major, b'labels',
        b'filenames', b'batch_label'; batches.meta: b'label_names', ...)
    classification/train/<class>/<file>.png   classification/test/<class>/<file>.png

The same 32 px images in both (the PNG files hold the CIFAR rows' pixels). A class is the two
shapes of a two-object scene and their relation, e.g. ``circle_above_square`` (a circle above
a square) or ``triangle_left_of_triangle``: 3 x 3 shapes x 2 relations = 18 classes, indexed
in sorted order (the order of ImageFolder's sorted folders). Colours and sizes are drawn at
random and independently of the class (the two colours always differ), so neither colour
statistics nor the object sizes tell the class; only the shapes and where they are do.
Every split holds every colour/shape pair: leaving the held-out pairs out of training would
tie colours to classes. Each image is kept only when the analyser reads the written file back
as its scene, so every label follows from the pixels (``class_of(analyse(image))``).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..vocabulary import COLOURS, RELATIONS, SHAPES, SIZES, ObjectDesc, SceneDescription
from .cifar_files import batch_bytes, meta_bytes
from .files import checked_render, decode, scaled, split_rng, write_bytes

TASK_NUMBER = 5
CIFAR_FOLDER = 'cifar-10-batches-py'
CIFAR_IMAGE_SIZE = 32
TRAIN_BATCHES = 5  # data_batch_1 .. data_batch_5, as CIFAR-10
# (split, images at scale 1, CIFAR files as (file name, batch label) per batch)
SPLITS = (
    (
        'train',
        5000,
        tuple(
            (f'data_batch_{k}', f'training batch {k} of {TRAIN_BATCHES}')
            for k in range(1, TRAIN_BATCHES + 1)
        ),
    ),
    ('test', 1000, (('test_batch', 'testing batch 1 of 1'),)),
)


def class_name(first_shape, relation, second_shape):
    """Folder-safe class name: ('circle', 'left of', 'square') -> 'circle_left_of_square'."""
    return f'{first_shape}_{relation.replace(" ", "_")}_{second_shape}'


#: class name -> (upper or left shape, relation, other shape)
CLASSES = dict(
    sorted(
        (class_name(first, relation, second), (first, relation, second))
        for relation, first, second in itertools.product(RELATIONS, SHAPES, SHAPES)
    )
)
CLASS_NAMES = tuple(CLASSES)


def class_of(description):
    """The class name of a SceneDescription; None for a one-object scene or for None (an
    image the analyser cannot read)."""
    if description is None or description.relation is None:
        return None
    first, second = description.objects
    return class_name(first.shape, description.relation, second.shape)


def sample_description(rng, name):
    """A scene of class ``name``: two different colours and two sizes drawn uniformly."""
    first_shape, relation, second_shape = CLASSES[name]
    first_colour, second_colour = rng.choice(tuple(COLOURS), size=2, replace=False)
    first_size, second_size = rng.choice(SIZES, size=2)
    return SceneDescription(
        (
            ObjectDesc(first_shape, str(first_colour), str(first_size)),
            ObjectDesc(second_shape, str(second_colour), str(second_size)),
        ),
        relation=relation,
    )


def _split_images(rng, split, count, scale):
    """[(label, file name, PNG bytes, RGB [32, 32, 3])] of one split: classes equally often."""
    per_class = scaled(count / len(CLASS_NAMES), scale)
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), per_class))
    items = []
    for index, label in enumerate(labels):
        description = sample_description(rng, CLASS_NAMES[label])
        _, data = checked_render(rng, description, CIFAR_IMAGE_SIZE, 'PNG')
        items.append((int(label), f'{split}_{index:06d}.png', data, decode(data)))
    return items


def _write_split(root, split, items, batches):
    for label, name, data, _ in items:
        write_bytes(root / split / CLASS_NAMES[label] / name, data)
    for (file_name, batch_label), part in zip(
        batches, np.array_split(np.arange(len(items)), len(batches))
    ):
        chosen = [items[index] for index in part]
        write_bytes(
            root / CIFAR_FOLDER / file_name,
            batch_bytes(
                batch_label,
                [label for label, _, _, _ in chosen],
                np.stack([image for _, _, _, image in chosen]),
                [name for _, name, _, _ in chosen],
            ),
        )


def write(root, seed, scale, image_size):
    """Write both layouts under ``root``; the counts per split, images per class, classes."""
    if image_size != CIFAR_IMAGE_SIZE:
        raise ValueError(
            f'classification writes CIFAR-10 files, which hold {CIFAR_IMAGE_SIZE} px images; '
            f'got image size {image_size}'
        )
    splits, per_class, train_batch_size = {}, {}, None
    for number, (split, count, batches) in enumerate(SPLITS):
        items = _split_images(split_rng(seed, TASK_NUMBER, number), split, count, scale)
        _write_split(root, split, items, batches)
        splits[split], per_class[split] = len(items), len(items) // len(CLASS_NAMES)
        if split == 'train':
            train_batch_size = -(-len(items) // len(batches))
    write_bytes(root / CIFAR_FOLDER / 'batches.meta', meta_bytes(CLASS_NAMES, train_batch_size))
    return dict(splits=splits, per_class=per_class, classes=list(CLASS_NAMES))
