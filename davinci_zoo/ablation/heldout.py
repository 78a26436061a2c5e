"""Held-out losses: each objective of a pretraining config scored on its test set.

    python -m davinci_zoo.ablation.heldout CONFIG CHECKPOINT --out FILE.json \
        [--seed 0] [--cfg-options k=v ...]

The model runs its objectives (eval mode, no gradients, the global random generators seeded
with ``--seed`` first, so masks and split points repeat) over every batch of the config's
``test_dataloader``. FILE gets ``{"heldout/loss_<name>": mean over rows, ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random

import numpy as np
import torch

from ..cli import (
    UserError,
    add_cfg_options_argument,
    apply_cfg_options,
    check_input_paths,
    load_config,
    run_tool,
)


@torch.no_grad()
def heldout_losses(model, loader, seed: int = 0) -> dict[str, float]:
    """Every ``loss_*`` of ``model.loss`` over ``loader``'s batches, averaged over rows (a
    batch weighs by its size): ``{'heldout/loss_<name>': float}``. The random generators of
    Python, numpy and torch are seeded with ``seed`` first."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model.eval()
    totals, rows = {}, {}
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        count = len(data['data_samples'] or ()) or len(data['inputs']['images'])
        for key, value in model.loss(data['inputs'], data['data_samples']).items():
            if key.startswith('loss'):
                totals[key] = totals.get(key, 0.0) + float(value) * count
                rows[key] = rows.get(key, 0) + count
    if not totals:
        raise UserError('the test set gave no batches (or no objective found its inputs)')
    return {f'heldout/{key}': totals[key] / rows[key] for key in totals}


def build_loader(cfg):
    """The config's test dataloader, built in the zoo's scope."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    with DefaultScope.overwrite_default_scope('davinci_zoo'):
        return Runner.build_dataloader(cfg.test_dataloader.to_dict())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m davinci_zoo.ablation.heldout',
        description="A pretraining checkpoint's objective losses on its config's test set.",
    )
    parser.add_argument('config', help='the pretraining config (its objectives and test set)')
    parser.add_argument('checkpoint', help='the checkpoint to score')
    parser.add_argument('--out', required=True, help='JSON file for the losses')
    parser.add_argument('--seed', type=int, default=0, help='seed of masks and split points')
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> dict[str, float]:
    from ..apis import init_model
    from ..checkpoint import atomic_write
    from ..engine.runtime import setup_runtime

    args = parse_args(argv)
    setup_runtime()
    cfg = load_config(args.config)
    apply_cfg_options(cfg, args.cfg_options)
    if not cfg.get('test_dataloader'):
        raise UserError(f'config {args.config} has no test_dataloader to score the losses on')
    check_input_paths(cfg, ('test_dataloader',))
    if not os.path.isfile(args.checkpoint):
        raise UserError(f'checkpoint {args.checkpoint} does not exist')
    model = init_model(cfg, args.checkpoint)
    losses = heldout_losses(model, build_loader(cfg), args.seed)
    text = json.dumps(losses, indent=2)
    atomic_write(args.out, lambda stream: stream.write(text.encode()))
    print(text)
    return losses


if __name__ == '__main__':
    run_tool(main)
