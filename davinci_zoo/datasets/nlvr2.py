"""NLVR2 as published: JSON-lines ``train.json`` / ``dev.json`` / ``test1.json`` and PNG pairs.

A row (other fields, e.g. ``left_url``, ``writer``, ``validation``, are ignored)::

    {"identifier": "train-10171-0-0", "sentence": "An image shows one leather pencil case.",
     "label": "False", "directory": 46, ...}

Its images are ``{stem}-img0.png`` (left) and ``{stem}-img1.png`` (right), ``stem`` being the
identifier without its last ``-N`` (the sentence number), in ``data_root/{directory}/`` for
rows with a ``directory`` (train) and in ``data_root/`` for the others (dev, test1).
"""

from __future__ import annotations

import os
import re

from ..registry import DATASETS
from .bad_rows import BadRow
from .json_lines import JsonLinesDataset, string_field

#: ``split-set_id-pair_id-sentence_id``
IDENTIFIER = re.compile(r'^([A-Za-z0-9]+-\d+-\d+)-\d+$')
LABELS = {'False': 0, 'True': 1}


def nlvr2_label(value) -> int:
    """``"True"`` / ``"False"`` (the files' strings; JSON booleans too) -> 1 / 0."""
    if isinstance(value, bool):
        return int(value)
    if value not in LABELS:
        raise BadRow(f'label {value!r:.30} is not "True" or "False"')
    return LABELS[value]


def nlvr2_image_paths(row: dict, data_root: str) -> list[str]:
    """The left and right image files of a row."""
    identifier = string_field(row, 'identifier')
    match = IDENTIFIER.match(identifier)
    if match is None:
        raise BadRow(f'identifier {identifier!r:.60} is not split-set-pair-sentence')
    folder = data_root
    directory = row.get('directory')
    if directory is not None:
        if isinstance(directory, bool) or not re.fullmatch(r'\d+', str(directory)):
            raise BadRow(f'directory {directory!r:.30} is not a folder number')
        folder = os.path.join(data_root, str(directory))
    return [os.path.join(folder, f'{match.group(1)}-img{side}.png') for side in (0, 1)]


@DATASETS.register_module()
class NLVR2(JsonLinesDataset):
    """NLVR2: is the sentence true of the image pair?

    Args:
        ann_file: ``train.json``, ``dev.json`` or ``test1.json`` (or a list of them).
        data_root: the split's image folder: ``images/train`` (numbered sub-folders named by
            the rows' ``directory``), ``dev`` or ``test1``.
        pipeline, max_bad_fraction, min_rows: see :class:`~.json_lines.JsonLinesDataset`.

    The pipeline starts from ``dict(img_path=[left, right], text=sentence, gt_label=0|1,
    key=identifier, sample_idx)``: load and resize both images with mmcv's
    ``TransformBroadcaster`` (docs/tasks/nlvr2.md); ``PackDaVinciInputs`` packs the pair as
    ``images`` [2, 3, H, W]. Label 1 is "True".
    """

    classes = ('False', 'True')
    doc = 'docs/tasks/nlvr2.md'

    def row_fields(self, row: dict, position: int) -> dict:
        return dict(
            img_path=nlvr2_image_paths(row, self.data_root),
            text=string_field(row, 'sentence'),
            gt_label=nlvr2_label(row.get('label')),
            key=row['identifier'],
            sample_idx=position,
        )
