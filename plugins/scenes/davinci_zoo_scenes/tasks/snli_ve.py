"""SNLI-VE from scenes, in the layout of the SNLI-VE release.

    snli_ve/snli_ve_train.jsonl  snli_ve_dev.jsonl  snli_ve_test.jsonl   JSON lines, SNLI's
        fields in sorted order: {Flikr30kID, annotator_labels, captionID, gold_label, pairID,
        sentence1, sentence1_binary_parse, sentence1_parse, sentence2, sentence2_binary_parse,
        sentence2_parse}
    snli_ve/flickr30k_images/<Flikr30kID>   e.g. 17.jpg

Each premise image is one shape in a quadrant and a grey square covering another quadrant.
A hypothesis is about one quadrant: ``neutral`` when that quadrant is covered (the image cannot
show it), else ``entailment`` or ``contradiction`` as the visible quadrant makes it true or
false. Every hypothesis is written about three images, one per label, so labels are balanced
and none follows from the text. ``sentence1`` is the visible shape's caption (the premise text
of SNLI; the task reads the image instead, and a model given it could skip the image).
The ``*_parse`` fields are a right-branching bracketing and a flat tree of the words, not
parses. ``pairID`` ends in the label's letter, as in SNLI.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from ..captions import caption_of
from ..vocabulary import POSITIONS, uses_held_out_pair
from .files import SPLIT_ID_STRIDE, checked_render, scaled, split_rng, write_bytes, write_jsonl
from .sampling import (
    Pool,
    Template,
    allowed_pairs,
    balanced_groups,
    mentions_held_out,
    parse_text,
    scene_descriptions,
)

TASK_NUMBER = 3
# (split, hypotheses at scale 1, leaves out the held-out colour/shape pairs)
SPLITS = (('train', 3000, True), ('dev', 450, False), ('test', 450, False))
LABELS = ('entailment', 'neutral', 'contradiction')
OCCLUDER_GREY = 128  # the occluder's value in every channel
IMAGE_FOLDER = 'flickr30k_images'


def quadrant_box(position, size):
    """(rows, cols) slices of quadrant ``position`` of a ``size`` px image."""
    half = size // 2
    vertical, horizontal = position.split()
    rows = slice(0, half) if vertical == 'top' else slice(half, size)
    cols = slice(0, half) if horizontal == 'left' else slice(half, size)
    return rows, cols


def draw_occluder(image, position):
    """A copy of ``image`` [S, S, 3] with quadrant ``position`` covered in grey."""
    covered = image.copy()
    covered[quadrant_box(position, image.shape[0])] = OCCLUDER_GREY
    return covered


def visible_part(image, position):
    """A copy of ``image`` with the occluded quadrant blacked out: what the analyser reads."""
    visible = image.copy()
    visible[quadrant_box(position, image.shape[0])] = 0
    return visible


def find_occluder(image, tolerance=16):
    """The quadrant of ``image`` that is all occluder grey (within ``tolerance``), or None."""
    for position in POSITIONS:
        block = image[quadrant_box(position, image.shape[0])].astype(np.int16)
        if np.abs(block - OCCLUDER_GREY).max() <= tolerance:
            return position
    return None


def _object_at(description, position):
    return description.objects[0] if description.position == position else None


def _hypothesis(*attributes, empty=False):
    """Judge of a hypothesis about quadrant ``params['position']`` of (description, hidden):
    it holds when an object there matches the params' ``attributes`` (``empty``: no object)."""

    def judge(params, item):
        description, hidden = item
        if params['position'] == hidden:
            return 'neutral'
        found = _object_at(description, params['position'])
        if empty:
            holds = found is None
        else:
            holds = found is not None and all(getattr(found, a) == params[a] for a in attributes)
        return 'entailment' if holds else 'contradiction'

    return judge


TEMPLATES = (
    Template(
        'object_at',
        'There is a {colour} {shape} in the {position}.',
        LABELS,
        _hypothesis('colour', 'shape'),
    ),
    Template(
        'colour_at', 'There is a {colour} shape in the {position}.', LABELS, _hypothesis('colour')
    ),
    Template('shape_at', 'There is a {shape} in the {position}.', LABELS, _hypothesis('shape')),
    Template('size_at', 'There is a {size} shape in the {position}.', LABELS, _hypothesis('size')),
    Template('empty_at', 'The {position} corner is empty.', LABELS, _hypothesis(empty=True)),
)


