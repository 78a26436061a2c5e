"""Score checkpoints on the understanding tasks: linear probes and GLUE, one table and plot.

python tools/probe_suite.py CHECKPOINT [CHECKPOINT ...] --out DIR \
    [--tasks probe_cifar10,glue_sst2,...] [--classifier bn_linear|logistic] \
    [--baselines random,tokenizer,pixels] [--cache-dir DIR] [--model-config CONFIG]

Every requested task whose data is present runs; an absent one prints one line naming the
path it looked for. Probes read frozen features through the feature cache (a second run never
recomputes them); GLUE tasks fine-tune with tools/train.py and score with tools/test.py.
Writes DIR/results.csv, DIR/results.md and DIR/results.png. docs/tasks/linear_probe.md.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import UserError, load_config, run_tool

TOOLS = osp.dirname(osp.abspath(__file__))
BASELINES = ('random', 'tokenizer', 'pixels')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Linear probes and GLUE for checkpoints.')
    parser.add_argument('checkpoints', nargs='+', metavar='CHECKPOINT', help='.pth files')
    parser.add_argument('--out', required=True, help='folder for results.{csv,md,png}')
    parser.add_argument(
        '--tasks', help='comma-separated task names (default: every task found under --configs)'
    )
    parser.add_argument(
        '--classifier',
        choices=('bn_linear', 'logistic'),
        help="probe classifier (default: each probe config's probe.classifier)",
    )
    parser.add_argument(
        '--baselines', default='', help=f'comma-separated rows besides the checkpoints: {BASELINES}'
    )
    parser.add_argument(
        '--cache-dir',
        default='work_dirs/probe_cache',
        help='feature cache (and reused GLUE scores) (default: %(default)s)',
    )
    parser.add_argument(
        '--model-config', help="config whose model reads the checkpoints (default: each one's own)"
    )
    parser.add_argument(
        '--configs',
        default='configs/downstream',
        help='folder holding linear_probe/ and glue/ task configs (default: %(default)s)',
    )
    parser.add_argument('--device', help='cuda or cpu (default: cuda when there is one)')
    return parser.parse_args(argv)


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or '').split(',') if name.strip()]


class Suite:
    """The runs of one call: rows, notes (skips and failures) and their counts."""

    def __init__(self, args, probes: bool):
        from davinci_zoo.probes.cache import FeatureCache

        self.args = args
        self.cache = FeatureCache(args.cache_dir)
        self.device = args.device or _default_device()
        self.rows, self.notes = [], []
        self.skipped = self.failed = self.ran = 0
        self.checkpoints = list(dict.fromkeys(osp.normpath(path) for path in args.checkpoints))
        for path in self.checkpoints:
            if not osp.isfile(path):
                raise UserError(f'checkpoint {path} does not exist')
        self.baselines = _names(args.baselines)
        unknown = [name for name in self.baselines if name not in BASELINES]
        if unknown:
            raise UserError(f'unknown baseline {unknown[0]!r}; choose from {", ".join(BASELINES)}')
        # probes read each checkpoint's model config: read them all now, before any task runs
        self.models = self._model_configs() if probes else {}
        self._sources = {}  # built once, shared by the probe tasks

    def _model_configs(self) -> dict[str, dict]:
        from davinci_zoo.probes.sources import checkpoint_model_config

        if not self.args.model_config:
            return {path: checkpoint_model_config(path) for path in self.checkpoints}
        cfg = load_config(self.args.model_config)
        if not isinstance(cfg.get('model'), dict):
            raise UserError(f'config {self.args.model_config} has no model')
        return {path: cfg.model.to_dict() for path in self.checkpoints}

    def say(self, line: str, note: bool = True) -> None:
        print(line, file=sys.stderr, flush=True)
        if note:
            self.notes.append(line)

    # -- probes --------------------------------------------------------------------------
    def _source(self, key: tuple, make):
        if key not in self._sources:
            self._sources[key] = make()
        return self._sources[key]

    def probe_sources(self, settings: dict) -> list:
        """The checkpoints' sources, then the baselines' (of the first checkpoint's config)."""
        from davinci_zoo.checkpoint import CheckpointError
        from davinci_zoo.probes.sources import DaVinciSource, PixelSource, TokenizerSource

        sources = [
            self._source(
                ('davinci', path),
                lambda path=path: DaVinciSource(path, self.models[path], path, device=self.device),
            )
            for path in self.checkpoints
        ]
        first = self.checkpoints[0]
        model = self.models[first]
        grid = settings.get('tokenizer_max_grid', 8)
        side = settings.get('pixels_max_side', 32)
        makers = dict(
            random=lambda: DaVinciSource('random', model, None, seed=0, device=self.device),
            tokenizer=lambda: TokenizerSource('tokenizer', model, first, grid, self.device),
            pixels=lambda: PixelSource('pixels', model.get('image_size', 256), side),
        )
        settings_of = dict(random=(), tokenizer=(grid,), pixels=(side,))
        for name in self.baselines:
            key = (name, *settings_of[name])
            try:
                sources.append(self._source(key, makers[name]))
            except CheckpointError as error:
                self._sources[key] = None
                self.say(f'baseline {name}: not run ({error})')
        return [source for source in sources if source is not None]

    def run_probe_task(self, task) -> None:
        from davinci_zoo.checkpoint import CheckpointError
        from davinci_zoo.probes.probe_task import ProbeDataError, missing_data, run_probe

        cfg = load_config(task.config)
        probe_data, settings = cfg.get('probe_data'), dict(cfg.get('probe') or {})
        if not isinstance(probe_data, dict):
            raise UserError(f'{task.config} defines no probe_data (its _base_ dataset file)')
        missing = missing_data(probe_data)
        if missing:
            self.skipped += 1
            self.say(f'{task.name}: skipped, its data is not at {missing}')
            return
        self.ran += 1
        classifier = self.args.classifier or settings.get('classifier', 'bn_linear')
        for source in self.probe_sources(settings):
            try:
                row = run_probe(
                    task.name,
                    probe_data.to_dict(),
                    settings,
                    source,
                    self.cache,
                    classifier,
                    self.device,
                )
            except (CheckpointError, ProbeDataError) as error:
                self.failed += 1
                self.say(f'{task.name} / {source.label}: failed: {error}')
                continue
            self.rows.append(row)
            self.say(
                f'{task.name} / {row.model}: {row.metric} {row.value:.2f} ({row.detail})', False
            )

    # -- GLUE ----------------------------------------------------------------------------
    def run_glue_task(self, task) -> None:
        from davinci_zoo.probes.glue_task import TaskFailed, glue_settings, run_glue

        try:
            data_root, _, _ = glue_settings(task.config)
        except TaskFailed as error:
            raise UserError(str(error)) from None
        if not osp.exists(data_root):
            self.skipped += 1
            self.say(f'{task.name}: skipped, its data is not at {data_root}')
            return
        self.ran += 1
        starts = [(path, path) for path in self.checkpoints]
        if 'random' in self.baselines:
            starts.append(('random', None))
        for label, start in starts:
            try:
                rows = run_glue(
                    task.name, task.config, start, label, self.args.out, self.args.cache_dir, TOOLS
                )
            except TaskFailed as error:
                self.failed += 1
                self.say(f'{task.name} / {label}: failed: {error}')
                continue
            self.rows += rows
            for row in rows:
                self.say(
                    f'{task.name} / {label}: {row.metric} {row.value:.2f} ({row.detail})', False
                )


def _default_device() -> str:
    import torch

    return 'cuda' if torch.cuda.is_available() else 'cpu'


def main(argv=None):
    from davinci_zoo.probes.results import write_results
    from davinci_zoo.probes.tasks import PROBE, known_tasks, select_tasks

    args = parse_args(argv)
    begin = time.perf_counter()
    try:
        tasks = select_tasks(_names(args.tasks), known_tasks(args.configs))
    except ValueError as error:
        raise UserError(str(error)) from None
    suite = Suite(args, probes=any(task.kind == PROBE for task in tasks))
    for task in tasks:
        if task.kind == PROBE:
            suite.run_probe_task(task)
        else:
            suite.run_glue_task(task)
    paths = write_results(suite.rows, suite.notes, args.out)
    print(
        f'{suite.ran} tasks run, {suite.skipped} skipped (data absent), {suite.failed} failed; '
        f'{len(suite.rows)} rows in {", ".join(paths)} ({time.perf_counter() - begin:.1f} s)'
    )
    return suite


if __name__ == '__main__':
    suite = run_tool(main)
    sys.exit(1 if suite.failed else 0)
