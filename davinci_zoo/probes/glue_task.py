"""One GLUE task for one start: tools/train.py then tools/test.py in child processes.

A GLUE config (configs/downstream/glue/<task>.py) is a normal train + test config with
``data_root`` (its data folder, the present-check) and ``suite_metrics`` (the metric keys the
suite reports). The model starts from ``model.pretrained=CHECKPOINT`` (or, for the random
baseline, from ``model.pretrained=None``); the run's best checkpoint (``best_*.pth``, kept when
the config saves the best epoch on dev) or else its last is tested. The scores of a finished
run are kept next to the feature cache, keyed by the start weights' sha256 and the resolved
config, so an identical later request reuses them instead of training again.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import subprocess
import sys
import time

from ..checkpoint import atomic_write
from .probe_task import slug
from .results import Row
from .sources import file_sha256


class TaskFailed(Exception):
    """A task run that did not finish; the message is one line naming its log."""


def glue_settings(config: str) -> tuple[str, list[str], str]:
    """(data_root, suite_metrics, sha256 of the resolved config) of a GLUE config."""
    from ..cli import load_config

    cfg = load_config(config)
    metrics = cfg.get('suite_metrics')
    if not metrics:
        raise TaskFailed(f'{config} defines no suite_metrics (the metric keys to report)')
    if not cfg.get('data_root'):
        raise TaskFailed(f'{config} defines no data_root (the folder its data is read from)')
    digest = hashlib.sha256(cfg.pretty_text.encode()).hexdigest()
    return cfg.data_root, list(metrics), digest


def _run(command: list[str], log: str) -> None:
    with open(log, 'a') as stream:
        stream.write('$ ' + ' '.join(command) + '\n')
        stream.flush()
        done = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT)
    if done.returncode:
        raise TaskFailed(f'{_last_error(log)} (exit {done.returncode}; log: {log})')


def _last_error(log: str) -> str:
    with open(log, errors='replace') as stream:
        lines = [line.strip() for line in stream if line.strip()]
    errors = [line for line in lines if line.startswith('error:') or 'Error' in line]
    return (errors or lines or ['failed'])[-1][:300]


def run_glue(
    task: str,
    config: str,
    start: str | None,
    label: str,
    out_dir: str,
    cache_dir: str,
    tools_dir: str,
) -> list[Row]:
    """Fine-tune from ``start`` (a checkpoint; None: random initialisation), test, and return
    one Row per suite metric. Raises TaskFailed with a one-line reason."""
    _, metrics, config_digest = glue_settings(config)
    weights = file_sha256(start) if start else 'random'
    key = hashlib.sha256(f'{config_digest}:{weights}'.encode()).hexdigest()
    stored = os.path.join(cache_dir, 'glue', f'{task}-{slug(label)}-{key[:16]}.json')
    begin = time.perf_counter()
    reused = os.path.isfile(stored)
    if reused:
        with open(stored) as stream:
            scores = json.load(stream)
    else:
        work_dir = os.path.join(out_dir, 'glue', task, slug(label))
        scores = _train_and_test(config, start, work_dir, tools_dir)
        text = json.dumps(scores, indent=2)
        atomic_write(stored, lambda stream: stream.write(text.encode()))
    absent = [name for name in metrics if name not in scores]
    if absent:
        raise TaskFailed(
            f'{task}: the test gave no {absent[0]!r} (suite_metrics); it gave {sorted(scores)}'
        )
    detail = f'scores reused from {stored}' if reused else f'{time.perf_counter() - begin:.1f} s'
    return [Row(task, label, name, float(scores[name]), 'finetune', detail) for name in metrics]


def _train_and_test(config: str, start: str | None, work_dir: str, tools_dir: str) -> dict:
    """Train into ``work_dir``, then test its best checkpoint (``best_*.pth``, when the config
    keeps the best epoch on dev) or else its last one; -> the test's metrics."""
    os.makedirs(work_dir, exist_ok=True)
    log = os.path.join(work_dir, 'suite.log')
    pointer = os.path.join(work_dir, 'last_checkpoint')
    for stale in [pointer, *glob.glob(os.path.join(work_dir, 'best_*.pth'))]:
        if os.path.exists(stale):
            os.remove(stale)  # never test an earlier run's checkpoint
    train = [os.path.join(tools_dir, 'train.py'), config, '--work-dir', work_dir]
    _run([sys.executable, *train, '--cfg-options', f'+model.pretrained={start}'], log)
    checkpoint = _trained_checkpoint(work_dir)
    if checkpoint is None:
        raise TaskFailed(f'training wrote no checkpoint into {work_dir} (log: {log})')
    metrics_file = os.path.join(work_dir, 'metrics.json')
    test = [os.path.join(tools_dir, 'test.py'), config, checkpoint, '--work-dir', work_dir]
    _run([sys.executable, *test, '--metrics-json', metrics_file], log)
    with open(metrics_file) as stream:
        return json.load(stream)


def _trained_checkpoint(work_dir: str) -> str | None:
    best = sorted(glob.glob(os.path.join(work_dir, 'best_*.pth')), key=os.path.getmtime)
    if best:
        return best[-1]
    pointer = os.path.join(work_dir, 'last_checkpoint')
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as stream:
        return stream.read().strip()
