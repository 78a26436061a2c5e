"""Run a cell's stages, resumably.

A stage that finished leaves ``<cell>/<stage>.json`` (its metrics, wall time and commands,
written whole or not at all), so a rerun skips it. A stage whose result file exists without that
record (its commands ran elsewhere, e.g. printed for a cluster launcher) is collected, not
rerun. Training stages run with ``--resume``: one killed half way continues from its last
checkpoint. Each stage's output goes to ``<cell>/<stage>.log``. A record made by other
commands (the grid changed since) is stale: the stage fails rather than mix two recipes.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..checkpoint import atomic_write
from .plan import Cell
from .stages import Stage, StageError, read_result, stage_metrics

#: A stage's state before a run: finished before, result there (collect), to run, n/a, or
#: finished by other commands (stale).
DONE, COLLECT, RUN, NOT_APPLICABLE, STALE = 'done', 'collect', 'run', 'n/a', 'stale'


def record_path(cell: Cell, stage: Stage) -> str:
    return os.path.join(cell.folder, f'{stage.name}.json')


def log_path(cell: Cell, stage: Stage) -> str:
    return os.path.join(cell.folder, f'{stage.name}.log')


def recipe(stage: Stage) -> list[list[str]]:
    """The stage's commands without the Python that runs them (another venv is no change)."""
    return [list(command[1:]) for command in stage.commands]


def load_record(cell: Cell, stage: Stage) -> dict | None:
    """The stage's record as written, or None (absent or unreadable)."""
    try:
        with open(record_path(cell, stage)) as stream:
            record = json.load(stream)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and 'metrics' in record else None


def read_record(cell: Cell, stage: Stage) -> dict | None:
    """The stage's finished record, if its commands made it; else None."""
    record = load_record(cell, stage)
    return record if record is not None and record.get('recipe') == recipe(stage) else None


def stage_state(cell: Cell, stage: Stage) -> str:
    if not stage.applies_to(cell.teaches):
        return NOT_APPLICABLE
    if read_record(cell, stage) is not None:
        return DONE
    if load_record(cell, stage) is not None:
        return STALE
    return COLLECT if os.path.isfile(stage.result) else RUN


def pending(cell: Cell) -> list[Stage]:
    """The cell's stages that still have to run (not finished, no result, applicable)."""
    return [stage for stage in cell.stages if stage_state(cell, stage) == RUN]


def newest_checkpoint(folder: str) -> str | None:
    """The newest ``iter_N.pth`` / ``epoch_N.pth`` in ``folder`` by its number, or None."""
    found = glob.glob(os.path.join(folder, 'iter_*.pth')) + glob.glob(
        os.path.join(folder, 'epoch_*.pth')
    )
    numbered = [(int(m.group(1)), p) for p in found if (m := re.search(r'_(\d+)\.pth$', p))]
    return max(numbered)[1] if numbered else None


def failure_line(log: str) -> str:
    """The last ``error: ...`` line of a log, else its last non-empty line."""
    try:
        with open(log, errors='replace') as stream:
            lines = [line.strip() for line in stream if line.strip()]
    except OSError:
        return '(no log)'
    errors = [line for line in lines if line.startswith('error:')]
    return (errors or lines or ['(empty log)'])[-1][:400]


def missing_requirement(stage: Stage) -> str | None:
    for path, make in stage.requires:
        if not os.path.exists(path):
            return f'{path} does not exist' + (f'; make it with: {make}' if make else '')
    return None


def run_commands(stage: Stage, log: str) -> None:
    """Run the stage's commands in order, output appended to ``log``; StageError on a failure.
    Interrupted (Ctrl-C, SIGTERM), it stops the running command before it raises."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log, 'a') as stream:
        for command in stage.commands:
            stream.write(f'$ {subprocess.list2cmdline(command)}\n')
            stream.flush()
            process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
            try:
                code = process.wait()
            except BaseException:
                process.terminate()
                process.wait()
                raise
            if code:
                raise StageError(f'exit status {code}: {failure_line(log)}')


def finish_stage(cell: Cell, stage: Stage, wall_s: float | None) -> dict:
    """Read the stage's metrics from its result and write its record; returns the record."""
    if not os.path.isfile(stage.result):
        raise StageError(f'it ended without writing {stage.result}')
    metrics = stage_metrics(stage, read_result(stage.result), cell.teaches)
    record = dict(stage=stage.name, metrics=metrics, wall_s=wall_s, result=stage.result)
    record['recipe'] = recipe(stage)
    text = json.dumps(record, indent=2)
    atomic_write(record_path(cell, stage), lambda out: out.write(text.encode()))
    return record


@dataclass
class CellOutcome:
    """What one run did to a cell: stages ``ran``, ``collected``, ``skipped`` (finished
    before or n/a), and the ``failed`` stage with its message."""

    cell: str
    ran: list[str] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: tuple[str, str] | None = None


def run_cell(cell: Cell, say: Callable[[str], None] = print) -> CellOutcome:
    """Run the cell's unfinished stages in order; the first failure ends the cell."""
    outcome = CellOutcome(cell.name)
    for stage in cell.stages:
        where, state = f'{cell.name}/{stage.name}', stage_state(cell, stage)
        if state in (DONE, NOT_APPLICABLE):
            outcome.skipped.append(stage.name)
            say(f'{where}: {"finished before" if state == DONE else "n/a for this mix"}')
            continue
        try:
            if state == STALE:
                raise StageError(
                    f'{record_path(cell, stage)} was made by other commands (the grid changed '
                    f'since?); use a new --out folder, or delete {cell.folder} to redo the cell'
                )
            if state == COLLECT:
                finish_stage(cell, stage, None)
                outcome.collected.append(stage.name)
                say(f'{where}: collected (its result was there)')
                continue
            problem = missing_requirement(stage)
            if problem:
                raise StageError(problem)
            resume = newest_checkpoint(os.path.dirname(stage.result))
            say(f'{where}: running' + (f' (resumes from {resume})' if resume else ''))
            begin = time.perf_counter()
            run_commands(stage, log_path(cell, stage))
            record = finish_stage(cell, stage, round(time.perf_counter() - begin, 1))
        except (StageError, OSError, ValueError) as error:
            outcome.failed = (stage.name, str(error))
            say(f'{where}: FAILED: {error} (log: {log_path(cell, stage)})')
            return outcome
        outcome.ran.append(stage.name)
        say(f'{where}: done in {record["wall_s"]:.1f} s')
    return outcome
