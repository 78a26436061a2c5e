"""Plan a grid: one cell per (mix, scale), each with its stages, in the grid's order.

A cell is named ``<mix>_<scale>`` and lives in ``<out>/<mix>_<scale>/``. What its mix
teaches (the ``teaches`` of its objectives' classes: 'write', 'paint') decides which metrics
are n/a and whether a stage whose every metric is n/a runs at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from ..cli import UserError, apply_cfg_options, load_config
from .grid import Grid
from .stages import STAGES, Launch, Stage


@dataclass(frozen=True)
class Cell:
    """One mix at one data scale: its mix ``config``, ``folder``, pretraining ``steps`` and
    cfg-options, what the mix ``teaches``, and its ``stages`` (pretrain first)."""

    name: str
    mix: str
    scale: str
    size: int | float
    config: str
    folder: str
    steps: int
    teaches: frozenset[str]
    pretrain_options: dict
    stages: tuple[Stage, ...] = field(default=())

    @property
    def checkpoint(self) -> str:
        """The last pretraining checkpoint (what the evaluation stages read)."""
        return os.path.join(self.folder, 'pretrain', f'iter_{self.steps}.pth')

    def not_applicable(self) -> set[str]:
        """Metric columns the mix cannot have (it does not teach what they need)."""
        return {
            metric.name
            for stage in self.stages
            for metric in stage.metrics
            if metric.needs is not None and metric.needs not in self.teaches
        }


def mix_teaches(objectives) -> frozenset[str]:
    """The union of the ``teaches`` of the objectives' registered classes."""
    from ..registry import OBJECTIVES

    taught = set()
    for objective in objectives or ():
        kind = objective['type']
        found = OBJECTIVES.get(kind) if isinstance(kind, str) else kind
        taught.update(getattr(found, 'teaches', ()))
    return frozenset(taught)


def plan_cells(grid: Grid, launch: Launch) -> list[Cell]:
    """Every (mix, scale) of the grid as a Cell, mixes outer, scales inner."""
    cells = []
    for mix, config in grid.mixes.items():
        teaches = None
        for scale, size in grid.scales.items():
            options = {**grid.pretrain_options, grid.scale_key: size}
            cfg = load_config(config)
            try:  # a key the mix lacks is an error now, not in the middle of the grid
                apply_cfg_options(cfg, options)
            except UserError as error:
                raise UserError(f'mix {mix} ({config}), with the grid options: {error}') from None
            steps = (cfg.get('train_cfg') or {}).get('max_iters')
            if not isinstance(steps, int):
                raise UserError(f'mix {mix} ({config}) must train by steps: train_cfg.max_iters')
            if teaches is None:
                teaches = mix_teaches((cfg.get('model') or {}).get('objectives'))
            name = f'{mix}_{scale}'
            if any(cell.name == name for cell in cells):
                raise UserError(f'two cells are named {name}: rename a mix or a scale')
            cell = Cell(
                name,
                mix,
                scale,
                size,
                config,
                os.path.join(launch.out, name),
                steps,
                teaches,
                options,
            )
            stages = [STAGES['pretrain'](cell, {}, launch)]
            stages += [STAGES[stage](cell, s, launch) for stage, s in grid.evaluation.items()]
            cells.append(replace(cell, stages=tuple(stages)))
    return cells


def select_cells(cells: list[Cell], names: str | None) -> list[Cell]:
    """The cells named in ``names`` (comma-separated; all when None), in grid order."""
    if not names:
        return cells
    wanted = [name.strip() for name in names.split(',') if name.strip()]
    known = [cell.name for cell in cells]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise UserError(f'--cells: unknown cell {unknown[0]!r}; the grid has {", ".join(known)}')
    return [cell for cell in cells if cell.name in wanted]


def cell_command_lines(cell: Cell, per_stage: bool, pending) -> list[str]:
    """Shell lines running the cell's ``pending`` stages: one joined with ``&&`` or one per
    stage (each stage's own commands joined with ``&&``)."""
    import shlex

    groups = [
        ' && '.join(shlex.join(command) for command in stage.commands)
        for stage in cell.stages
        if stage in pending
    ]
    return groups if per_stage else ([' && '.join(groups)] if groups else [])
