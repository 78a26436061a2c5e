"""Map-style datasets over JSON-lines annotation files, one object per line (NLVR2, SNLI-VE).

A subclass turns each object into the pipeline's fields (:meth:`JsonLinesDataset.row_fields`);
rows that cannot be used are skipped and counted (:mod:`.bad_rows`), named by file and line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from torch.utils.data import Dataset

from .bad_rows import BadDataError, BadRow, BadRowTally, DataFileError
from .image_text import parse_json_object
from .streaming import open_text
from .transforms import build_pipeline, run_pipeline


def read_json_lines(path: str, doc: str = 'docs/tasks/') -> list[tuple[int, str]]:
    """``(line number, line)`` of every non-blank line of ``path`` (gzipped if ``.gz``),
    whatever its suffix: NLVR2's ``train.json`` is JSON lines too. ``doc`` is named when
    the file is missing."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'annotation file {path} does not exist; see {doc}')
    with open_text(path) as stream:
        return [(number, line) for number, line in enumerate(stream, 1) if line.strip()]


class JsonLinesDataset(Dataset):
    """Rows of JSON-lines files, each through :meth:`row_fields` and the ``pipeline``.

    Args:
        ann_file: one file or a list (read as one, in order).
        pipeline: transforms from the fields of :meth:`row_fields` to a packed item.
        data_root: the folder image paths start from.
        max_bad_fraction: the largest share of bad rows before BadDataError; None: never.
        min_rows: rows read before that share is judged.

    Item ``index``: the pipeline's output for row ``index`` plus ``bad_rows`` and
    ``seen_rows``; a bad row (not a JSON object, a missing or malformed field, an image that
    is missing or does not decode) is skipped for the next row and counted.
    """

    #: class names, by label id (``metainfo['classes']``).
    classes: tuple[str, ...] = ()
    #: the page that says where the files come from.
    doc: str = 'docs/tasks/'

    def __init__(
        self,
        ann_file: str | Sequence[str],
        pipeline: Sequence = (),
        data_root: str = '',
        max_bad_fraction: float | None = 0.01,
        min_rows: int = 1000,
    ) -> None:
        files = [ann_file] if isinstance(ann_file, str) else list(ann_file)
        self.rows = [(path, *row) for path in files for row in read_json_lines(path, self.doc)]
        if not self.rows:
            raise DataFileError(f'{ann_file} has no annotation rows')
        self.pipeline = build_pipeline(pipeline)
        self.data_root = data_root
        self.tally = BadRowTally(type(self).__name__, max_bad_fraction, min_rows)

    @property
    def metainfo(self) -> dict:
        """What mmengine hands the evaluator as ``dataset_meta``."""
        return dict(classes=self.classes)

    def __len__(self) -> int:
        return len(self.rows)

    def row_fields(self, row: dict, position: int) -> dict:
        """A parsed row -> the pipeline's input fields; raise BadRow for an unusable row."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.rows)):
            position = (index + offset) % len(self.rows)
            path, number, line = self.rows[position]
            try:
                fields = self.row_fields(parse_json_object(line), position)
                item = run_pipeline(self.pipeline, fields)
            except BadRow as error:
                self.tally.skip(path, f'{path} line {number}', str(error))
                continue
            return dict(item, **self.tally.accept())
        raise BadDataError(
            f'{type(self).__name__}: no usable row in {len(self.rows)} rows; the last one '
            f'{self.tally.last_reason}'
        )


def string_field(row: dict, key: str) -> str:
    """``row[key]`` as a non-empty string; BadRow otherwise."""
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRow(f'{key} {value!r:.60} is not a non-empty string')
    return value
