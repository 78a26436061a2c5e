"""Seeded draws for the task generators: text templates, and scenes drawn under a condition.

A task item is a text (question, statement, hypothesis) plus the scene(s) it is about. Every
text is written from a :class:`Template` and asked of several scenes, once with each label it
can take, so the label cannot be told from the text. Scenes come from a :class:`Pool`: the
descriptions a split may show, weighted like the plugin's ``sample_description``; the pool
draws from its conditional distribution given the label a text must get.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..vocabulary import (
    COLOURS,
    HELD_OUT_PAIRS,
    POSITIONS,
    SHAPES,
    SIZES,
    all_descriptions,
    uses_held_out_pair,
)

TWO_OBJECT_PROB = 0.5  # share of two-object scenes, as in the quick start's data
PAIR_BATCH = 1024  # candidate image pairs drawn at once when a pair must meet a condition
MAX_PAIR_BATCHES = 200
MAX_PARAM_REDRAWS = 1000  # texts in a row that take a single label before giving up

FIELD_WORDS = {
    'colour': tuple(COLOURS),
    'colour2': tuple(COLOURS),
    'shape': SHAPES,
    'shape2': SHAPES,
    'size': SIZES,
    'position': POSITIONS,
}
ALL_PAIRS = tuple((colour, shape) for colour in COLOURS for shape in SHAPES)


@dataclass(frozen=True)
class Template:
    """A text pattern over FIELD_WORDS' fields and the rule that labels it.

    ``judge(params, item)`` gives the label of the text written with ``params`` about
    ``item`` (a SceneDescription, or what the task's pool holds), or None where the text
    does not apply (e.g. 'the triangle' when a scene has none or two).
    """

    name: str
    text: str
    labels: tuple[str, ...]
    judge: Callable

    @cached_property
    def fields(self) -> tuple[str, ...]:
        return tuple(field for _, field, _, _ in string.Formatter().parse(self.text) if field)

    @cached_property
    def pattern(self) -> re.Pattern:
        parts = []
        for literal, field, _, _ in string.Formatter().parse(self.text):
            parts.append(re.escape(literal))
            if field:
                words = '|'.join(re.escape(word) for word in FIELD_WORDS[field])
                parts.append(f'(?P<{field}>{words})')
        return re.compile(''.join(parts))

    def write(self, params: dict) -> str:
        return self.text.format(**params)

    def parse(self, text: str) -> dict | None:
        """The params that write exactly ``text`` with this template, or None."""
        match = self.pattern.fullmatch(text)
        return None if match is None else match.groupdict()


def parse_text(templates, text):
    """(template, params) of the one template that writes ``text``; ValueError if none does."""
    for template in templates:
        params = template.parse(text)
        if params is not None:
            return template, params
    raise ValueError(f'no template writes {text!r}')


def allowed_pairs(exclude_held_out):
    """The (colour, shape) pairs a split may name: all, or all but the held-out ones."""
    return tuple(pair for pair in ALL_PAIRS if not (exclude_held_out and pair in HELD_OUT_PAIRS))


def mentions_held_out(params):
    """True when ``params`` name a held-out (colour, shape) pair."""
    named = {
        (params.get('colour'), params.get('shape')),
        (params.get('colour2'), params.get('shape2')),
    }
    return bool(named & HELD_OUT_PAIRS)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def sample_params(rng, template, pairs):
    """Uniform params for ``template``; colour+shape fields name one of ``pairs`` together."""
    fields, params = template.fields, {}
    if 'colour' in fields and 'shape' in fields:
        params['colour'], params['shape'] = _pick(rng, pairs)
    if 'colour2' in fields:
        others = [pair for pair in pairs if pair != (params['colour'], params['shape'])]
        params['colour2'], params['shape2'] = _pick(rng, others)
    for field in fields:
        if field not in params:
            params[field] = _pick(rng, FIELD_WORDS[field])
    return params


def params_key(template, params):
    return (template.name, *sorted(params.items()))


def scene_weights(descriptions, two_object_prob=TWO_OBJECT_PROB):
    """Weights [N] of ``descriptions`` as ``sample_description`` draws them (sum 1)."""
    singles = np.array([len(description.objects) == 1 for description in descriptions])
    if singles.all() or not singles.any():
        return np.full(len(descriptions), 1 / len(descriptions))
    share = np.where(singles, 1 - two_object_prob, two_object_prob)
    return share / np.where(singles, singles.sum(), (~singles).sum())


def scene_descriptions(exclude_held_out, singles_only=False):
    """Every description a split may show: all, or those without a held-out pair."""
    return tuple(
        description
        for description in all_descriptions()
        if not (exclude_held_out and uses_held_out_pair(description))
        and not (singles_only and len(description.objects) != 1)
    )


class Pool:
    """Weighted items (descriptions, or what a task draws) and their draws under a label.

    Args:
        items: the candidates, e.g. ``scene_descriptions(...)``.
        weights: [N] probabilities of the unconditional draw.
    """

    def __init__(self, items, weights):
        self.items = tuple(items)
        self.weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self._by_label = {}

    def by_label(self, template, params):
        """label -> (indices [M], probabilities [M]) of the items ``template`` gives it."""
        key = params_key(template, params)
        if key not in self._by_label:
            groups = {}
            for index, item in enumerate(self.items):
                label = template.judge(params, item)
                if label is not None:
                    groups.setdefault(label, []).append(index)
            self._by_label[key] = {
                label: (np.array(found), self.weights[found] / self.weights[found].sum())
                for label, found in groups.items()
            }
        return self._by_label[key]

    def labels(self, template, params):
        """The labels, in the template's order, that some item gives this text."""
        found = self.by_label(template, params)
        return tuple(label for label in template.labels if label in found)

    def draw(self, rng, template, params, label):
        """One item drawn from the pool's distribution given that the text gets ``label``."""
        indices, probabilities = self.by_label(template, params)[label]
        return self.items[indices[rng.choice(len(indices), p=probabilities)]]

    def draw_pair(self, rng, template, params, label):
        """Two items drawn independently, given that the text about the pair gets ``label``."""
        for _ in range(MAX_PAIR_BATCHES):
            firsts = rng.choice(len(self.items), size=PAIR_BATCH, p=self.weights)
            seconds = rng.choice(len(self.items), size=PAIR_BATCH, p=self.weights)
            for first, second in zip(firsts, seconds):
                pair = (self.items[first], self.items[second])
                if template.judge(params, pair) == label:
                    return pair
        raise ValueError(
            f'no image pair in {MAX_PAIR_BATCHES * PAIR_BATCH} draws makes '
            f'{template.write(params)!r} {label}'
        )


def balanced_groups(rng, templates, count, pairs, labels_of):
    """[(template, params, labels)]: about ``count`` items, the templates in equal shares.

    Each group is one text with every label it can take (``labels_of(template, params)``);
    texts that can take a single label are redrawn, since that label would be in the text.
    """
    groups = []
    share = -(-count // len(templates))
    for template in templates:
        made, redraws = 0, 0
        while made < share:
            params = sample_params(rng, template, pairs)
            labels = labels_of(template, params)
            if len(labels) >= 2:
                groups.append((template, params, labels))
                made, redraws = made + len(labels), 0
            elif (redraws := redraws + 1) >= MAX_PARAM_REDRAWS:
                raise ValueError(f'template {template.name!r} keeps giving texts of one label')
    return groups


def objects_with(description, colour=None, shape=None):
    """The objects of ``description`` of this colour and shape (None: any)."""
    return [
        obj
        for obj in description.objects
        if colour in (None, obj.colour) and shape in (None, obj.shape)
    ]


def shows(description, relation, first, second):
    """True when ``description`` is (colour, shape) ``first`` <relation> ``second``."""
    if description.relation != relation:
        return False
    return tuple((obj.colour, obj.shape) for obj in description.objects) == (first, second)
