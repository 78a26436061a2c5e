"""NLVR2 from scenes, in the layout of the NLVR2 release.

    nlvr2/train.json  dev.json  test1.json   JSON lines: {sentence, label ('True' / 'False'),
        identifier, directory (train only), left_url, right_url, writer, synset}
    nlvr2/images/train/<directory>/train-<n>-<k>-img0.png, -img1.png   left and right image
    nlvr2/dev/dev-<n>-<k>-img0.png ...,  nlvr2/test1/test1-<n>-<k>-img0.png ...

The identifier is ``<split>-<n>-<k>-0``: statement group ``n`` (a "set" of the release), image
pair ``k`` of it, sentence 0; the images are named by the identifier without its last part.
Every statement is written about two image pairs, one making it true and one false (which
``k`` is which is drawn), so labels are 50/50 and no statement tells its label.
"""

from __future__ import annotations

from ..vocabulary import uses_held_out_pair
from .files import checked_render, scaled, split_rng, write_bytes, write_jsonl
from .sampling import (
    Pool,
    Template,
    allowed_pairs,
    balanced_groups,
    mentions_held_out,
    objects_with,
    parse_text,
    scene_descriptions,
    scene_weights,
    shows,
)

TASK_NUMBER = 2
# (split, examples at scale 1, leaves out the held-out colour/shape pairs); train is twice
# the other tasks' 3,000, on which the scene recipe overfits (docs/tasks/nlvr2.md)
SPLITS = (('train', 6000, True), ('dev', 500, False), ('test1', 500, False))
LABELS = ('True', 'False')
TRAIN_DIRECTORIES = 100  # the release spreads train images over folders 0..99


def _truth(flag):
    return 'True' if flag else 'False'


def _has(description, colour=None, shape=None):
    return bool(objects_with(description, colour, shape))


def _count(pair):
    return tuple(len(description.objects) for description in pair)


def _in_one(relation):
    def judge(params, pair):
        first = (params['colour'], params['shape'])
        second = (params['colour2'], params['shape2'])
        return _truth(any(shows(description, relation, first, second) for description in pair))

    return judge


TEMPLATES = (
    Template(
        'left_has',
        'The left image contains a {colour} {shape}.',
        LABELS,
        lambda p, pair: _truth(_has(pair[0], p['colour'], p['shape'])),
    ),
    Template(
        'right_has',
        'The right image contains a {colour} {shape}.',
        LABELS,
        lambda p, pair: _truth(_has(pair[1], p['colour'], p['shape'])),
    ),
    Template(
        'both_have',
        'Both images contain a {shape}.',
        LABELS,
        lambda p, pair: _truth(all(_has(d, shape=p['shape']) for d in pair)),
    ),
    Template(
        'neither_has',
        'Neither image contains a {shape}.',
        LABELS,
        lambda p, pair: _truth(not any(_has(d, shape=p['shape']) for d in pair)),
    ),
    Template(
        'one_has_colour',
        'Exactly one image contains a {colour} shape.',
        LABELS,
        lambda p, pair: _truth(sum(_has(d, colour=p['colour']) for d in pair) == 1),
    ),
    Template(
        'more_left',
        'There are more shapes in the left image.',
        LABELS,
        lambda p, pair: _truth(_count(pair)[0] > _count(pair)[1]),
    ),
    Template(
        'more_right',
        'There are more shapes in the right image.',
        LABELS,
        lambda p, pair: _truth(_count(pair)[1] > _count(pair)[0]),
    ),
    Template(
        'same_count',
        'Both images show the same number of shapes.',
        LABELS,
        lambda p, pair: _truth(_count(pair)[0] == _count(pair)[1]),
    ),
    Template(
        'above_in_one',
        'At least one image shows a {colour} {shape} above a {colour2} {shape2}.',
        LABELS,
        _in_one('above'),
    ),
    Template(
        'left_in_one',
        'At least one image shows a {colour} {shape} to the left of a {colour2} {shape2}.',
        LABELS,
        _in_one('left of'),
    ),
)


def statement_label(sentence, left, right):
    """'True' or 'False': ``sentence`` about the scene descriptions ``left`` and ``right``."""
    template, params = parse_text(TEMPLATES, sentence)
    return template.judge(params, (left, right))


def template_of(sentence):
    return parse_text(TEMPLATES, sentence)[0].name


def image_stem(identifier):
    """The image name stem of an identifier: ``train-3-1-0`` -> ``train-3-1``."""
    return identifier.rsplit('-', 1)[0]


def image_folder(split, row):
    """A row's image folder, relative to the task root: ``images/train/<directory>``, ``dev``
    or ``test1`` (the folders of the release's image archives)."""
    return f'images/train/{row["directory"]}' if split == 'train' else split


def _groups(rng, count, exclude_held_out):
    """[(template, sentence, [(label, (left, right))], params)] of one split, shuffled."""
    descriptions = scene_descriptions(exclude_held_out)
    pool = Pool(descriptions, scene_weights(descriptions))
    pairs = allowed_pairs(exclude_held_out)
    groups = []
    for template, params, labels in balanced_groups(
        rng, TEMPLATES, count, pairs, lambda template, params: template.labels
    ):
        drawn = [(label, pool.draw_pair(rng, template, params, label)) for label in labels]
        order = rng.permutation(len(drawn))  # which pair index k holds which label
        groups.append((template, template.write(params), [drawn[k] for k in order], params))
    order = rng.permutation(len(groups))
    return [groups[index] for index in order]


def _write_split(root, split, groups, rng, image_size):
    rows, unseen = [], []
    for n, (template, sentence, drawn, params) in enumerate(groups):
        for k, (label, pair) in enumerate(drawn):
            identifier = f'{split}-{n}-{k}-0'
            row = dict(sentence=sentence, label=label, identifier=identifier)
            if split == 'train':
                row['directory'] = n % TRAIN_DIRECTORIES
            folder = image_folder(split, row)
            urls = {}
            for side, description in zip(('left', 'right'), pair):
                _, data = checked_render(rng, description, image_size, 'PNG')
                name = f'{image_stem(identifier)}-img{len(urls)}.png'
                write_bytes(root / folder / name, data)
                urls[f'{side}_url'] = f'{folder}/{name}'
            rows.append(dict(row, **urls, writer='davinci-zoo-scenes', synset=template.name))
            if mentions_held_out(params) or any(uses_held_out_pair(d) for d in pair):
                unseen.append(identifier)
    order = rng.permutation(len(rows))
    write_jsonl(root / f'{split}.json', [rows[index] for index in order])
    return len(rows), unseen


def write(root, seed, scale, image_size):
    """Write every split under ``root``; the counts and unseen identifiers per split."""
    splits, unseen = {}, {}
    for number, (split, count, exclude_held_out) in enumerate(SPLITS):
        rng = split_rng(seed, TASK_NUMBER, number)
        groups = _groups(rng, scaled(count, scale), exclude_held_out)
        splits[split], unseen[split] = _write_split(root, split, groups, rng, image_size)
    return dict(splits=splits, unseen=unseen)
