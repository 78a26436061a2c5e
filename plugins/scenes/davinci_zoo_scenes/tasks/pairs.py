"""A sentence-pair task from scene captions, in the layout of GLUE's MRPC.

    pairs/train.tsv, pairs/dev.tsv   Quality \\t #1 ID \\t #2 ID \\t #1 String \\t #2 String
    pairs/test.tsv                   index \\t #1 ID \\t #2 ID \\t #1 String \\t #2 String

``Quality`` is 1 when the two sentences describe the same scene. Labels of test.tsv (GLUE's
test layout has none) are in ``scenes_task.json`` under ``test_labels``, in index order.

Sentences phrase two-object scenes in one of seven templates (:func:`phrasings`: the five
caption paraphrases, e.g. 'a large blue square below a small red circle', and two with the
colour after the noun, 'a small circle in red above a large square in blue'). Pairs come in
groups of two that share one sentence, the anchor (one template of a scene): the positive
pairs it with another template of the same scene, the negative with the same other template
of a minimally different scene, made of the same words: the two objects' places exchanged
(read against the anchor, the relation is inverted or the object order changed), or their
colours, sizes or shapes exchanged. So the two partners of an anchor hold the same bag of
words in the same template: every word-overlap score (Jaccard, Dice, shared counts), and which
templates a pair uses, are equal within a group and tell nothing of the label; only which
attribute goes with which shape and where does. Changing one attribute instead would change
the words (their overlap would tell) or, matched by overlap, the template pair (it would).
Sentences are lowercase with no full stop, as the scene captions, so splitting at spaces, into
words or into WordPiece tokens gives the same overlaps. Training pairs neither show nor name
a held-out colour/shape pair.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from functools import cache

from ..captions import INVERSE, SPOKEN, paraphrases
from ..vocabulary import SceneDescription, all_descriptions, uses_held_out_pair
from .files import SPLIT_ID_STRIDE, scaled, split_rng
from .sampling import scene_descriptions

TASK_NUMBER = 6
# (split, pairs at scale 1 (MRPC's sizes), leaves out the held-out colour/shape pairs)
SPLITS = (('train', 3668, True), ('dev', 408, False), ('test', 1725, False))
HEADER = ('Quality', '#1 ID', '#2 ID', '#1 String', '#2 String')
TEST_HEADER = ('index', '#1 ID', '#2 ID', '#1 String', '#2 String')
SWAPPED = ('colour', 'size', 'shape')
NEGATIVE_KINDS = ('order', *(f'swap_{attribute}' for attribute in SWAPPED))


def _colour_after(obj):
    """'a small circle in red'."""
    return f'a {obj.size} {obj.shape} in {obj.colour}'


def phrasings(description):
    """The seven sentences (templates, in a fixed order) of a two-object ``description``:
    the five caption paraphrases, then 'a small circle in red above a large square in blue'
    and 'a large square in blue below a small circle in red'."""
    first, second = (_colour_after(obj) for obj in description.objects)
    relation = description.relation
    return [
        *paraphrases(description),
        f'{first} {SPOKEN[relation]} {second}',
        f'{second} {INVERSE[relation]} {first}',
    ]


def words(text):
    """The lowercase words of ``text`` (punctuation dropped), in order."""
    return re.findall(r'[a-z0-9]+', text.lower())


@cache
def _descriptions_by_words():
    table = {}
    for description in all_descriptions():
        if description.relation is None:
            continue
        for text in phrasings(description):
            key = ' '.join(words(text))
            if table.setdefault(key, description) != description:
                raise ValueError(f'{text!r} phrases two different scenes')
    return table


def parse_sentence(text):
    """The two-object SceneDescription that ``text`` phrases in any template, or None."""
    return _descriptions_by_words().get(' '.join(words(text)))


def negatives(description):
    """[(kind, scene)]: the scenes that ``description``'s words also describe, with the two
    objects' places (kind 'order') or their colours, sizes or shapes ('swap_<attribute>')
    exchanged."""
    first, second = description.objects
    found = [('order', SceneDescription((second, first), relation=description.relation))]
    for attribute in SWAPPED:
        mine, theirs = getattr(first, attribute), getattr(second, attribute)
        if mine == theirs:
            continue
        objects = (
            dataclasses.replace(first, **{attribute: theirs}),
            dataclasses.replace(second, **{attribute: mine}),
        )
        try:
            scene = SceneDescription(objects, relation=description.relation)
        except ValueError:  # the exchange made the two objects alike: no such scene
            continue
        if all(scene != other for _, other in found):  # e.g. colours swapped = places swapped
            found.append((f'swap_{attribute}', scene))
    return found


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def make_group(rng, description, exclude_held_out):
    """(anchor, positive, negative, the negative's kind and scene) for ``description``: the
    anchor in one template, the positive and the negative in one other template."""
    templates = len(phrasings(description))
    anchor_template = int(rng.integers(templates))
    template = _pick(rng, [number for number in range(templates) if number != anchor_template])
    options = {
        kind: scene
        for kind, scene in negatives(description)
        if not (exclude_held_out and uses_held_out_pair(scene))
    }
    kind = _pick(rng, [kind for kind in NEGATIVE_KINDS if kind in options])
    scene = options[kind]
    texts = phrasings(description)
    return texts[anchor_template], texts[template], phrasings(scene)[template], kind, scene


def _split_pairs(rng, count, exclude_held_out):
    """[(label, sentence 1, sentence 2, negative kind or None, a sentence shows a held-out
    pair)]."""
    descriptions = [
        description
        for description in scene_descriptions(exclude_held_out)
        if description.relation is not None
    ]
    rows = []
    for _ in range(max(1, round(count / 2))):
        description = _pick(rng, descriptions)
        anchor, positive, negative, kind, scene = make_group(rng, description, exclude_held_out)
        held_out = uses_held_out_pair(description)
        for label, partner, partner_kind, unseen in (
            (1, positive, None, held_out),
            (0, negative, kind, held_out or uses_held_out_pair(scene)),
        ):
            first, second = (anchor, partner) if rng.random() < 0.5 else (partner, anchor)
            rows.append((label, first, second, partner_kind, unseen))
    return [rows[index] for index in rng.permutation(len(rows))]


def _sentence_ids(rng, rows, first_id):
    """Sentence -> id: the split's distinct sentences numbered in a random order."""
    sentences = sorted({text for row in rows for text in row[1:3]})
    order = rng.permutation(len(sentences))
    return {sentences[index]: first_id + rank for rank, index in enumerate(order)}


def _tsv(header, lines):
    return '\n'.join('\t'.join(map(str, line)) for line in (header, *lines)) + '\n'


def write(root, seed, scale, image_size):
    """Write train/dev/test.tsv under ``root``; counts, test labels, negative kinds and the
    rows (0-based data lines) that show or name a held-out pair, per split."""
    del image_size  # text only
    splits, unseen, kinds, test_labels = {}, {}, {}, []
    for number, (split, count, exclude_held_out) in enumerate(SPLITS):
        rng = split_rng(seed, TASK_NUMBER, number)
        rows = _split_pairs(rng, scaled(count, scale), exclude_held_out)
        ids = _sentence_ids(rng, rows, number * SPLIT_ID_STRIDE + 1)
        lines = [
            (index if split == 'test' else label, ids[first], ids[second], first, second)
            for index, (label, first, second, _, _) in enumerate(rows)
        ]
        header = TEST_HEADER if split == 'test' else HEADER
        (root / f'{split}.tsv').write_text(_tsv(header, lines), encoding='utf-8')
        if split == 'test':
            test_labels = [row[0] for row in rows]
        splits[split] = len(rows)
        unseen[split] = [index for index, row in enumerate(rows) if row[4]]
        kinds[split] = dict(sorted(Counter(row[3] for row in rows if row[3]).items()))
    return dict(splits=splits, unseen=unseen, negative_kinds=kinds, test_labels=test_labels)
