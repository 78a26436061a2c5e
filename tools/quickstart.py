"""The CPU quick start: procedural scenes -> a tiny image tokenizer -> a tiny DaVinci -> scores.

    python tools/quickstart.py [--work-dir work_dirs/quickstart] [--smoke]

Runs, as child processes, the same commands a user would:
 1. ``tools/train.py configs/tokenizers/vqgan_f4_scenes32.py`` (the tokenizer),
 2. ``tools/test.py`` on it (PSNR, SSIM, codebook usage, analyser accuracy on reconstructions),
 3. ``tools/train.py configs/davinci_tiny_scenes32.py`` with the tokenizer's weights,
 4. ``tools/test.py`` on DaVinci: caption and paint accuracy on 400 held-out scenes.
Everything is seeded and runs a fixed number of steps; ``--smoke`` runs far fewer (for CI).
The work dir ends up with checkpoints, ``davinci/<run>/captions.tsv`` (written captions of
the test images), ``davinci/<run>/paintings.png`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout

from davinci_zoo.cli import UserError, run_tool

TOKENIZER_CONFIG = osp.join(REPO, 'configs', 'tokenizers', 'vqgan_f4_scenes32.py')
DAVINCI_CONFIG = osp.join(REPO, 'configs', 'davinci_tiny_scenes32.py')
# The smoke run (CI): a tokenizer that reads back most scenes and a DaVinci trained just long
# enough to write and paint most one-object scenes, on the first 20k of the 200k training
# scenes; its measurements are in docs/experiments/quickstart.md.
SMOKE = dict(
    tokenizer_iters=1100,
    davinci_iters=320,
    davinci_warmup=50,
    davinci_scenes=20_000,
    test_scenes=100,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train and score a tiny DaVinci on a CPU.')
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument(
        '--smoke',
        action='store_true',
        help=f'a short run for CI ({SMOKE["tokenizer_iters"]} tokenizer and '
        f'{SMOKE["davinci_iters"]} DaVinci steps)',
    )
    return parser.parse_args(argv)


def run_step(title: str, args: list[str], log_path: str) -> None:
    """Run a tool, showing its progress lines, keeping its full log."""
    print(f'\n== {title}', flush=True)
    with open(log_path, 'w') as log:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED='1'),  # progress lines as they happen
        )
        for line in process.stdout:
            log.write(line)
            if 'Iter(train)' in line or 'Iter(test)' in line or line.startswith('error'):
                print('  ' + line.split(' - ')[-1].strip()[:160], flush=True)
        if process.wait():
            raise UserError(f'{title} failed (exit {process.returncode}); see {log_path}')


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    tok_dir, dv_dir = osp.join(work, 'tokenizer'), osp.join(work, 'davinci')
    tok_opts, dv_opts, test_opts = [], [], []
    if args.smoke:
        iters = SMOKE['tokenizer_iters']
        tok_opts = [
            f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            f'param_scheduler.1.end={iters}',
            'default_hooks.logger.interval=25',
            'val_dataloader.dataset.num_scenes=100',
        ]
        iters, warmup = SMOKE['davinci_iters'], SMOKE['davinci_warmup']
        dv_opts = [
            f'train_cfg.max_iters={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            f'param_scheduler.0.end={warmup}',
            f'param_scheduler.1.begin={warmup}',
            f'param_scheduler.1.end={iters}',
            f'train_dataloader.dataset.num_scenes={SMOKE["davinci_scenes"]}',
            'default_hooks.logger.interval=25',
        ]
        test_opts = [f'test_dataloader.dataset.num_scenes={SMOKE["test_scenes"]}']

    run_step(
        '1/4 train the image tokenizer',
        [
            'tools/train.py',
            TOKENIZER_CONFIG,
            '--work-dir',
            tok_dir,
            '--cfg-options',
            *tok_opts,
            'randomness.seed=0',
        ],
        osp.join(work, 'tokenizer_train.log'),
    )
    tok_ckpt = _last_checkpoint(tok_dir)
    tok_weights = osp.join(tok_dir, 'vqgan.safetensors')
    from davinci_zoo.models.tokenizer_export import export_tokenizer  # = tools/export_tokenizer.py

    export_tokenizer(tok_ckpt, tok_weights)
    scores = osp.join(work, 'tokenizer_metrics.json')
    run_step(
        '2/4 score the tokenizer',
        [
            'tools/test.py',
            TOKENIZER_CONFIG,
            tok_ckpt,
            '--work-dir',
            tok_dir,
            '--metrics-json',
            scores,
            *(['--cfg-options', *test_opts] if test_opts else []),
        ],
        osp.join(work, 'tokenizer_test.log'),
    )
    tokenizer_scores = read_json(scores)

    run_step(
        '3/4 train DaVinci (write, paint, match texts to images)',
        [
            'tools/train.py',
            DAVINCI_CONFIG,
            '--work-dir',
            dv_dir,
            '--cfg-options',
            f'model.image_tokenizer.checkpoint={tok_weights}',
            *dv_opts,
            'randomness.seed=0',
        ],
        osp.join(work, 'davinci_train.log'),
    )
    dv_ckpt = _last_checkpoint(dv_dir)
    training_losses = logged_losses(dv_dir)  # before tools/test.py adds its own run to dv_dir
    scores = osp.join(work, 'davinci_metrics.json')
    run_step(
        '4/4 score writing and painting on held-out scenes',
        [
            'tools/test.py',
            DAVINCI_CONFIG,
            dv_ckpt,
            '--work-dir',
            dv_dir,
            '--metrics-json',
            scores,
            '--cfg-options',
            f'model.image_tokenizer.checkpoint={tok_weights}',
            *test_opts,
        ],
        osp.join(work, 'davinci_test.log'),
    )
    davinci_scores = read_json(scores)

    summary = dict(
        smoke=args.smoke,
        wall_seconds=round(time.time() - start, 1),
        tokenizer=tokenizer_scores,
        davinci=davinci_scores,
        davinci_training_losses=training_losses,
        davinci_checkpoint=dv_ckpt,
        tokenizer_weights=tok_weights,
    )
    with open(osp.join(work, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print('\n' + json.dumps(summary, indent=2))
    print(
        f'\nquick start finished in {summary["wall_seconds"] / 60:.1f} minutes; '
        f'captions and paintings are in {dv_dir}'
    )
    return summary


def logged_losses(work_dir: str) -> dict[str, dict[str, float]]:
    """The first and last logged value of each loss of the newest training run in ``work_dir``.

    Reads mmengine's ``<timestamp>/vis_data/scalars.json`` (one JSON object per logged step;
    values are averages over the logger's window).
    """
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not runs:
        raise UserError(f'no training log (vis_data/scalars.json) was written in {work_dir}')
    with open(runs[-1]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    summary = {}
    for name in sorted({k for row in rows for k in row if k.startswith('loss')}):
        values = [row[name] for row in rows if name in row]
        summary[name] = dict(first=values[0], last=values[-1])
    return summary


def _last_checkpoint(work_dir: str) -> str:
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise UserError(f'no checkpoint was written in {work_dir}')
    with open(pointer) as f:
        return f.read().strip()


if __name__ == '__main__':
    run_tool(main)
