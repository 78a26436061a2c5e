"""Read an ablation grid file (configs/ablations/grid_*.py): mixes, data scales, evaluation.

A grid file is a plain mmengine config holding

- ``mixes``: name -> mix config (a pretraining config; paths relative to the grid file);
- ``scales``: name -> data scale (the value the ``scale_key`` cfg-option gets);
- ``scale_key``: the cfg-option a scale sets, e.g. ``train_dataloader.dataset.size``;
- ``pretrain``: ``dict(options={...})``, more cfg-options of every pretraining run;
- ``evaluation``: stage name -> its settings, in the order the stages run (see
  :data:`~.stages.STAGES` for the stages and their settings).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..cli import UserError, load_config

#: Names of mixes, scales and stages become folder names: letters, digits, ``_ . -``.
NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
#: What an objective can teach a model (``Objective.teaches``); metrics may need one.
ABILITIES = ('write', 'paint')


@dataclass(frozen=True)
class Metric:
    """A results column: ``name``, the ``key`` in its stage's result file, and the ability
    (``'write'``/``'paint'``) a mix must teach for it to apply (None: every mix)."""

    name: str
    key: str
    needs: str | None = None


@dataclass(frozen=True)
class Grid:
    """A read grid file; config paths are absolute, settings as the file gives them."""

    path: str
    mixes: dict[str, str]
    scales: dict[str, int | float]
    scale_key: str
    pretrain_options: dict = field(default_factory=dict)
    evaluation: dict[str, dict] = field(default_factory=dict)

    def resolve(self, path: str) -> str:
        """A path of the grid file (relative to its folder) -> absolute."""
        return os.path.normpath(os.path.join(os.path.dirname(self.path), path))


def check_name(kind: str, name) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise UserError(
            f'{kind} name {name!r}: use letters, digits, "_", "." and "-" (it names a folder)'
        )
    return name


def check_options(where: str, options) -> dict:
    """cfg-options as a dict of key -> number, text, bool or None (one command-line word)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise UserError(f'{where}: options must be a dict of cfg-option key -> value')
    for key, value in options.items():
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise UserError(
                f'{where}: option {key}={value!r}: give a number, a text, True/False or None'
            )
    return dict(options)


def metric_list(stage: str, metrics) -> list[Metric]:
    """``dict(column=key)`` or ``dict(column=(key, ability))`` -> Metrics."""
    if not isinstance(metrics, dict) or not metrics:
        raise UserError(f'evaluation.{stage}.metrics: give a dict of column -> result key')
    found = []
    for name, spec in metrics.items():
        spec = (spec, None) if isinstance(spec, str) else tuple(spec)
        if len(spec) != 2 or not isinstance(spec[0], str):
            raise UserError(
                f'evaluation.{stage}.metrics.{name}: give a result key or (key, ability)'
            )
        key, needs = spec
        if needs is not None and needs not in ABILITIES:
            raise UserError(
                f'evaluation.{stage}.metrics.{name}: needs {needs!r}; use one of {ABILITIES}'
            )
        found.append(Metric(check_name('metric', name), key, needs))
    return found


def read_grid(path: str) -> Grid:
    """Read and check a grid file; UserError naming the first problem."""
    from .stages import NEEDED, STAGES

    cfg = load_config(path)
    path = os.path.abspath(path)
    for key in ('mixes', 'scales', 'scale_key', 'evaluation'):
        if key not in cfg:
            raise UserError(f'grid {path} has no {key!r} (docs/ablations.md)')
    if not isinstance(cfg.mixes, dict) or not cfg.mixes:
        raise UserError(f'grid {path}: mixes must be a dict of name -> mix config')
    if not isinstance(cfg.scales, dict) or not cfg.scales:
        raise UserError(f'grid {path}: scales must be a dict of name -> data scale')
    grid = Grid(path, {}, {}, str(cfg.scale_key))
    for name, config in cfg.mixes.items():
        config = grid.resolve(config)
        if not os.path.isfile(config):
            raise UserError(f'grid {path}: mix {name!r}: config {config} does not exist')
        grid.mixes[check_name('mix', name)] = config
    for name, value in cfg.scales.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f'grid {path}: scale {name!r} must be a positive number, got {value!r}')
        grid.scales[check_name('scale', name)] = value
    pretrain = cfg.get('pretrain') or {}
    grid.pretrain_options.update(check_options('pretrain', pretrain.get('options')))
    for stage, settings in cfg.evaluation.items():
        if stage not in STAGES or stage == 'pretrain':
            known = ', '.join(name for name in STAGES if name != 'pretrain')
            raise UserError(f'grid {path}: unknown evaluation stage {stage!r}; known: {known}')
        settings = dict(settings or {})
        missing = [key for key in NEEDED.get(stage, ()) if key not in settings]
        if missing:
            raise UserError(f'grid {path}: evaluation.{stage} needs {", ".join(missing)}')
        settings['options'] = check_options(f'evaluation.{stage}', settings.get('options'))
        for key in ('config', 'configs'):  # paths relative to the grid file
            if key in settings:
                settings[key] = grid.resolve(settings[key])
        if 'metrics' in settings:
            settings['metrics'] = metric_list(stage, settings['metrics'])
        grid.evaluation[stage] = settings
    return grid
