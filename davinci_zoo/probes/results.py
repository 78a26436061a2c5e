"""The suite's outputs: ``results.csv`` (one row per task, model and metric), ``results.md``
(a table per task and metric, one column per model, then the skipped tasks) and
``results.png`` (per task and metric one bar per model). Scores are in percent."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass, fields

from ..checkpoint import atomic_write
from ..visualization import save_figure


@dataclass
class Row:
    """One score: ``task`` (``probe_cifar10``), ``model`` (a checkpoint or a baseline),
    ``metric``, ``value``, the ``method`` (classifier or ``finetune``) and a ``detail``."""

    task: str
    model: str
    metric: str
    value: float
    method: str = ''
    detail: str = ''


def _text(path: str, text: str) -> None:
    atomic_write(path, lambda stream: stream.write(text.encode()))


def write_csv(rows: list[Row], path: str) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(Row)])
    writer.writeheader()
    for row in rows:
        writer.writerow(dict(asdict(row), value=f'{row.value:.2f}'))
    _text(path, buffer.getvalue())


def _models(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(row.model for row in rows))


def _groups(rows: list[Row]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((row.task, row.metric) for row in rows))


def write_markdown(rows: list[Row], notes: list[str], path: str) -> None:
    """A table: one line per (task, metric), one column per model; ``notes`` below it."""
    models = _models(rows)
    value = {(row.task, row.metric, row.model): row.value for row in rows}
    lines = [
        '| task | metric | ' + ' | '.join(models) + ' |',
        '|---|---|' + '---:|' * len(models),
    ]
    for task, metric in _groups(rows):
        cells = [
            f'{value[task, metric, model]:.1f}' if (task, metric, model) in value else ''
            for model in models
        ]
        lines.append(f'| {task} | {metric} | ' + ' | '.join(cells) + ' |')
    methods = sorted({f'{row.task}: {row.method}' for row in rows if row.method})
    text = '\n'.join(lines) + '\n' if rows else 'No task ran.\n'
    if methods:
        text += '\nMethods: ' + '; '.join(methods) + '.\n'
    if notes:
        text += '\n' + '\n'.join(f'- {note}' for note in notes) + '\n'
    _text(path, text)


def write_plot(rows: list[Row], path: str) -> None:
    """Grouped bars: per (task, metric) one bar per model (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    models, groups = _models(rows), _groups(rows)
    value = {(row.task, row.metric, row.model): row.value for row in rows}
    width = 0.8 / max(1, len(models))
    figure, axes = plt.subplots(figsize=(3 + max(3.0, 0.5 * len(groups) * max(1, len(models))), 4))
    for index, model in enumerate(models):
        positions = [
            group + (index - (len(models) - 1) / 2) * width
            for group, key in enumerate(groups)
            if (*key, model) in value
        ]
        heights = [value[(*key, model)] for key in groups if (*key, model) in value]
        bars = axes.bar(positions, heights, width, label=model)
        axes.bar_label(bars, fmt='%.1f', fontsize='x-small')
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels(
        [task if metric in ('accuracy',) else f'{task}\n{metric}' for task, metric in groups],
        rotation=30 if len(groups) > 4 else 0,
        ha='right' if len(groups) > 4 else 'center',
    )
    axes.set_ylabel('score (percent)')
    if models:
        axes.legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.01, 1))
    axes.grid(axis='y', alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)


def write_results(rows: list[Row], notes: list[str], directory: str) -> list[str]:
    """Write the three files into ``directory``; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, f'results.{ext}') for ext in ('csv', 'md', 'png')]
    write_csv(rows, paths[0])
    write_markdown(rows, notes, paths[1])
    write_plot(rows, paths[2])
    return paths
