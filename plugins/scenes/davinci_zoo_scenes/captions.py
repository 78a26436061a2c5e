"""Caption text <-> SceneDescription: the canonical caption and its paraphrases.

One object: 'a small red circle in the top left'.
Two objects: 'a small red circle above a large blue square', 'a large green triangle left of
a small yellow circle' (upper or left object first).

Every description also has four paraphrases (the captioning task's extra references), e.g.
'there is a small red circle in the top left' or 'a large blue square below a small red
circle'; ``parse_paraphrase`` reads the canonical caption and every paraphrase back.
"""

import re
from functools import cache

from .vocabulary import all_descriptions

INVERSE = {'above': 'below', 'left of': 'to the right of'}
SPOKEN = {'above': 'above', 'left of': 'to the left of'}


def _object_phrase(obj):
    return f'a {obj.size} {obj.colour} {obj.shape}'


def caption_of(description):
    """The canonical caption of ``description``: lowercase words, single spaces."""
    first = _object_phrase(description.objects[0])
    if description.position is not None:
        return f'{first} in the {description.position}'
    return f'{first} {description.relation} {_object_phrase(description.objects[1])}'


def paraphrases(description):
    """Five captions of ``description``, the canonical one first (lowercase, no full stop)."""
    if description.position is not None:
        thing, where = _object_phrase(description.objects[0]), description.position
        return [
            caption_of(description),
            f'there is {thing} in the {where}',
            f'the {where} corner shows {thing}',
            f'{thing} on a black background, in the {where}',
            f'in the {where} there is {thing}',
        ]
    first, second = (_object_phrase(obj) for obj in description.objects)
    relation = description.relation
    return [
        caption_of(description),
        f'there is {first} {SPOKEN[relation]} {second}',
        f'{second} {INVERSE[relation]} {first}',
        f'two shapes: {first} {SPOKEN[relation]} {second}',
        f'{first} sits {SPOKEN[relation]} {second}',
    ]


@cache
def _descriptions_by_caption():
    return {caption_of(description): description for description in all_descriptions()}


@cache
def _descriptions_by_paraphrase():
    return {
        _words(text): description
        for description in all_descriptions()
        for text in paraphrases(description)
    }


def _normalise(text):
    """Lowercase, WordPiece continuations ('cy ##an') joined, whitespace collapsed."""
    return ' '.join(text.lower().replace(' ##', '').split())


def _words(text):
    """The words of ``text`` alone: ``_normalise`` without punctuation (',', ':', '.')."""
    return ' '.join(re.findall(r'[a-z0-9]+', _normalise(text)))


def parse_caption(text):
    """The SceneDescription that ``text`` states exactly, or None if it is no valid caption."""
    return _descriptions_by_caption().get(_normalise(text))


def parse_paraphrase(text):
    """The SceneDescription that ``text`` states in any of its five phrasings, or None.

    Case and punctuation do not count ('The top left corner shows a small red circle.' reads
    as 'a small red circle in the top left').
    """
    return _descriptions_by_paraphrase().get(_words(text))
