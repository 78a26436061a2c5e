"""GLUE's metrics (torchmetrics) and the GLUE server's prediction files.

Each task's standard metric, in percent as GLUE's tables show them: CoLA Matthews correlation
(``mcc``); SST-2, MNLI, QNLI, RTE, WNLI accuracy; MRPC and QQP accuracy and F1 of class 1
(equivalent / duplicate); STS-B Pearson and Spearman correlation. MNLI's matched and mismatched
dev sets are scored apart (``accuracy_m``, ``accuracy_mm``).

The server's files: ``<name>.tsv`` (``CoLA.tsv``, ``SST-2.tsv``, ``MNLI-m.tsv``, ``AX.tsv`` ...),
a header ``index<TAB>prediction`` and one line per test row: its index and the label as the
task's files spell it (``entailment``, ``0``/``1``) or STS-B's score with 3 decimals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..datasets.glue import GLUETask, glue_task
from ..models.parts import ComponentArgumentError
from ..registry import METRICS

#: The metrics of each task (GLUE's standard ones).
TASK_METRICS = {
    'CoLA': ('mcc',),
    'SST-2': ('accuracy',),
    'MRPC': ('accuracy', 'f1'),
    'STS-B': ('pearson', 'spearman'),
    'QQP': ('accuracy', 'f1'),
    'MNLI': ('accuracy',),
    'QNLI': ('accuracy',),
    'RTE': ('accuracy',),
    'WNLI': ('accuracy',),
}
SERVER_HEADER = 'index\tprediction'


def glue_scores(task: str | GLUETask, predictions, targets) -> dict[str, float]:
    """``{metric: percent}`` of the task's metrics: label ids (or STS-B scores) predicted
    [N] against the true ones [N]."""
    from torchmetrics.functional import pearson_corrcoef, spearman_corrcoef
    from torchmetrics.functional.classification import (
        binary_f1_score,
        binary_matthews_corrcoef,
        multiclass_accuracy,
    )

    task = glue_task(task)
    if len(predictions) != len(targets) or not len(targets):
        raise ValueError(f'{len(predictions)} predictions for {len(targets)} targets')
    if task.regression:
        predicted = torch.as_tensor(predictions, dtype=torch.float64)
        true = torch.as_tensor(targets, dtype=torch.float64)
        measures = dict(pearson=pearson_corrcoef, spearman=spearman_corrcoef)
    else:
        predicted = torch.as_tensor(predictions, dtype=torch.long)
        true = torch.as_tensor(targets, dtype=torch.long)
        classes = len(task.classes)
        measures = dict(
            mcc=binary_matthews_corrcoef,
            f1=binary_f1_score,
            accuracy=lambda p, t: multiclass_accuracy(p, t, classes, average='micro'),
        )
    return {name: 100 * float(measures[name](predicted, true)) for name in TASK_METRICS[task.name]}


def server_prediction(task: GLUETask, prediction: int | float) -> str:
    """A prediction as the server's files write it."""
    if task.regression:
        return f'{float(prediction):.3f}'
    return task.classes[int(prediction)]


def write_server_file(path: str, task: GLUETask, rows: Sequence[tuple[str, int | float]]) -> None:
    """``index<TAB>prediction`` lines for ``rows`` of (index, label id or score)."""
    from ..checkpoint import atomic_write

    lines = [SERVER_HEADER] + [f'{index}\t{server_prediction(task, p)}' for index, p in rows]
    data = ('\n'.join(lines) + '\n').encode('utf-8')
    atomic_write(path, lambda stream: stream.write(data))


@METRICS.register_module()
class GLUEMetric(BaseMetric):
    """A GLUE task's standard metric on the head's predictions, or its server file.

    Keys (prefix ``glue``): the task's metrics (:data:`TASK_METRICS`, percent), with the
    subset as a suffix where the data has several (MNLI: ``accuracy_m``, ``accuracy_mm``).
    Reads ``pred_label`` (``pred_score``, a float, for STS-B) and ``gt_label``
    (``gt_value``) of the data samples, and their ``glue_index`` / ``glue_subset`` from
    :class:`~davinci_zoo.datasets.glue.GLUEDataset`.

    Args:
        task: the GLUE task (``'RTE'``, ``'sst2'`` ...).
        format_only: write the server's file(s) of the rows instead of scoring them (the
            test files have no labels): ``<out_dir>/<name>.tsv`` per subset (``RTE.tsv``;
            MNLI's ``MNLI-m.tsv``, ``MNLI-mm.tsv``, ``AX.tsv``); the one key is then
            ``rows_written``.
        out_dir: the submission folder.
        collect_device, prefix: as mmengine's ``BaseMetric``.
    """

    default_prefix = 'glue'

    def __init__(
        self,
        task: str,
        format_only: bool = False,
        out_dir: str = 'work_dirs/glue_submission',
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.task = glue_task(task)
        self.format_only, self.out_dir = format_only, out_dir

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        name = self.task.name
        field, truth = (
            ('pred_score', 'gt_value') if self.task.regression else ('pred_label', 'gt_label')
        )
        for sample in data_samples:
            if field not in sample:
                head = (
                    'SequenceRegressionHead'
                    if self.task.regression
                    else 'SequenceClassificationHead'
                )
                raise ComponentArgumentError(
                    f'GLUEMetric({name}): a sample has no {field}; use a {head} model'
                )
            prediction = sample[field]
            target = sample.get(truth)
            if target is None and not self.format_only:
                raise ComponentArgumentError(
                    f"GLUEMetric({name}): a sample has no {truth} (GLUE's test files have no "
                    "labels); set test_evaluator.format_only=True to write the server's file"
                )
            convert = float if self.task.regression else int
            self.results.append(
                dict(
                    subset=sample.get('glue_subset', ''),
                    index=sample.get('glue_index'),
                    prediction=convert(prediction),
                    target=None if target is None else convert(target),
                )
            )

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        groups: dict[str, list[dict]] = defaultdict(list)
        for result in results:
            groups[result['subset']].append(result)
        if self.format_only:
            return {'rows_written': self.write(groups)}
        metrics: dict[str, float] = {}
        for subset, rows in sorted(groups.items()):
            scores = glue_scores(
                self.task, [r['prediction'] for r in rows], [r['target'] for r in rows]
            )
            suffix = f'_{subset}' if subset else ''
            metrics.update({f'{key}{suffix}': value for key, value in scores.items()})
        return metrics

    def write(self, groups: dict[str, list[dict]]) -> int:
        """Write one server file per subset; the rows written."""
        import os

        for subset, rows in sorted(groups.items()):
            if any(row['index'] is None for row in rows):
                raise ComponentArgumentError(
                    f'GLUEMetric({self.task.name}): a sample has no glue_index for the server '
                    "file; pack it with PackDaVinciInputs(meta_keys=[..., 'glue_index'])"
                )
            path = os.path.join(self.out_dir, self.task.server_file(subset))
            write_server_file(path, self.task, [(r['index'], r['prediction']) for r in rows])
            print_log(f'wrote {path} ({len(rows)} rows)', logger='current')
        return sum(len(rows) for rows in groups.values())


__all__ = [
    'SERVER_HEADER',
    'TASK_METRICS',
    'GLUEMetric',
    'glue_scores',
    'server_prediction',
    'write_server_file',
]