def hypothesis_label(sentence2, description, hidden):
    """The gold label of ``sentence2`` about a one-object scene with quadrant ``hidden`` covered."""
    template, params = parse_text(TEMPLATES, sentence2)
    return template.judge(params, (description, hidden))


def template_of(sentence2):
    return parse_text(TEMPLATES, sentence2)[0].name


def sentence_case(text):
    """'a red circle' -> 'A red circle.'"""
    return text[0].upper() + text[1:] + '.'


def _words(sentence):
    return re.findall(r"[\w']+|[^\w\s]", sentence)


def binary_parse(sentence):
    """A right-branching binary bracketing of the words: '( A ( red circle ) )'."""
    words = _words(sentence)
    tree = words[-1]
    for word in reversed(words[:-1]):
        tree = f'( {word} {tree} )'
    return tree


def flat_parse(sentence):
    """A flat tree of the words, each tagged X: '(ROOT (S (X A) (X red) (X circle)))'."""
    return '(ROOT (S ' + ' '.join(f'(X {word})' for word in _words(sentence)) + '))'


def _pool(exclude_held_out):
    """(one-object description, covered quadrant) items, the quadrant not the object's."""
    descriptions = scene_descriptions(exclude_held_out, singles_only=True)
    items = [
        (description, hidden)
        for description, hidden in itertools.product(descriptions, POSITIONS)
        if hidden != description.position
    ]
    return Pool(items, np.ones(len(items)))


def _split_items(rng, count, exclude_held_out):
    """[(sentence2, label, description, hidden, unseen)] of one split, shuffled."""
    pool = _pool(exclude_held_out)
    pairs = allowed_pairs(exclude_held_out)
    items = []
    for template, params, labels in balanced_groups(rng, TEMPLATES, count, pairs, pool.labels):
        sentence = template.write(params)
        for label in labels:
            description, hidden = pool.draw(rng, template, params, label)
            items.append((sentence, label, description, hidden, mentions_held_out(params)))
    order = rng.permutation(len(items))
    return [items[index] for index in order]


def _row(image_name, sentence1, sentence2, label):
    caption_id = f'{image_name}#0'
    return dict(
        Flikr30kID=image_name,
        annotator_labels=[label],
        captionID=caption_id,
        gold_label=label,
        pairID=f'{caption_id}r1{label[0]}',
        sentence1=sentence1,
        sentence1_binary_parse=binary_parse(sentence1),
        sentence1_parse=flat_parse(sentence1),
        sentence2=sentence2,
        sentence2_binary_parse=binary_parse(sentence2),
        sentence2_parse=flat_parse(sentence2),
    )


def _write_split(root, split, items, first_id, rng, image_size):
    rows, unseen = [], []
    for offset, (sentence2, label, description, hidden, mentions) in enumerate(items):
        image_name = f'{first_id + offset}.jpg'
        _, data = checked_render(
            rng,
            description,
            image_size,
            'JPEG',
            paint=lambda image, hidden=hidden: draw_occluder(image, hidden),
            visible=lambda image, hidden=hidden: visible_part(image, hidden),
        )
        write_bytes(root / IMAGE_FOLDER / image_name, data)
        rows.append(_row(image_name, sentence_case(caption_of(description)), sentence2, label))
        if mentions or uses_held_out_pair(description):
            unseen.append(f'{image_name}#0r1{label[0]}')
    write_jsonl(root / f'snli_ve_{split}.jsonl', rows)
    return len(rows), unseen


def write(root, seed, scale, image_size):
    """Write every split under ``root``; the counts and unseen pairIDs per split."""
    splits, unseen = {}, {}
    for number, (split, count, exclude_held_out) in enumerate(SPLITS):
        rng = split_rng(seed, TASK_NUMBER, number)
        items = _split_items(rng, scaled(count, scale), exclude_held_out)
        first_id = number * SPLIT_ID_STRIDE + 1
        splits[split], unseen[split] = _write_split(root, split, items, first_id, rng, image_size)
    return dict(splits=splits, unseen=unseen)
