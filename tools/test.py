"""Evaluate a checkpoint with the test loop of its config.

python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
torchrun --nproc_per_node=2 tools/test.py CONFIG CHECKPOINT --launcher pytorch
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import (
    UserError,
    add_cfg_options_argument,
    apply_cfg_options,
    check_input_paths,
    load_config,
    run_tool,
    set_work_dir,
    skip_start_weights,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a davinci-zoo checkpoint.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file (.pth or .safetensors)')
    parser.add_argument('--work-dir', help='where the evaluation logs go')
    parser.add_argument('--metrics-json', help='also write the metrics to this JSON file')
    add_cfg_options_argument(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from davinci_zoo.engine.runtime import (
        build_runner,
        check_checkpoint_fits,
        prepare_cpu_distributed,
        setup_runtime,
    )

    setup_runtime()
    if not osp.isfile(args.checkpoint):
        raise UserError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_config(args.config)
    apply_cfg_options(cfg, args.cfg_options)
    if isinstance(cfg.get('model'), dict):
        skip_start_weights(cfg)  # the tested checkpoint holds all the model's weights
    check_input_paths(cfg, ('model', 'test_dataloader'))
    if not cfg.get('test_evaluator'):
        raise UserError(
            f'config {args.config} has no test_evaluator, so nothing would be scored; for '
            "image-caption sets use test_evaluator = dict(type='WritePaintMetric') "
            '(docs/custom_data.md)'
        )
    # Testing builds nothing of training (hooks that read runner.iter would build its data).
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    set_work_dir(cfg, args.config, args.work_dir)
    prepare_cpu_distributed(cfg)
    runner = build_runner(cfg)
    check_checkpoint_fits(runner.model, args.checkpoint)
    metrics = runner.test()
    if args.metrics_json:
        import json

        from davinci_zoo.checkpoint import atomic_write

        text = json.dumps({k: float(v) for k, v in metrics.items()}, indent=2)
        atomic_write(args.metrics_json, lambda stream: stream.write(text.encode()))
    return metrics


if __name__ == '__main__':
    run_tool(main)
