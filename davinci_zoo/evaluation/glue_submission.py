"""Complete and check a GLUE server submission folder (tools/glue_submission.py).

The server wants eleven files: one per task's test set (``CoLA.tsv`` ... ``RTE.tsv``, MNLI's
``MNLI-m.tsv`` and ``MNLI-mm.tsv``), ``WNLI.tsv`` and ``AX.tsv`` (MNLI's diagnostic set).
``GLUEMetric(format_only=True)`` writes the task files; :func:`write_wnli` writes WNLI's
majority-class file; :func:`check_submission` compares every file with the test set it answers.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import NamedTuple

from ..datasets.glue import GLUETask, glue_task, read_glue_file
from .glue import SERVER_HEADER, write_server_file


class ServerFile(NamedTuple):
    """One file the server wants: its task, subset and the test file it answers."""

    task: GLUETask
    subset: str
    test_file: str  # relative to the glue_data root

    @property
    def name(self) -> str:
        return self.task.server_file(self.subset)


SERVER_FILES = tuple(
    ServerFile(glue_task(task), subset, test_file)
    for task, subset, test_file in (
        ('CoLA', '', 'CoLA/test.tsv'),
        ('SST-2', '', 'SST-2/test.tsv'),
        ('MRPC', '', 'MRPC/test.tsv'),
        ('STS-B', '', 'STS-B/test.tsv'),
        ('QQP', '', 'QQP/test.tsv'),
        ('MNLI', 'm', 'MNLI/test_matched.tsv'),
        ('MNLI', 'mm', 'MNLI/test_mismatched.tsv'),
        ('QNLI', '', 'QNLI/test.tsv'),
        ('RTE', '', 'RTE/test.tsv'),
        ('WNLI', '', 'WNLI/test.tsv'),
        ('MNLI', 'ax', 'diagnostic/diagnostic.tsv'),
    )
)


def majority_label(glue_root: str) -> int:
    """The most common label id of WNLI's dev.tsv (the smaller id on a tie)."""
    rows = read_glue_file(os.path.join(glue_root, 'WNLI', 'dev.tsv'), 'WNLI')
    counts = Counter(row.target for row in rows)
    return min(counts, key=lambda label: (-counts[label], label))


def write_wnli(directory: str, glue_root: str, label: int | None = None) -> tuple[str, int]:
    """``WNLI.tsv``: one label for every row of WNLI's test.tsv (default: the majority label
    of its dev.tsv). Returns the path and the label id written."""
    task = glue_task('WNLI')
    if label is None:
        label = majority_label(glue_root)
    if label not in range(len(task.classes)):
        raise ValueError(f'WNLI label {label} is not 0 or 1')
    rows = read_glue_file(os.path.join(glue_root, 'WNLI', 'test.tsv'), task)
    path = os.path.join(directory, task.server_file())
    write_server_file(path, task, [(row.index, label) for row in rows])
    return path, label


def read_server_file(path: str, task: GLUETask) -> list[tuple[str, str]]:
    """(index, prediction) of a server file; ValueError naming the file and line when its
    header or a line is not ``index<TAB>prediction`` with a prediction the task allows."""
    with open(path, encoding='utf-8') as stream:
        lines = stream.read().splitlines()
    if not lines or lines[0] != SERVER_HEADER:
        raise ValueError(f'{path}: the first line is not {SERVER_HEADER!r}')
    rows = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split('\t')
        if len(fields) != 2 or not _allowed(task, fields[1]):
            allowed = 'a number' if task.regression else ' / '.join(task.classes)
            raise ValueError(f'{path} line {number}: {line!r:.60} is not index<TAB>({allowed})')
        rows.append((fields[0], fields[1]))
    return rows


def _allowed(task: GLUETask, prediction: str) -> bool:
    if not task.regression:
        return prediction in task.classes
    try:
        float(prediction)
    except ValueError:
        return False
    return True


class Check(NamedTuple):
    """How one server file stands."""

    name: str
    ok: bool
    message: str


def check_submission(directory: str, glue_root: str) -> list[Check]:
    """The eleven server files of ``directory``: each must exist, be ``index<TAB>prediction``
    lines with predictions the task allows and, when its test file is under ``glue_root``,
    answer exactly that file's rows."""
    report = []
    for server in SERVER_FILES:
        path = os.path.join(directory, server.name)
        if not os.path.isfile(path):
            report.append(Check(server.name, False, 'missing'))
            continue
        try:
            rows = read_server_file(path, server.task)
        except ValueError as error:
            report.append(Check(server.name, False, str(error)))
            continue
        test_file = os.path.join(glue_root, server.test_file)
        if not os.path.isfile(test_file):
            message = f'{len(rows)} rows, not compared ({test_file} does not exist)'
            report.append(Check(server.name, True, message))
            continue
        expected = sorted(row.index for row in read_glue_file(test_file, server.task))
        if sorted(index for index, _ in rows) != expected:
            message = f'{len(rows)} rows whose indices are not the {len(expected)} of {test_file}'
            report.append(Check(server.name, False, message))
        else:
            report.append(Check(server.name, True, f'{len(rows)} rows, every row of {test_file}'))
    return report


__all__ = [
    'SERVER_FILES',
    'Check',
    'ServerFile',
    'check_submission',
    'majority_label',
    'read_server_file',
    'write_wnli',
]
