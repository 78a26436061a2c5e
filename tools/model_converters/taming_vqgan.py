"""Convert a taming-transformers VQGAN (Lightning ``.ckpt`` + YAML) to davinci-zoo weights.

    python tools/model_converters/taming_vqgan.py vqgan.1024.model.ckpt \
        vqgan.1024.config.yml work_dirs/vqgan_f16_1024

writes ``OUT_DIR/vqgan.safetensors`` (the tokenizer's weights, config in the metadata) and
``OUT_DIR/vqgan_config.py`` (``image_tokenizer = dict(type='VQGAN', ..., checkpoint=...)``).
The discriminator and LPIPS weights (``loss.*``) and anything else that is not part of the
tokenizer are dropped and listed. An original DaVinci checkpoint (weights under ``model``,
tokenizer keys prefixed ``d_vae.model.``) is accepted too; pass the taming YAML with it.

TRUSTED INPUT: the ``.ckpt`` is a pickle container. It is read with davinci-zoo's restricted
unpickler (davinci_zoo.converters.trusted_pickle): tensors and plain containers are rebuilt,
every other pickled object becomes an inert stub, and nothing in the file is executed.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)  # run from a checkout
sys.path.insert(1, osp.join(REPO, 'plugins', 'vqgan'))  # the plugin, installed or not

import torch
import yaml
from davinci_zoo_vqgan.taming import (
    TamingFormatError,
    config_snippet,
    model_weights,
    select_tokenizer_weights,
    tokenizer_prefix,
    vqgan_config_from_yaml,
)
from davinci_zoo_vqgan.vqgan import VQGAN

from davinci_zoo.checkpoint import check_state_dict_matches, save_checkpoint_file
from davinci_zoo.cli import UserError, run_tool
from davinci_zoo.converters.trusted_pickle import load_trusted_container

WEIGHTS_NAME = 'vqgan.safetensors'
CONFIG_NAME = 'vqgan_config.py'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='taming-transformers Lightning .ckpt (trusted input)')
    parser.add_argument('config', help="the checkpoint's taming YAML (model.params.ddconfig ...)")
    parser.add_argument('out_dir', help=f'where to write {WEIGHTS_NAME} and {CONFIG_NAME}')
    return parser.parse_args(argv)


def read_yaml(path: str) -> dict:
    if not osp.isfile(path):
        raise UserError(f'config file {path} does not exist')
    try:
        with open(path, encoding='utf-8') as stream:
            return yaml.safe_load(stream) or {}
    except yaml.YAMLError as error:
        raise UserError(f'{path} is not valid YAML: {error}') from None


def read_container(path: str):
    if not osp.isfile(path):
        raise UserError(f'checkpoint {path} does not exist')
    print(
        f'TRUSTED INPUT: reading {path}, a pickle container, with a restricted unpickler: '
        'only tensors and plain containers are rebuilt, other objects become inert stubs, '
        'nothing in the file is executed.'
    )
    try:
        return load_trusted_container(path)
    except Exception as error:  # a corrupt or foreign file, not a bug of ours
        raise UserError(f'{path} is not a readable torch checkpoint: {error}') from None


def shape_only_vqgan(config: dict) -> VQGAN:
    """The tokenizer on the meta device: names and shapes of its weights, no memory."""
    with torch.device('meta'):
        return VQGAN(**config)


def convert(checkpoint_path: str, yaml_path: str, out_dir: str) -> str:
    """Convert and write the two files; return the path of the weights."""
    try:
        config = vqgan_config_from_yaml(read_yaml(yaml_path), where=yaml_path)
        weights = model_weights(read_container(checkpoint_path), where=checkpoint_path)
        prefix = tokenizer_prefix(weights, where=checkpoint_path)
        model = shape_only_vqgan(config)
        kept, dropped = select_tokenizer_weights(weights, model.state_dict(), prefix)
    except (TamingFormatError, ValueError) as error:
        raise UserError(str(error)) from None
    check_state_dict_matches(model, kept, source=f'{checkpoint_path} with {yaml_path}')
    for group, count in dropped.items():
        print(f'dropped {count} key(s) under {group} (not part of the tokenizer)')
    out_dir = osp.abspath(out_dir)
    weights_path = osp.join(out_dir, WEIGHTS_NAME)
    meta = dict(
        config=config,
        source=osp.basename(checkpoint_path),
        converter='tools/model_converters/taming_vqgan.py',
        key_prefix=prefix,
    )
    save_checkpoint_file({'state_dict': kept, 'meta': meta}, weights_path)
    with open(osp.join(out_dir, CONFIG_NAME), 'w', encoding='utf-8') as stream:
        stream.write(config_snippet(config, weights_path, osp.basename(checkpoint_path)))
    print(f'wrote {len(kept)} tensors to {weights_path} and {osp.join(out_dir, CONFIG_NAME)}')
    return weights_path


def main(argv=None) -> None:
    args = parse_args(argv)
    convert(args.checkpoint, args.config, args.out_dir)


if __name__ == '__main__':
    run_tool(main)
