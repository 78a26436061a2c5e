"""``python -m davinci_zoo_scenes.tasks``: write the scene tasks with one seeded command."""

from __future__ import annotations

import argparse
import time

from davinci_zoo.cli import UserError

from ..render import MIN_IMAGE_SIZE
from . import TASKS, generate_task
from .classification import CIFAR_IMAGE_SIZE


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m davinci_zoo_scenes.tasks',
        description=(
            'Write VQAv2, NLVR2, SNLI-VE, COCO-caption, CIFAR/ImageFolder classification and '
            'MRPC sentence-pair versions of the scenes.'
        ),
    )
    parser.add_argument('--out', default='data/scenes_tasks', help='folder of the task folders')
    parser.add_argument('--seed', type=int, default=0, help='every file depends on it alone')
    parser.add_argument(
        '--tasks', default=','.join(TASKS), help=f'comma-separated, from {",".join(TASKS)}'
    )
    parser.add_argument(
        '--scale', type=float, default=1.0, help='multiplies every split size (1: ~3k train)'
    )
    parser.add_argument('--image-size', type=int, default=32, help='image side in pixels')
    return parser.parse_args(argv)


def check_args(args):
    """The task names asked for, each once; UserError for a bad argument."""
    tasks = [name.strip() for name in args.tasks.split(',') if name.strip()]
    unknown = [name for name in tasks if name not in TASKS]
    if unknown or not tasks:
        raise UserError(
            f'--tasks: unknown {", ".join(unknown) or "(none given)"}; '
            f'choose from {",".join(TASKS)}'
        )
    if not args.scale > 0:
        raise UserError(f'--scale must be a positive number, got {args.scale}')
    if args.image_size < MIN_IMAGE_SIZE:
        raise UserError(f'--image-size must be at least {MIN_IMAGE_SIZE}, got {args.image_size}')
    if 'classification' in tasks and args.image_size != CIFAR_IMAGE_SIZE:
        raise UserError(
            f'--image-size {args.image_size}: classification writes CIFAR-10 files of '
            f'{CIFAR_IMAGE_SIZE} px images; leave it out of --tasks or use --image-size 32'
        )
    return list(dict.fromkeys(tasks))


def main(argv=None):
    args = parse_args(argv)
    for task in check_args(args):
        start = time.perf_counter()
        try:
            meta = generate_task(task, args.out, args.seed, args.scale, args.image_size)
        except FileExistsError as error:
            raise UserError(str(error)) from None
        counts = ', '.join(f'{split} {count}' for split, count in meta['splits'].items())
        print(f'{args.out}/{task}: {counts} ({time.perf_counter() - start:.1f} s)')
