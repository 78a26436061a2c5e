"""Keep every reference caption of a row for scoring, before one is drawn for the model."""

from __future__ import annotations

from mmcv.transforms import BaseTransform

from ..registry import TRANSFORMS
from .bad_rows import BadRow


@TRANSFORMS.register_module()
class KeepCaptionReferences(BaseTransform):
    """Copy a caption field (a string or a list of strings) to ``out_key`` as a list.

    :class:`~.transforms.PreCaption` turns a list of captions into the one it draws; put this
    step before it in a test pipeline, and ``out_key`` in ``PackDaVinciInputs``'s
    ``algorithm_keys``, so that ``WritePaintMetric`` scores the written caption against all
    of them::

        dict(type='KeepCaptionReferences'),  # caption -> references (all of them, raw)
        dict(type='PreCaption', max_words=30),
        dict(type='TokenizeText', keys=['caption']),
        dict(type='PackDaVinciInputs', algorithm_keys=['references']),

    Texts are kept as written (the metric tokenises them). A row without a non-empty caption
    string raises :class:`~.bad_rows.BadRow` (skipped and counted).

    Args:
        key: the caption field.
        out_key: where the list goes.
    """

    def __init__(self, key: str = 'caption', out_key: str = 'references') -> None:
        self.key, self.out_key = key, out_key

    def transform(self, results: dict) -> dict:
        value = results.get(self.key)
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise BadRow(f'{self.key} is neither a string nor a list of strings: {value!r:.60}')
        texts = [text for text in texts if text.strip()]
        if not texts:
            raise BadRow(f'no non-empty {self.key}')
        results[self.out_key] = texts
        return results
