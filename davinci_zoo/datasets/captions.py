"""Caption cleaning as the original did it, and picking one caption from a list."""

from __future__ import annotations

import re

import numpy as np

_DELETED = re.compile(r'[,.\'!?"()*#:;~]')
_SPACES = re.compile(r'\s+')


def pre_caption(text: str, max_words: int | None = 30) -> str:
    """Lowercase, delete ``,.'!?"()*#:;~``, turn ``-`` and ``/`` into spaces, collapse
    whitespace to single spaces and keep the first ``max_words`` words (all when None).

    >>> pre_caption('A  man-eating Shark, (probably)!', 3)
    'a man eating'
    """
    text = _DELETED.sub('', text.lower()).replace('-', ' ').replace('/', ' ')
    words = _SPACES.sub(' ', text).strip().split(' ')
    if max_words is not None:
        words = words[:max_words]
    return ' '.join(words)


def choose_caption(value) -> str:
    """A caption field as one string: a list gives one element drawn with numpy's global RNG.

    Raises ValueError for anything that is neither a string nor a non-empty list of strings.
    """
    if isinstance(value, list):
        if not value:
            raise ValueError('the caption list is empty')
        value = value[np.random.randint(len(value))]
    if not isinstance(value, str):
        raise ValueError(f'a caption must be a string or a list of strings, got {value!r:.60}')
    return value
