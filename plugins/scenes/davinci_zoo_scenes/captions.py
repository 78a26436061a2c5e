"""Caption text <-> SceneDescription, one caption per description.

One object: 'a small red circle in the top left'.
Two objects: 'a small red circle above a large blue square', 'a large green triangle left of
a small yellow circle' (upper or left object first).
"""

from functools import cache

from .vocabulary import all_descriptions


def _object_phrase(obj):
    return f'a {obj.size} {obj.colour} {obj.shape}'


def caption_of(description):
    """The canonical caption of ``description``: lowercase words, single spaces."""
    first = _object_phrase(description.objects[0])
    if description.position is not None:
        return f'{first} in the {description.position}'
    return f'{first} {description.relation} {_object_phrase(description.objects[1])}'


@cache
def _descriptions_by_caption():
    return {caption_of(description): description for description in all_descriptions()}


def _normalise(text):
    """Lowercase, WordPiece continuations ('cy ##an') joined, whitespace collapsed."""
    return ' '.join(text.lower().replace(' ##', '').split())


def parse_caption(text):
    """The SceneDescription that ``text`` states exactly, or None if it is no valid caption."""
    return _descriptions_by_caption().get(_normalise(text))
