"""The grid's outputs, from the cells' stage records: ``results.csv`` (one row per cell: mix,
scale, every metric, empty when n/a or missing; stage and cell wall times), ``results.md`` (the
table, "n/a" where the mix cannot write or paint) and ``results.png`` (one panel per metric:
metric vs data scale, log x, one line per mix)."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass

from ..checkpoint import atomic_write
from ..visualization import save_figure
from .execute import NOT_APPLICABLE, read_record
from .plan import Cell


@dataclass
class CellResult:
    """A cell's finished metrics, n/a columns, stage wall times (None: unknown) and how many
    of its applicable stages finished."""

    cell: Cell
    metrics: dict[str, float]
    not_applicable: set[str]
    wall_s: dict[str, float | None]
    finished: int
    applicable: int

    @property
    def status(self) -> str:
        if self.finished == self.applicable:
            return 'done'
        return 'not run' if not self.finished else f'{self.finished}/{self.applicable} stages'

    @property
    def cell_s(self) -> float | None:
        """The cell's wall time: its stages' sum (None when one ran elsewhere, untimed)."""
        times = list(self.wall_s.values())
        return None if not times or None in times else round(sum(times), 1)


def collect(cells: list[Cell]) -> list[CellResult]:
    """Each cell's result, read from its stage records."""
    results = []
    for cell in cells:
        metrics, wall, finished, applicable = {}, {}, 0, 0
        for stage in cell.stages:
            if not stage.applies_to(cell.teaches):
                continue
            applicable += 1
            record = read_record(cell, stage)
            if record is None:
                continue
            finished += 1
            metrics.update(record['metrics'])
            wall[stage.name] = record.get('wall_s')
        results.append(CellResult(cell, metrics, cell.not_applicable(), wall, finished, applicable))
    return results


def metric_columns(results: list[CellResult]) -> list[str]:
    """Metric columns in stage order: the grid's named metrics, then any other finished key
    (the held-out losses), in order of first appearance."""
    columns = []
    for result in results:
        for stage in result.cell.stages:
            columns += [metric.name for metric in stage.metrics if metric.name not in columns]
    for result in results:
        columns += [key for key in result.metrics if key not in columns]
    return columns


def stage_names(results: list[CellResult]) -> list[str]:
    names = []
    for result in results:
        names += [stage.name for stage in result.cell.stages if stage.name not in names]
    return names


def _number(value: float | None, digits: str = '.6g') -> str:
    return '' if value is None else format(value, digits)


def write_csv(results: list[CellResult], path: str) -> None:
    columns, stages = metric_columns(results), stage_names(results)
    header = ['cell', 'mix', 'scale', 'size', 'steps', 'status', *columns]
    header += [f'time_{name}_s' for name in stages] + ['time_cell_s']
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(header)
    for result in results:
        cell = result.cell
        row = [cell.name, cell.mix, cell.scale, cell.size, cell.steps, result.status]
        row += [_number(result.metrics.get(column)) for column in columns]
        row += [_number(result.wall_s.get(name), '.1f') for name in stages]
        writer.writerow([*row, _number(result.cell_s, '.1f')])
    atomic_write(path, lambda stream: stream.write(buffer.getvalue().encode()))


def _table(results: list[CellResult], columns: list[str], extra=None) -> list[str]:
    titles = [column.removeprefix('heldout/') for column in columns]
    lines = ['| mix | scale | ' + ' | '.join([*titles, *(extra or {})]) + ' |']
    lines.append('|---|---:|' + '---:|' * (len(columns) + len(extra or {})))
    for result in results:
        cells = [
            NOT_APPLICABLE
            if column in result.not_applicable
            else _number(result.metrics.get(column), '.3g')
            for column in columns
        ]
        cells += [show(result) for show in (extra or {}).values()]
        lines.append(f'| {result.cell.mix} | {result.cell.scale} | ' + ' | '.join(cells) + ' |')
    return lines


def write_markdown(results: list[CellResult], path: str) -> None:
    """The metrics table (with each cell's minutes), the held-out losses table, a summary."""
    columns = metric_columns(results)
    main = [column for column in columns if not column.startswith('heldout/')]
    heldout = [column for column in columns if column.startswith('heldout/')]
    minutes = {'minutes': lambda result: _number(result.cell_s and result.cell_s / 60, '.1f')}
    lines = _table(results, main, minutes)
    if heldout:
        lines += [
            '',
            'Held-out losses (lower is better; each objective on its own scale; empty: not an '
            'objective of the mix):',
            '',
        ]
        lines += _table(results, heldout)
    finished = sum(result.status == 'done' for result in results)
    steps = sorted({result.cell.steps for result in results})
    times = [result.cell_s for result in results if result.status == 'done']
    total = sum(t for t in times if t is not None)
    untimed = sum(t is None for t in times)
    lines += [
        '',
        f'{finished} of {len(results)} cells finished; pretraining steps per cell: '
        + ', '.join(map(str, steps))
        + f'; wall time of the finished cells: {total / 60:.1f} minutes'
        + (f' ({untimed} ran elsewhere, untimed)' if untimed else '')
        + '. "n/a": no objective of the mix teaches writing (caption accuracy) or painting '
        '(paint accuracy); empty: not finished.',
    ]
    text = '\n'.join(lines) + '\n'
    atomic_write(path, lambda stream: stream.write(text.encode()))


def write_plot(results: list[CellResult], path: str) -> None:
    """One panel per metric column: value vs data scale (log x), one line per mix."""
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    columns = metric_columns(results) or ['(no metrics yet)']
    mixes = list(dict.fromkeys(result.cell.mix for result in results))
    sizes = sorted({result.cell.size for result in results})
    across = min(4, len(columns))
    down = math.ceil(len(columns) / across)
    figure, axes = plt.subplots(down, across, figsize=(3.6 * across, 3.0 * down), squeeze=False)
    for index, column in enumerate(columns):
        panel = axes[index // across][index % across]
        for number, mix in enumerate(mixes):  # a mix keeps its colour in every panel
            points = sorted(
                (result.cell.size, result.metrics[column])
                for result in results
                if result.cell.mix == mix and column in result.metrics
            )
            if points:
                panel.plot(*zip(*points), marker='o', color=f'C{number % 10}', label=mix)
        panel.set_xscale('log')
        panel.set_xticks(sizes, [f'{size:g}' for size in sizes], fontsize='x-small')
        panel.minorticks_off()
        panel.set_title(column, fontsize='small')
        panel.set_xlabel('pretraining scenes', fontsize='x-small')
        panel.grid(alpha=0.3)
    for index in range(len(columns), down * across):
        axes[index // across][index % across].axis('off')
    handles, labels = [], []
    for row in axes:
        for panel in row:
            for handle, label in zip(*panel.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
    if handles:
        order = sorted(range(len(labels)), key=lambda index: mixes.index(labels[index]))
        handles, labels = [handles[i] for i in order], [labels[i] for i in order]  # grid order
        figure.legend(handles, labels, loc='lower center', ncol=min(6, len(labels)))
    figure.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    save_figure(figure, path)


def write_results(cells: list[Cell], directory: str) -> list[str]:
    """Write results.csv, results.md and results.png for ``cells`` into ``directory``."""
    results = collect(cells)
    os.makedirs(directory, exist_ok=True)
    paths = [os.path.join(directory, f'results.{ext}') for ext in ('csv', 'md', 'png')]
    write_csv(results, paths[0])
    write_markdown(results, paths[1])
    write_plot(results, paths[2])
    return paths
