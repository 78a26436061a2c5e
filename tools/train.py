"""Train a model from a config with mmengine's Runner.

One process (CPU or one GPU):
    python tools/train.py configs/davinci_base.py [--work-dir DIR]
Several GPUs on this machine:
    bash tools/dist_train.sh configs/davinci_base.py 8
Two CPU processes (gloo), e.g. to try DDP without a GPU:
    torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch
A Slurm cluster:
    bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR

Resume: ``--resume`` continues from the newest loadable checkpoint in the work dir (and starts
fresh if there is none); ``--resume PATH`` continues from that file.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import (
    UserError,
    add_cfg_options_argument,
    apply_cfg_options,
    check_input_paths,
    check_tokenizer_weights,
    load_config,
    run_tool,
    set_work_dir,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a davinci-zoo model.')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)'
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        metavar='PATH',
        help='resume from PATH, or without PATH from the newest checkpoint in the work dir',
    )
    parser.add_argument('--amp', action='store_true', help='mixed precision (needs a GPU)')
    add_cfg_options_argument(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args):
    import torch

    from davinci_zoo.engine.runtime import find_resumable_checkpoint

    cfg = load_config(args.config)
    apply_cfg_options(cfg, args.cfg_options)
    check_input_paths(cfg, ('model', 'train_dataloader'))
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        if not torch.cuda.is_available():
            raise UserError(
                '--amp needs a CUDA GPU and none is available; on a CPU train in '
                'fp32 (bf16 matrix products are ~400x slower on this kind of CPU)'
            )
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        found = find_resumable_checkpoint(cfg.work_dir)
        cfg.resume, cfg.load_from = found is not None, found
    elif args.resume:
        if not osp.isfile(args.resume):
            raise UserError(f'--resume checkpoint {args.resume} does not exist')
        cfg.resume, cfg.load_from = True, args.resume
    check_tokenizer_weights(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from davinci_zoo.engine.runtime import (
        build_runner,
        check_checkpoint_fits,
        fit_schedulers_to_run,
        prepare_cpu_distributed,
        setup_runtime,
    )

    setup_runtime()
    cfg = build_config(args)
    prepare_cpu_distributed(cfg)
    changes = fit_schedulers_to_run(cfg)
    runner = build_runner(cfg)
    for change in changes:
        runner.logger.warning(f'param_scheduler: {change}')
    if cfg.get('load_from'):
        check_checkpoint_fits(runner.model, cfg.load_from)
    runner.train()
    return runner


if __name__ == '__main__':
    run_tool(main)
