"""Image-caption pairs: annotation files with image paths, and the original's base64 jsonl.

Items are ``dict(images=[3, S, S] float in [0, 1], caption=str, ..., bad_rows=int,
seen_rows=int)``; captions are cleaned with :func:`~.captions.pre_caption`. Rows that cannot
be used are skipped and counted (:mod:`.bad_rows`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from collections.abc import Iterator, Sequence

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..registry import DATASETS
from .bad_rows import BadDataError, BadRow, BadRowTally
from .captions import choose_caption, pre_caption
from .image_folder import load_rgb
from .streaming import RowStream, open_text

_IMAGE_ERRORS = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    SyntaxError,
    Image.DecompressionBombError,
)


def decode_image(source, size: int) -> torch.Tensor:
    """A path or image bytes -> [3, size, size] float in [0, 1]; BadRow if it does not decode."""
    try:
        return load_rgb(io.BytesIO(source) if isinstance(source, bytes) else source, size)
    except FileNotFoundError:
        raise BadRow(f'image {source} does not exist') from None
    except _IMAGE_ERRORS as error:
        raise BadRow(f'image does not decode ({error})') from None


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


def clean_caption(value, max_words: int | None) -> str:
    """A caption field (string or list) -> one cleaned caption; BadRow if none is left."""
    try:
        caption = pre_caption(choose_caption(value), max_words)
    except ValueError as error:
        raise BadRow(str(error)) from None
    if not caption:
        raise BadRow('empty caption')
    return caption


def read_annotation_rows(path: str) -> list[tuple[str, int, object]]:
    """``(file, row number, raw row)`` of a JSON list (``.json``) or a jsonl file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'annotation file {path} does not exist; see docs/data.md')
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as stream:
            try:
                rows = json.load(stream)
            except json.JSONDecodeError as error:
                raise ValueError(f'{path} is not valid JSON ({error})') from None
        if not isinstance(rows, list):
            raise ValueError(f'{path} must hold a JSON list of {{image, caption}} objects')
        return [(path, number, row) for number, row in enumerate(rows)]
    if path.endswith(('.jsonl', '.jsonl.gz')):
        with open_text(path) as stream:
            return [(path, number, line) for number, line in enumerate(stream, 1) if line.strip()]
    raise ValueError(f'{path}: annotation files must end in .json (a list) or .jsonl')


@DATASETS.register_module()
class ImageTextAnnotations(Dataset):
    """Image paths and captions from json/jsonl annotation files (COCO, VG, CC3M converted).

    Args:
        ann_file: one file or a list; ``.json`` holds a list of objects, ``.jsonl`` one
            object per line. Each object has an image path and a caption (a string, or a
            list from which each access draws one with numpy's global RNG).
        data_root: directory relative image paths start from.
        image_size: side S of the centre-cropped, resized image.
        image_key, caption_key: the objects' keys.
        max_words: words kept by :func:`~.captions.pre_caption`.
        max_bad_fraction, min_rows: when the dataset stops with BadDataError.

    Item ``index`` = ``dict(images=[3, S, S] float in [0, 1], caption=str, index=int,
    bad_rows=int, seen_rows=int)``. A bad row (not JSON, a key missing, an empty caption,
    an image that is missing or does not decode) is skipped for the next row and counted.
    """

    def __init__(
        self,
        ann_file: str | list[str],
        data_root: str = '',
        image_size: int = 256,
        image_key: str = 'image',
        caption_key: str = 'caption',
        max_words: int | None = 30,
        max_bad_fraction: float | None = 0.01,
        min_rows: int = 1000,
    ) -> None:
        files = [ann_file] if isinstance(ann_file, str) else list(ann_file)
        self.rows = [row for path in files for row in read_annotation_rows(path)]
        if not self.rows:
            raise ValueError(f'{ann_file} has no annotation rows')
        self.data_root, self.image_size = data_root, image_size
        self.image_key, self.caption_key, self.max_words = image_key, caption_key, max_words
        self.tally = BadRowTally(type(self).__name__, max_bad_fraction, min_rows)

    def __len__(self) -> int:
        return len(self.rows)

    def load_pair(self, raw) -> tuple[torch.Tensor, str]:
        row = parse_json_object(raw)
        path = first_present(row, [self.image_key], 'image path')
        if not isinstance(path, str):
            raise BadRow(f'image path {path!r:.60} is not a string')
        caption = clean_caption(first_present(row, [self.caption_key], 'caption'), self.max_words)
        return decode_image(os.path.join(self.data_root, path), self.image_size), caption

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.rows)):
            position = (index + offset) % len(self.rows)
            path, number, raw = self.rows[position]
            try:
                images, caption = self.load_pair(raw)
            except BadRow as error:
                self.tally.skip(path, f'{path} row {number}', str(error))
                continue
            return dict(images=images, caption=caption, index=position, **self.tally.accept())
        raise BadDataError(f'{type(self).__name__}: no usable row in {len(self.rows)} rows')


@DATASETS.register_module()
class Base64JsonlPairs(RowStream):
    """The original's pretraining format: jsonl lines with a base64 image and a caption.

    Args:
        files: jsonl files (``.gz`` too) or directories of them; see :class:`.RowStream`
            for the split over ranks and workers, passes and the bad-row limit.
        image_size: side S of the centre-cropped, resized image.
        image_keys: keys tried in turn for the base64 image.
        caption_keys: keys tried in turn for the caption (a string or a list: one is drawn).
        max_words: words kept by :func:`~.captions.pre_caption`.
        **stream_args: seed, shuffle, infinite, rank, world_size, max_bad_fraction,
            min_rows, length.

    Items: ``dict(images=[3, S, S] float in [0, 1], caption=str, key='file:line',
    bad_rows=int, seen_rows=int)``.
    """

    suffixes = ('.jsonl', '.json', '.jsonl.gz', '.json.gz')

    def __init__(
        self,
        files,
        image_size: int = 256,
        image_keys: Sequence[str] = ('b64_resized_binary', 'binary'),
        caption_keys: Sequence[str] = ('desc', 'TEXT'),
        max_words: int | None = 30,
        **stream_args,
    ) -> None:
        super().__init__(files, **stream_args)
        self.image_size = image_size
        self.image_keys = [image_keys] if isinstance(image_keys, str) else list(image_keys)
        self.caption_keys = [caption_keys] if isinstance(caption_keys, str) else list(caption_keys)
        self.max_words = max_words

    def read_rows(self, path: str) -> Iterator[tuple[str, object]]:
        number = 0
        try:
            with open_text(path) as stream:
                for number, line in enumerate(stream, 1):
                    if line.strip():
                        yield f'{path}:{number}', line
        except (OSError, EOFError, UnicodeDecodeError) as error:
            yield f'{path}:{number + 1}', BadRow(f'file unreadable from here on ({error})')

    def decode(self, raw: str) -> dict:
        row = parse_json_object(raw)
        caption = clean_caption(first_present(row, self.caption_keys, 'caption'), self.max_words)
        encoded = first_present(row, self.image_keys, 'image')
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, TypeError, ValueError) as error:
            raise BadRow(f'image is not base64 ({error})') from None
        return dict(images=decode_image(data, self.image_size), caption=caption)
