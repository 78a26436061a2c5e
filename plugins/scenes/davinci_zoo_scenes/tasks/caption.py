"""COCO captioning from scenes, in the Karpathy split file (and for text-to-image).

    caption/dataset_coco.json  {"images": [{filepath, sentids, filename, imgid, split,
        sentences: [{tokens, raw, imgid, sentid}], cocoid}], "dataset": "coco"}
    caption/train2014/COCO_train2014_000000000001.jpg   the 'train' images
    caption/val2014/COCO_val2014_000010000001.jpg       'restval', 'val' and 'test' images

Every image has five paraphrased references; the first is the plugin's canonical caption
(``parse_caption`` reads it), so a loader that takes the first reference as the target trains
on captions the scene metrics can score. The same file serves text-to-image.
"""

from __future__ import annotations

import re

from ..captions import paraphrases
from ..render import sample_scene
from ..vocabulary import uses_held_out_pair
from .files import (
    JITTER_STEP,
    SPLIT_ID_STRIDE,
    checked_render,
    scaled,
    split_rng,
    write_bytes,
    write_json,
)
from .sampling import TWO_OBJECT_PROB

TASK_NUMBER = 4
# (Karpathy split, images at scale 1, leaves out the held-out pairs, COCO folder)
SPLITS = (
    ('train', 2000, True, 'train2014'),
    ('restval', 500, True, 'val2014'),
    ('val', 250, False, 'val2014'),
    ('test', 250, False, 'val2014'),
)


def raw_caption(text):
    """A COCO-style raw caption: first letter upper case, ending in a full stop."""
    return text[0].upper() + text[1:] + '.'


def tokens_of(raw):
    """Karpathy tokens: lowercase words without punctuation."""
    return re.findall(r'[a-z0-9]+', raw.lower())


def _scenes(rng, count, exclude_held_out):
    exclude = uses_held_out_pair if exclude_held_out else None
    return [
        sample_scene(rng, TWO_OBJECT_PROB, exclude, JITTER_STEP).description for _ in range(count)
    ]


def _entry(imgid, cocoid, split, folder, description, first_sentid):
    sentences = [
        dict(tokens=tokens_of(raw), raw=raw, imgid=imgid, sentid=first_sentid + number)
        for number, raw in enumerate(raw_caption(text) for text in paraphrases(description))
    ]
    return dict(
        filepath=folder,
        sentids=[sentence['sentid'] for sentence in sentences],
        filename=f'COCO_{folder}_{cocoid:012d}.jpg',
        imgid=imgid,
        split=split,
        sentences=sentences,
        cocoid=cocoid,
    )


def write(root, seed, scale, image_size):
    """Write the images and ``dataset_coco.json``; the counts and unseen cocoids per split."""
    images, splits, unseen, sentids = [], {}, {}, 0
    for number, (split, count, exclude_held_out, folder) in enumerate(SPLITS):
        rng = split_rng(seed, TASK_NUMBER, number)
        descriptions = _scenes(rng, scaled(count, scale), exclude_held_out)
        unseen[split] = []
        for offset, description in enumerate(descriptions):
            cocoid = number * SPLIT_ID_STRIDE + offset + 1
            entry = _entry(len(images), cocoid, split, folder, description, sentids)
            sentids += len(entry['sentences'])
            _, data = checked_render(rng, description, image_size, 'JPEG')
            write_bytes(root / folder / entry['filename'], data)
            images.append(entry)
            if uses_held_out_pair(description):
                unseen[split].append(cocoid)
        splits[split] = len(descriptions)
    write_json(root / 'dataset_coco.json', dict(images=images, dataset='coco'))
    return dict(splits=splits, unseen=unseen)
