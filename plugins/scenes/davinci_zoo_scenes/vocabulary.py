"""Attribute words of the shape scenes and the description types built from them.

Every word used in a caption is a whole word of the bert-base-uncased WordPiece vocabulary
(checked against its vocab.txt), so captions tokenise into whole words. The cyan colour is
called 'turquoise' because 'cyan' and 'magenta' are not in that vocabulary.
"""

import itertools
from dataclasses import dataclass
from functools import cache

COLOURS = {
    'red': (230, 30, 30),
    'green': (30, 200, 40),
    'blue': (35, 55, 240),
    'yellow': (235, 220, 30),
    'purple': (200, 30, 210),
    'turquoise': (30, 210, 225),
}
SHAPES = ('circle', 'square', 'triangle')
SIZES = ('small', 'large')
POSITIONS = ('top left', 'top right', 'bottom left', 'bottom right')
RELATIONS = ('above', 'left of')

HELD_OUT_PAIRS = frozenset({('red', 'triangle'), ('turquoise', 'circle')})


@dataclass(frozen=True)
class ObjectDesc:
    """One shape: which shape, which colour word and which size word."""

    shape: str
    colour: str
    size: str

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f'unknown shape {self.shape!r}; expected one of {SHAPES}')
        if self.colour not in COLOURS:
            raise ValueError(f'unknown colour {self.colour!r}; expected one of {tuple(COLOURS)}')
        if self.size not in SIZES:
            raise ValueError(f'unknown size {self.size!r}; expected one of {SIZES}')


@dataclass(frozen=True)
class SceneDescription:
    """What a scene shows: one object at a position, or two objects in a relation.

    Two objects are stored in canonical order: for 'above' the upper object comes first,
    for 'left of' the left object comes first. They must differ in shape or colour.
    """

    objects: tuple[ObjectDesc, ...]
    position: str | None = None
    relation: str | None = None

    def __post_init__(self):
        object.__setattr__(self, 'objects', tuple(self.objects))
        if not all(isinstance(obj, ObjectDesc) for obj in self.objects):
            raise ValueError('objects must be ObjectDesc instances')
        if len(self.objects) == 1:
            _check_one_object(self)
        elif len(self.objects) == 2:
            _check_two_objects(self)
        else:
            raise ValueError(f'a scene has one or two objects, got {len(self.objects)}')


def _check_one_object(description):
    if description.position not in POSITIONS or description.relation is not None:
        raise ValueError(f'one object needs a position in {POSITIONS} and no relation')


def _check_two_objects(description):
    if description.relation not in RELATIONS or description.position is not None:
        raise ValueError(f'two objects need a relation in {RELATIONS} and no position')
    first, second = description.objects
    if (first.shape, first.colour) == (second.shape, second.colour):
        raise ValueError('the two objects of a scene must differ in shape or colour')


def uses_held_out_pair(description):
    """True when any object of ``description`` is a (colour, shape) pair of HELD_OUT_PAIRS."""
    return any((obj.colour, obj.shape) in HELD_OUT_PAIRS for obj in description.objects)


@cache
def all_descriptions():
    """Every valid SceneDescription, one-object scenes first, as a tuple."""
    objects = [ObjectDesc(*attributes) for attributes in itertools.product(SHAPES, COLOURS, SIZES)]
    singles = [SceneDescription((obj,), position=pos) for obj in objects for pos in POSITIONS]
    pairs = [
        SceneDescription((first, second), relation=relation)
        for relation in RELATIONS
        for first, second in itertools.product(objects, objects)
        if (first.shape, first.colour) != (second.shape, second.colour)
    ]
    return tuple(singles + pairs)
