"""Image-caption pairs: annotation files with image paths, and the original's base64 jsonl.

Each row becomes ``dict(img_path=...)`` or ``dict(img_bytes=...)`` plus ``caption`` (the raw
field: a string or a list) and runs through the dataset's ``pipeline`` (see
:mod:`.transforms`). Rows that cannot be used are skipped and counted (:mod:`.bad_rows`): a
row that is not JSON or lacks a key, a transform that raises :class:`~.bad_rows.BadRow`
(an empty caption, bytes that do not decode), an image file that is missing or does not
decode, and a sample the pipeline drops (returns None, e.g. ``LoadImageFromFile`` with
``ignore_empty=True``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator, Sequence

from torch.utils.data import Dataset

from ..registry import DATASETS
from .bad_rows import BadDataError, BadRow, BadRowTally, DataFileError
from .streaming import RowStream, open_text
from .transforms import build_pipeline, run_pipeline


def parse_json_object(raw) -> dict:
    """A row as a dict: json text is parsed; BadRow for anything else."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise BadRow(f'not JSON ({error})') from None
    if not isinstance(raw, dict):
        raise BadRow(f'not a JSON object: {raw!r:.60}')
    return raw


def first_present(row: dict, keys: Sequence[str], what: str):
    """The value of the first of ``keys`` that ``row`` has; BadRow when it has none."""
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    raise BadRow(f'no {what} under {" or ".join(keys)}')


def read_annotation_rows(path: str) -> list[tuple[str, int, object]]:
    """``(file, row number, raw row)`` of a JSON list (``.json``) or a jsonl file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'annotation file {path} does not exist; see docs/data.md')
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as stream:
            try:
                rows = json.load(stream)
            except json.JSONDecodeError as error:
                raise DataFileError(f'{path} is not valid JSON ({error})') from None
        if not isinstance(rows, list):
            raise DataFileError(f'{path} must hold a JSON list of {{image, caption}} objects')
        return [(path, number, row) for number, row in enumerate(rows)]
    if path.endswith(('.jsonl', '.jsonl.gz')):
        with open_text(path) as stream:
            return [(path, number, line) for number, line in enumerate(stream, 1) if line.strip()]
    raise DataFileError(f'{path}: annotation files must end in .json (a list) or .jsonl')


@DATASETS.register_module()
class ImageTextAnnotations(Dataset):
    """Image paths and captions from json/jsonl annotation files (COCO, VG, CC3M converted).

    Args:
        ann_file: one file or a list (read as one, in order); ``.json`` holds a list of
            objects, ``.jsonl`` (or ``.jsonl.gz``) one object per line, e.g.
            ``{"image": "images/0001.jpg", "caption": "a red ball on the grass"}``. A caption
            is a string or a list of strings (:class:`~.transforms.PreCaption` draws one at
            each access; :class:`~.caption_references.KeepCaptionReferences` keeps them all).
        pipeline: transforms from ``dict(img_path=data_root/path, caption=raw caption,
            sample_idx=row index)`` to a packed item (see :mod:`.transforms`).
        data_root: directory relative image paths start from ('' : the working directory;
            absolute paths in the file are used as they are).
        image_key, caption_key: the objects' keys (default ``image``, ``caption``).
        label_key: the key of an integer class label, given to the pipeline as ``gt_label``
            (for classification heads); None: no label.
        max_bad_fraction: the largest share of bad rows (default 0.01) before the dataset
            stops with BadDataError; None: never.
        min_rows: rows read before that share is judged (default 1000).

    Item ``index``: the pipeline's output for row ``index`` plus ``bad_rows`` and
    ``seen_rows``. A bad row is skipped for the next row and counted.
    """

    def __init__(
        self,
        ann_file: str | list[str],
        pipeline: Sequence = (),
        data_root: str = '',
        image_key: str = 'image',
        caption_key: str = 'caption',
        label_key: str | None = None,
        max_bad_fraction: float | None = 0.01,
        min_rows: int = 1000,
    ) -> None:
        files = [ann_file] if isinstance(ann_file, str) else list(ann_file)
        self.rows = [row for path in files for row in read_annotation_rows(path)]
        if not self.rows:
            raise DataFileError(f'{ann_file} has no annotation rows')
        self.pipeline = build_pipeline(pipeline)
        self.data_root, self.image_key, self.caption_key = data_root, image_key, caption_key
        self.label_key = label_key
        self.tally = BadRowTally(type(self).__name__, max_bad_fraction, min_rows)

    def __len__(self) -> int:
        return len(self.rows)

    def row_fields(self, raw, position: int) -> dict:
        row = parse_json_object(raw)
        path = first_present(row, [self.image_key], 'image path')
        if not isinstance(path, str):
            raise BadRow(f'image path {path!r:.60} is not a string')
        fields = dict(
            img_path=os.path.join(self.data_root, path),
            caption=first_present(row, [self.caption_key], 'caption'),
            sample_idx=position,
        )
        if self.label_key is not None:
            label = first_present(row, [self.label_key], 'label')
            if not isinstance(label, int) or isinstance(label, bool):
                raise BadRow(f'label {label!r:.30} is not an integer')
            fields['gt_label'] = label
        return fields

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.rows)):
            position = (index + offset) % len(self.rows)
            path, number, raw = self.rows[position]
            try:
                item = run_pipeline(self.pipeline, self.row_fields(raw, position))
            except BadRow as error:
                self.tally.skip(path, f'{path} row {number}', str(error))
                continue
            return dict(item, **self.tally.accept())
        raise BadDataError(f'{type(self).__name__}: no usable row in {len(self.rows)} rows')


@DATASETS.register_module()
class Base64JsonlPairs(RowStream):
    """The original's pretraining format: jsonl lines with a base64 image and a caption.

    Args:
        files: jsonl files (``.gz`` too) or directories of them; see :class:`.RowStream`
            for the pipeline, the split over ranks and workers, passes and the bad-row limit.
        image_keys: keys tried in turn for the base64 image.
        caption_keys: keys tried in turn for the caption (a string or a list).
        **stream_args: pipeline, seed, shuffle, infinite, rank, world_size,
            max_bad_fraction, min_rows, length.

    The pipeline starts from ``dict(img_bytes=decoded base64, caption=raw caption,
    key='file:line')``: begin it with :class:`~.transforms.LoadImageFromBytes`.
    """

    suffixes = ('.jsonl', '.json', '.jsonl.gz', '.json.gz')

    def __init__(
        self,
        files,
        image_keys: Sequence[str] = ('b64_resized_binary', 'binary'),
        caption_keys: Sequence[str] = ('desc', 'TEXT'),
        **stream_args,
    ) -> None:
        super().__init__(files, **stream_args)
        self.image_keys = [image_keys] if isinstance(image_keys, str) else list(image_keys)
        self.caption_keys = [caption_keys] if isinstance(caption_keys, str) else list(caption_keys)

    def read_rows(self, path: str) -> Iterator[tuple[str, object]]:
        number = 0
        try:
            with open_text(path) as stream:
                for number, line in enumerate(stream, 1):
                    if line.strip():
                        yield f'{path}:{number}', line
        except (OSError, EOFError, UnicodeDecodeError) as error:
            yield f'{path}:{number + 1}', BadRow(f'file unreadable from here on ({error})')

    def row_fields(self, raw: str) -> dict:
        row = parse_json_object(raw)
        caption = first_present(row, self.caption_keys, 'caption')
        encoded = first_present(row, self.image_keys, 'image')
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, TypeError, ValueError) as error:
            raise BadRow(f'image is not base64 ({error})') from None
        return dict(img_bytes=data, caption=caption)
