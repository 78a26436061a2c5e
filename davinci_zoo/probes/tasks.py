"""The suite's tasks: one config file each, found by name under the downstream configs.

- ``probe_<name>``: ``<root>/linear_probe/<name>.py`` (a linear probe; ``probe_base.py`` is
  the shared recipe, not a task);
- ``glue_<task>``: ``<root>/glue/<task>.py`` (fine-tune and test; files named ``*_base.py``
  or starting with ``_`` are shared bases, not tasks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROBE, GLUE = 'probe', 'glue'
FOLDERS = {PROBE: 'linear_probe', GLUE: 'glue'}


@dataclass(frozen=True)
class Task:
    """A suite task: its name (``probe_cifar10``), kind (``probe`` / ``glue``) and config."""

    name: str
    kind: str
    config: str


def known_tasks(root: str) -> dict[str, Task]:
    """Every task whose config is under ``root`` (configs/downstream), by name."""
    tasks = {}
    for kind, folder in FOLDERS.items():
        directory = os.path.join(root, folder)
        if not os.path.isdir(directory):
            continue
        for file in sorted(os.listdir(directory)):
            stem, extension = os.path.splitext(file)
            if extension != '.py' or stem.startswith('_') or stem.endswith('_base'):
                continue
            name = f'{kind}_{stem}'
            tasks[name] = Task(name, kind, os.path.join(directory, file))
    return tasks


def select_tasks(requested: list[str] | None, known: dict[str, Task]) -> list[Task]:
    """The requested tasks in order (all known ones when None); ValueError naming an unknown
    one with the list of known names."""
    if not requested:
        return list(known.values())
    unknown = [name for name in requested if name not in known]
    if unknown:
        names = ', '.join(known) or 'none (no task configs found)'
        raise ValueError(f'unknown task {unknown[0]!r}; known tasks: {names}')
    return [known[name] for name in dict.fromkeys(requested)]
