"""Export a trained image tokenizer as the weights file DaVinci configs read.

python tools/export_tokenizer.py CHECKPOINT_OR_WORK_DIR OUT.safetensors [--config CONFIG]

CHECKPOINT is what ``tools/train.py`` wrote for a tokenizer config (``iter_N.pth``); a work
dir stands for its newest checkpoint (its ``last_checkpoint``). ``--config`` (the DaVinci
config that will paint with it, or the tokenizer config) checks that the weights fit its
``model.image_tokenizer`` exactly before anything is written. Then train DaVinci with
``--cfg-options model.image_tokenizer.checkpoint=OUT.safetensors``.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import UserError, load_config, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export an image tokenizer for DaVinci.')
    parser.add_argument('checkpoint', help='tokenizer training checkpoint, or its work dir')
    parser.add_argument('out', help='output file (.safetensors or .pth)')
    parser.add_argument('--config', help="check the weights fit this config's image_tokenizer")
    return parser.parse_args(argv)


def resolve_checkpoint(path: str) -> str:
    """A checkpoint file, or the newest one a work dir names in ``last_checkpoint``."""
    if not osp.isdir(path):
        return path
    pointer = osp.join(path, 'last_checkpoint')
    if not osp.isfile(pointer):
        raise UserError(f'{path} is a directory without last_checkpoint; name the .pth file')
    with open(pointer) as stream:
        return stream.read().strip()


def tokenizer_config(config_path: str | None) -> dict | None:
    """``model.image_tokenizer`` of the config, or None without ``--config``."""
    if config_path is None:
        return None
    cfg = load_config(config_path)
    tokenizer = cfg.get('model', {}).get('image_tokenizer')
    if not isinstance(tokenizer, dict):
        raise UserError(f'config {config_path} has no model.image_tokenizer to check against')
    return tokenizer


def main(argv=None):
    args = parse_args(argv)
    from davinci_zoo.models.tokenizer_export import export_tokenizer

    checkpoint = resolve_checkpoint(args.checkpoint)
    try:
        weights = export_tokenizer(checkpoint, args.out, tokenizer_config(args.config))
    except ValueError as error:
        raise UserError(str(error)) from None
    parameters = sum(tensor.numel() for tensor in weights.values())
    print(f'wrote {args.out}: {len(weights)} tensors, {parameters:,} values, from {checkpoint}')
    print(f'use it with --cfg-options model.image_tokenizer.checkpoint={args.out}')
    return args.out


if __name__ == '__main__':
    run_tool(main)
