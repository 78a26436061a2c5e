"""SNLI-VE as published: ``snli_ve_{train,dev,test}.jsonl`` over the Flickr30k images.

A row (SNLI's other fields, e.g. ``sentence1`` -- the caption premise, not used --,
``pairID``, ``annotator_labels``, are ignored)::

    {"Flikr30kID": "3416050480.jpg", "sentence2": "A dog runs on the grass.",
     "gold_label": "entailment", ...}

``Flikr30kID`` (spelled so in the files) is the image's file name in the Flickr30k folder.
"""

from __future__ import annotations

import os

from ..registry import DATASETS
from .bad_rows import BadRow
from .json_lines import JsonLinesDataset, string_field


@DATASETS.register_module()
class SNLIVE(JsonLinesDataset):
    """SNLI-VE: does the image entail the hypothesis, contradict it, or neither?

    Args:
        ann_file: ``snli_ve_train.jsonl``, ``snli_ve_dev.jsonl`` or ``snli_ve_test.jsonl``.
        data_root: the Flickr30k image folder (``flickr30k_images``).
        pipeline, max_bad_fraction, min_rows: see :class:`~.json_lines.JsonLinesDataset`.

    The pipeline starts from ``dict(img_path, text=hypothesis, gt_label, key=pairID or the
    line's position, sample_idx)``. Label ids are the original implementation's:
    contradiction 0, neutral 1, entailment 2 (:attr:`classes`); any other ``gold_label``
    (SNLI's ``-``: no majority) is a bad row.
    """

    classes = ('contradiction', 'neutral', 'entailment')
    doc = 'docs/tasks/snli_ve.md'

    def row_fields(self, row: dict, position: int) -> dict:
        image = string_field(row, 'Flikr30kID')
        gold = row.get('gold_label')
        if gold not in self.classes:
            raise BadRow(f'gold_label {gold!r:.30} is not one of {", ".join(self.classes)}')
        return dict(
            img_path=os.path.join(self.data_root, image),
            text=string_field(row, 'sentence2'),
            gt_label=self.classes.index(gold),
            key=str(row.get('pairID', position)),
            sample_idx=position,
        )
