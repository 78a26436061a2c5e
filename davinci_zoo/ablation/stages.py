"""A cell's stages: the plain tool commands each one runs, and the metrics of its result file.

Every stage writes under ``<cell>/<stage>/`` and ends with one result file (written whole or
not at all), whose existence means the stage finished:

- ``pretrain``: ``tools/train.py MIX --resume`` -> ``iter_<steps>.pth``;
- ``write_paint``: ``tools/test.py MIX CKPT`` -> ``metrics.json``;
- ``heldout``: ``python -m davinci_zoo.ablation.heldout MIX CKPT`` -> ``metrics.json``;
- ``vqa``: ``tools/train.py VQA --resume``, then ``tools/test.py`` -> ``metrics.json``;
- ``probe``: ``tools/probe_suite.py CKPT`` -> ``results.csv``.

Settings of an evaluation stage (the grid's ``evaluation.<stage>``): ``options`` (more
cfg-options), ``metrics`` (results column -> result key, or (key, ability)), ``requires``
(``dict(path=..., make=...)`` or a list of them: data that must exist, and the command that
makes it); ``vqa``: ``config``, ``epochs``; ``probe``: ``task``, ``configs``, ``classifier``;
``heldout``: ``seed``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .grid import Metric

if TYPE_CHECKING:
    from .plan import Cell


class StageError(Exception):
    """A stage that cannot run or whose result lacks what the grid asks for."""


@dataclass(frozen=True)
class Launch:
    """How stage commands start: the Python, the folder of tools/, the grid's output folder."""

    python: str
    tools: str
    out: str


@dataclass(frozen=True)
class Stage:
    """One step of a cell: ``commands`` (argv lists) run in order; finished once ``result``
    exists. ``metrics``: the columns read from it (empty: every key as it is); ``requires``:
    (path, command that makes it) pairs checked before it runs."""

    name: str
    commands: tuple[tuple[str, ...], ...]
    result: str
    metrics: tuple[Metric, ...] = ()
    requires: tuple[tuple[str, str], ...] = ()

    def applies_to(self, teaches: frozenset[str]) -> bool:
        """False when every metric needs an ability the mix does not teach (all n/a)."""
        if not self.metrics:
            return True
        return any(metric.needs is None or metric.needs in teaches for metric in self.metrics)


def shown(path: str) -> str:
    """``path`` relative to the working folder when it lies inside it, else absolute."""
    relative = os.path.relpath(os.path.abspath(path))
    return relative if not relative.startswith('..') else os.path.abspath(path)


def option_words(options: dict) -> list[str]:
    """cfg-options -> ``['--cfg-options', 'k=v', ...]`` (nothing for none)."""
    if not options:
        return []
    return ['--cfg-options', *(f'{key}={value}' for key, value in options.items())]


def tool(launch: Launch, name: str) -> list[str]:
    return [launch.python, shown(os.path.join(launch.tools, name))]


def requirements(settings: dict) -> tuple[tuple[str, str], ...]:
    found = settings.get('requires') or []
    found = [found] if isinstance(found, dict) else found
    return tuple((item['path'], item.get('make', '')) for item in found)


def pretrain(cell: Cell, settings: dict, launch: Launch) -> Stage:
    work = os.path.join(cell.folder, 'pretrain')
    command = [*tool(launch, 'train.py'), shown(cell.config), '--work-dir', shown(work)]
    command += ['--resume', *option_words(cell.pretrain_options)]
    return Stage('pretrain', (tuple(command),), cell.checkpoint)


def write_paint(cell: Cell, settings: dict, launch: Launch) -> Stage:
    work = os.path.join(cell.folder, 'write_paint')
    result = os.path.join(work, 'metrics.json')
    command = [*tool(launch, 'test.py'), shown(cell.config), shown(cell.checkpoint)]
    command += ['--work-dir', shown(work), '--metrics-json', shown(result)]
    command += option_words(settings.get('options'))
    return Stage(
        'write_paint', (tuple(command),), result, tuple(settings['metrics']), requirements(settings)
    )


