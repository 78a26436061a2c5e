"""GLUE as distributed: the TSV files of the official ``glue_data`` folders (docs/tasks/glue.md).

One table, :data:`TASKS`, says for each task which header columns hold the text(s) and the
label and what the labels are; :func:`read_glue_file` reads one file with it and
:class:`GLUEDataset` serves the rows. The layouts (tab-separated UTF-8, no quoting, a header
line unless said otherwise)::

    CoLA   train, dev: no header; source, label, original label, sentence   test: index, sentence
    SST-2  sentence, label                                                  test: index, sentence
    MRPC   Quality, #1 ID, #2 ID, #1 String, #2 String        test: index, #1 ID, ..., #2 String
    STS-B  index, genre, filename, year, old_index, source1, source2, sentence1, sentence2, score
    QQP    id, qid1, qid2, question1, question2, is_duplicate    test: id, question1, question2
    MNLI   index, promptID, pairID, genre, four parses, sentence1, sentence2, label1
           [, label2 .. label5], gold_label   (train, dev_matched, dev_mismatched)
    QNLI   index, question, sentence, label
    RTE    index, sentence1, sentence2, label
    WNLI   index, sentence1, sentence2, label
    AX     diagnostic/diagnostic.tsv: index, sentence1, sentence2 (MNLI's diagnostic set)

Test files (``test*.tsv``, MNLI's ``test_matched.tsv`` / ``test_mismatched.tsv`` and
``diagnostic.tsv``) have no label column (STS-B's and MNLI's end before it); their first column
is the index the GLUE server's prediction files name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from mmengine.logging import print_log
from torch.utils.data import Dataset

from ..models.parts import ComponentArgumentError
from ..registry import DATASETS
from .bad_rows import BadRow, BadRowTally, DataFileError
from .transforms import build_pipeline

DOC = 'docs/tasks/glue.md'
_SPLITS = {'train': ('train',), 'dev': ('dev',), 'test': ('test',)}


@dataclass(frozen=True)
class GLUETask:
    """How one GLUE task's files are laid out.

    Attributes:
        name: GLUE's spelling (the data folder's name and the server file's stem).
        texts: header names of the text column(s): one for single sentences, two for pairs.
        label: header name of the label column.
        classes: the label strings of the files, by label id (also what the server wants);
            empty for a regression score (STS-B: a float in [0, 5]).
        headerless: column names of labelled files that have no header line (CoLA).
        splits: split name -> file stems under the task's folder.
        subsets: file stem -> subset, scored and written apart (MNLI's ``m`` / ``mm``).
        server_files: subset -> the stem of the GLUE server's prediction file.
    """

    name: str
    texts: tuple[str, ...]
    label: str
    classes: tuple[str, ...] = ()
    headerless: tuple[str, ...] = ()
    splits: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(_SPLITS))
    subsets: Mapping[str, str] = field(default_factory=dict)
    server_files: Mapping[str, str] = field(default_factory=dict)

    @property
    def regression(self) -> bool:
        return not self.classes

    def server_file(self, subset: str = '') -> str:
        """The server's file name for ``subset`` (``'RTE.tsv'``, ``'MNLI-mm.tsv'``)."""
        stem = self.server_files.get(subset, self.name if not subset else None)
        if stem is None:
            raise ComponentArgumentError(f'GLUE {self.name} has no subset {subset!r}')
        return f'{stem}.tsv'


_BINARY = ('0', '1')
_NLI = ('entailment', 'not_entailment')
_MNLI_SPLITS = dict(
    _SPLITS,
    dev=('dev_matched', 'dev_mismatched'),
    test=('test_matched', 'test_mismatched'),
    dev_matched=('dev_matched',),
    dev_mismatched=('dev_mismatched',),
    test_matched=('test_matched',),
    test_mismatched=('test_mismatched',),
    diagnostic=(os.path.join('..', 'diagnostic', 'diagnostic'),),
)
_MNLI_SUBSETS = dict(
    dev_matched='m',
    test_matched='m',
    dev_mismatched='mm',
    test_mismatched='mm',
    diagnostic='ax',
)

#: The tasks, keyed by their lower-case name without punctuation (``sst2``, ``stsb``).
TASKS: dict[str, GLUETask] = {
    'cola': GLUETask(
        'CoLA',
        ('sentence',),
        'label',
        _BINARY,  # 0 unacceptable, 1 acceptable
        headerless=('source', 'label', 'original_label', 'sentence'),
    ),
    'sst2': GLUETask('SST-2', ('sentence',), 'label', _BINARY),  # 0 negative, 1 positive
    # 0 not equivalent, 1 equivalent
    'mrpc': GLUETask('MRPC', ('#1 String', '#2 String'), 'Quality', _BINARY),
    'stsb': GLUETask('STS-B', ('sentence1', 'sentence2'), 'score'),
    # 0 not duplicate, 1 duplicate
    'qqp': GLUETask('QQP', ('question1', 'question2'), 'is_duplicate', _BINARY),
    'mnli': GLUETask(
        'MNLI',
        ('sentence1', 'sentence2'),
        'gold_label',
        ('entailment', 'neutral', 'contradiction'),
        splits=_MNLI_SPLITS,
        subsets=_MNLI_SUBSETS,
        server_files=dict(m='MNLI-m', mm='MNLI-mm', ax='AX'),
    ),
    'qnli': GLUETask('QNLI', ('question', 'sentence'), 'label', _NLI),
    'rte': GLUETask('RTE', ('sentence1', 'sentence2'), 'label', _NLI),
    'wnli': GLUETask('WNLI', ('sentence1', 'sentence2'), 'label', _BINARY),  # 1 entailment
}


def glue_task(name: str | GLUETask) -> GLUETask:
    """A task by any common spelling (``'SST-2'``, ``'sst2'``, ``'STS-B'``, ``'stsb'``)."""
    if isinstance(name, GLUETask):
        return name
    key = str(name).lower().replace('-', '').replace('_', '')
    if key not in TASKS:
        known = ', '.join(task.name for task in TASKS.values())
        raise ComponentArgumentError(f'unknown GLUE task {name!r}; one of {known}')
    return TASKS[key]


def is_test_file(path: str) -> bool:
    """GLUE's unlabelled files: ``test*.tsv`` and ``diagnostic.tsv``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem.startswith('test') or stem == 'diagnostic'


class GLUERow(NamedTuple):
    """One usable row of a GLUE file.

    Attributes:
        texts: the text, or the two texts of a pair.
        target: the label id, the regression score, or None (test files).
        index: the row's index for the server's files (a test file's first column; else
            the ``index``/``id`` column, or the row's position among the file's rows).
        subset: ``''``, or MNLI's ``'m'``, ``'mm'``, ``'ax'``.
        file, line: where it is (1-based line).
        bad_rows: bad rows skipped just before it (and, for a file's last row, after it).
    """

    texts: tuple[str, ...]
    target: int | float | None
    index: str
    subset: str
    file: str
    line: int
    bad_rows: int = 0


def read_glue_file(path: str, task: str | GLUETask, tally: BadRowTally | None = None):
    """The usable rows of one GLUE file (a list of :class:`GLUERow`).

    A row with the wrong number of columns, a label that is not one of the task's, a score
    that is not a number in [0, 5], an empty test index, or bytes that are not UTF-8 is
    skipped, counted in ``tally`` and logged with its file and line. A file whose header
    lacks the task's columns is a :class:`~.bad_rows.DataFileError` naming the file and the
    columns.
    """
    task = glue_task(task)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'GLUE {task.name} file {path} does not exist; see {DOC}')
    tally = tally if tally is not None else BadRowTally(f'GLUE {task.name}', None)
    labelled = not is_test_file(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    with open(path, 'rb') as stream:
        lines = stream.read().split(b'\n')
    if task.headerless and labelled:
        names, first = task.headerless, 0
    else:
        try:
            header = lines[0].decode('utf-8-sig')  # without a byte-order mark, if any
            names, first = tuple(header.rstrip('\r').split('\t')), 1
        except UnicodeDecodeError:
            raise DataFileError(f'{path}: the header line is not UTF-8 text') from None
    needed = task.texts + ((task.label,) if labelled else ())
    missing = [name for name in needed if name not in names]
    if missing:
        kind = 'labelled' if labelled else 'test'
        raise DataFileError(
            f'{path}: the header {" | ".join(names)!r:.200} has no column '
            f'{", ".join(repr(m) for m in missing)}, so it is not a {kind} file of GLUE '
            f'{task.name} (layouts in {DOC})'
        )
    text_columns = [names.index(name) for name in task.texts]
    label_column = names.index(task.label) if labelled else None
    index_column = 0 if not labelled else _index_column(names)
    subset = task.subsets.get(stem, '')
    rows: list[GLUERow] = []
    pending = position = 0
    for number, raw in enumerate(lines[first:], first + 1):
        if not raw.strip():
            continue
        position += 1
        try:
            fields = _split(raw, len(names))
            target = None if label_column is None else _target(task, fields[label_column])
            index = str(position - 1) if index_column is None else fields[index_column]
            if not index.strip():
                raise BadRow('empty index')
        except BadRow as error:
            tally.skip(path, f'{path} line {number}', str(error))
            pending += 1
            continue
        tally.accept()
        texts = tuple(fields[column] for column in text_columns)
        rows.append(GLUERow(texts, target, index.strip(), subset, path, number, pending))
        pending = 0
    if pending and rows:
        rows[-1] = rows[-1]._replace(bad_rows=rows[-1].bad_rows + pending)
    return rows


def _index_column(names: Sequence[str]) -> int | None:
    for name in ('index', 'id'):
        if name in names:
            return list(names).index(name)
    return None


def _split(raw: bytes, columns: int) -> list[str]:
    try:
        line = raw.decode('utf-8').rstrip('\r')
    except UnicodeDecodeError as error:
        raise BadRow(f'not UTF-8 text ({error.reason} at byte {error.start})') from None
    fields = line.split('\t')
    if len(fields) != columns:
        raise BadRow(f'{len(fields)} tab-separated columns, expected {columns}')
    return fields


def _target(task: GLUETask, value: str) -> int | float:
    value = value.strip()
    if task.regression:
        try:
            score = float(value)
        except ValueError:
            raise BadRow(f'{task.label} {value!r:.30} is not a number') from None
        if not (math.isfinite(score) and 0.0 <= score <= 5.0):
            raise BadRow(f'{task.label} {value!r:.30} is not in [0, 5]')
        return score
    if value not in task.classes:
        raise BadRow(f'{task.label} {value!r:.30} is not one of {", ".join(task.classes)}')
    return task.classes.index(value)


@DATASETS.register_module()
class GLUEDataset(Dataset):
    """A GLUE task's split, read from the distribution's TSV files.

    Args:
        task: the task (``'CoLA'``, ``'SST-2'``, ``'MRPC'``, ``'STS-B'``, ``'QQP'``,
            ``'MNLI'``, ``'QNLI'``, ``'RTE'``, ``'WNLI'``; any case, with or without ``-``).
        data_root: the task's folder (``data/glue/RTE``).
        split: ``'train'``, ``'dev'`` or ``'test'`` (``<split>.tsv``); for MNLI ``'dev'``
            and ``'test'`` read the matched and mismatched files together (scored apart),
            ``'dev_matched'`` etc. one of them, and ``'diagnostic'`` the diagnostic set AX
            (``<data_root>/../diagnostic/diagnostic.tsv``).
        ann_file: files to read instead of ``split``'s (one path or a list).
        pipeline: transforms from the row's fields to a packed item.
        max_bad_fraction, min_rows: the share of bad rows tolerated once ``min_rows`` were
            read (:class:`~.bad_rows.BadRowTally`); None never stops.

    The pipeline starts from ``dict(text, text_pair (pair tasks), gt_label (label id) or
    gt_value (STS-B's float score; neither in test files), glue_index, glue_subset,
    sample_idx)``. Items also carry ``bad_rows`` / ``seen_rows``: the rows skipped at load
    next to the item's row, so BadRowsHook's totals count them once per epoch.
    """

    def __init__(
        self,
        task: str,
        data_root: str = '',
        split: str = 'train',
        ann_file: str | Sequence[str] | None = None,
        pipeline: Sequence = (),
        max_bad_fraction: float | None = 0.01,
        min_rows: int = 1000,
    ) -> None:
        self.task = glue_task(task)
        self.files = self._files(data_root, split, ann_file)
        self.tally = BadRowTally(f'GLUE {self.task.name}', max_bad_fraction, min_rows)
        self.rows: list[GLUERow] = []
        for path in self.files:
            rows = read_glue_file(path, self.task, self.tally)
            skipped = sum(row.bad_rows for row in rows)
            print_log(
                f'GLUE {self.task.name}: {len(rows)} rows of {path}, {skipped} bad rows skipped',
                logger='current',
            )
            self.rows += rows
        if not self.rows:
            raise DataFileError(
                f'GLUE {self.task.name}: no usable row in {", ".join(self.files)}; the last '
                f'bad one {self.tally.last_reason or "(the files are empty)"}'
            )
        self.pipeline = build_pipeline(pipeline)

    def _files(self, data_root: str, split: str, ann_file) -> list[str]:
        if ann_file is not None:
            return [ann_file] if isinstance(ann_file, str) else list(ann_file)
        stems = self.task.splits.get(split)
        if stems is None:
            raise ComponentArgumentError(
                f'GLUE {self.task.name} has no split {split!r}; one of '
                f'{", ".join(self.task.splits)} (or give ann_file=)'
            )
        return [os.path.normpath(os.path.join(data_root, f'{stem}.tsv')) for stem in stems]

    @property
    def metainfo(self) -> dict:
        """What mmengine hands the evaluator as ``dataset_meta``."""
        return dict(task=self.task.name, classes=self.task.classes)

    def __len__(self) -> int:
        return len(self.rows)

    def fields(self, index: int) -> dict:
        """Row ``index`` as the pipeline's input fields."""
        row = self.rows[index]
        fields = dict(
            text=row.texts[0], glue_index=row.index, glue_subset=row.subset, sample_idx=index
        )
        if len(row.texts) > 1:
            fields['text_pair'] = row.texts[1]
        if row.target is not None:
            fields['gt_value' if self.task.regression else 'gt_label'] = row.target
        return fields

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        try:
            item = self.pipeline(self.fields(index))
        except BadRow as error:  # the rows were checked at load: a pipeline problem
            raise ValueError(f'{row.file} line {row.line}: {error}') from None
        return dict(item, bad_rows=row.bad_rows, seen_rows=row.bad_rows + 1)


__all__ = [
    'TASKS',
    'GLUEDataset',
    'GLUERow',
    'GLUETask',
    'glue_task',
    'is_test_file',
    'read_glue_file',
]