def heldout(cell: Cell, settings: dict, launch: Launch) -> Stage:
    result = os.path.join(cell.folder, 'heldout', 'metrics.json')
    command = [launch.python, '-m', 'davinci_zoo.ablation.heldout', shown(cell.config)]
    command += [shown(cell.checkpoint), '--out', shown(result)]
    command += ['--seed', str(settings.get('seed', 0)), *option_words(settings.get('options'))]
    return Stage(
        'heldout',
        (tuple(command),),
        result,
        tuple(settings.get('metrics') or ()),
        requirements(settings),
    )


def vqa(cell: Cell, settings: dict, launch: Launch) -> Stage:
    work = os.path.join(cell.folder, 'vqa')
    config, epochs = shown(settings['config']), int(settings['epochs'])
    options = settings.get('options') or {}
    start = {'model.pretrained': shown(cell.checkpoint), 'train_cfg.max_epochs': epochs}
    train = [*tool(launch, 'train.py'), config, '--work-dir', shown(work), '--resume']
    train += option_words({**start, **options})
    result = os.path.join(work, 'metrics.json')
    checkpoint = shown(os.path.join(work, f'epoch_{epochs}.pth'))
    test = [*tool(launch, 'test.py'), config, checkpoint, '--work-dir', shown(work)]
    test += ['--metrics-json', shown(result), *option_words(options)]
    return Stage(
        'vqa',
        (tuple(train), tuple(test)),
        result,
        tuple(settings['metrics']),
        requirements(settings),
    )


def probe(cell: Cell, settings: dict, launch: Launch) -> Stage:
    work = os.path.join(cell.folder, 'probe')
    command = [*tool(launch, 'probe_suite.py'), shown(cell.checkpoint), '--tasks', settings['task']]
    command += ['--out', shown(work), '--configs', shown(settings['configs'])]
    command += ['--cache-dir', shown(os.path.join(launch.out, 'probe_cache'))]
    if settings.get('classifier'):
        command += ['--classifier', settings['classifier']]
    return Stage(
        'probe',
        (tuple(command),),
        os.path.join(work, 'results.csv'),
        tuple(settings['metrics']),
        requirements(settings),
    )


#: Stage name -> builder ``(cell, settings, launch) -> Stage``; settings keys each one needs.
STAGES = dict(pretrain=pretrain, write_paint=write_paint, heldout=heldout, vqa=vqa, probe=probe)
NEEDED = dict(write_paint=('metrics',), vqa=('config', 'epochs', 'metrics'))
NEEDED['probe'] = ('task', 'configs', 'metrics')


def read_result(path: str) -> dict[str, float]:
    """A result file's numbers: a metrics JSON as it is; the probe suite's ``results.csv``
    as ``{'<task>/<metric>': value}``; none from a checkpoint (pretraining's result)."""
    if path.endswith('.pth'):
        return {}
    if path.endswith('.csv'):
        with open(path, newline='') as stream:
            return {f'{r["task"]}/{r["metric"]}': float(r['value']) for r in csv.DictReader(stream)}
    with open(path) as stream:
        values = json.load(stream)
    return {key: float(value) for key, value in values.items() if isinstance(value, (int, float))}


def stage_metrics(stage: Stage, values: dict[str, float], teaches: frozenset[str]) -> dict:
    """The stage's columns from its result's ``values`` (every key when it names none);
    columns needing an ability the mix lacks are left out (n/a)."""
    if not stage.metrics:
        return dict(values)
    found = {}
    for metric in stage.metrics:
        if metric.needs is not None and metric.needs not in teaches:
            continue
        if metric.key not in values:
            raise StageError(
                f'{stage.result} has no {metric.key!r} (it has: {", ".join(values) or "nothing"})'
            )
        found[metric.name] = values[metric.key]
    return found
