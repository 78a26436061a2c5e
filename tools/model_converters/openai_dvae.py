"""Convert OpenAI's DALL-E dVAE (``encoder.pkl``, ``decoder.pkl``) to a davinci-zoo checkpoint.

    python tools/model_converters/openai_dvae.py encoder.pkl decoder.pkl OUT_DIR

writes ``OUT_DIR/dvae.safetensors`` (keys ``encoder.blocks.*`` and ``decoder.blocks.*``, the
config in its metadata) and ``OUT_DIR/dvae_config.py`` holding
``image_tokenizer = dict(type='DVAE', ..., checkpoint='OUT_DIR/dvae.safetensors')``; the
``DVAE`` type comes from the plugin in plugins/dvae (``pip install -e plugins/dvae``).

The two files pickle whole ``dall_e`` modules. They are read with the restricted unpickler of
:mod:`davinci_zoo.converters.trusted_pickle`: only tensors and plain containers are rebuilt,
every class becomes an inert stub, nothing in the files runs and ``dall_e`` is never imported.
The layout (codebook size, n_hid, blocks per group, groups, n_init) is read from the tensor
shapes and key names and cross-checked with the attrs fields the pickles hold.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import pickle
import re
import sys
import zipfile

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, _REPO)  # run from a checkout
sys.path.insert(1, osp.join(_REPO, 'plugins', 'dvae'))  # the DVAE plugin of this checkout

import torch

from davinci_zoo.checkpoint import (
    atomic_write,
    check_state_dict_matches,
    save_checkpoint_file,
)
from davinci_zoo.cli import UserError, run_tool
from davinci_zoo.converters.trusted_pickle import (
    Stub,
    load_trusted_container,
    module_state_dict,
)

TRUSTED_INPUT_NOTICE = (
    'TRUSTED INPUT: reading {files} with a restricted unpickler: tensors and plain containers '
    'only, every class replaced by an inert stub; nothing in the files is imported or executed.'
)
CHECKPOINT_NAME = 'dvae.safetensors'
CONFIG_NAME = 'dvae_config.py'
#: attrs fields of dall_e's Encoder/Decoder -> our DVAE argument they must equal.
ATTRS_FIELDS = {
    'vocab_size': 'codebook_size',
    'n_hid': 'n_hid',
    'n_blk_per_group': 'n_blk_per_group',
    'group_count': 'group_count',
    'n_init': 'n_init',
    'input_channels': 'input_channels',
    'output_channels': 'input_channels',
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert OpenAI's DALL-E dVAE encoder.pkl/decoder.pkl to a davinci-zoo "
        'DVAE checkpoint (.safetensors) and config.'
    )
    parser.add_argument('encoder_pkl', help="OpenAI's encoder.pkl")
    parser.add_argument('decoder_pkl', help="OpenAI's decoder.pkl")
    parser.add_argument('out_dir', help=f'where {CHECKPOINT_NAME} and {CONFIG_NAME} are written')
    return parser.parse_args(argv)


# -- reading ---------------------------------------------------------------------------------
def read_module(path: str, role: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and attrs fields of the ``role`` ('encoder'/'decoder') pickled in ``path``."""
    if not osp.isfile(path):
        raise UserError(f'{role} file {path} does not exist')
    try:
        container = load_trusted_container(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        raise UserError(f'{path} is not a readable torch-saved {role}: {e}') from None
    if isinstance(container, Stub):
        _check_role(container, path, role)
        fields = container.stub_state if isinstance(container.stub_state, dict) else {}
        tensors = module_state_dict(container)
    elif isinstance(container, dict) and all(torch.is_tensor(v) for v in container.values()):
        fields, tensors = {}, dict(container)  # a bare state dict
    else:
        raise UserError(
            f'{path} holds {container!r}, not a pickled dall_e {role} module or a state dict'
        )
    if not tensors:
        raise UserError(f'{path} holds no tensors; expected the dall_e {role}')
    return tensors, {key: value for key, value in fields.items() if key in ATTRS_FIELDS}


def _check_role(stub: Stub, path: str, role: str) -> None:
    other = 'decoder' if role == 'encoder' else 'encoder'
    if other in stub.stub_name.lower():
        raise UserError(
            f'{path} holds a {stub.stub_name}; pass the encoder file first and the decoder second'
        )


# -- layout ----------------------------------------------------------------------------------
def _tensor(tensors: dict, key: str, role: str) -> torch.Tensor:
    if key not in tensors:
        raise UserError(f'the {role} has no {key}; it is not a dall_e {role}')
    return tensors[key]


def _groups(tensors: dict, role: str) -> tuple[int, int]:
    """(group_count, blocks per group) from the ``blocks.group_G.block_K.`` key names."""
    found = {
        (int(match[1]), int(match[2]))
        for key in tensors
        if (match := re.match(r'blocks\.group_(\d+)\.block_(\d+)\.', key))
    }
    groups = sorted({group for group, _ in found})
    if not groups or groups != list(range(1, len(groups) + 1)):
        raise UserError(f'the {role} has groups {groups}; expected blocks.group_1 .. group_N')
    blocks = {group: sorted(block for g, block in found if g == group) for group in groups}
    counts = {len(members) for members in blocks.values()}
    if len(counts) != 1:
        raise UserError(f'the {role} has different numbers of blocks per group: {blocks}')
    return len(groups), counts.pop()


def infer_layout(encoder: dict, decoder: dict) -> dict:
    """The DVAE arguments that fit the two state dicts (keys without the role prefix)."""
    encoder_input = _tensor(encoder, 'blocks.input.w', 'encoder')  # [n_hid, C, 7, 7]
    encoder_output = _tensor(encoder, 'blocks.output.conv.w', 'encoder')  # [K, 2**(G-1)n_hid,..]
    decoder_input = _tensor(decoder, 'blocks.input.w', 'decoder')  # [n_init, K, 1, 1]
    decoder_output = _tensor(decoder, 'blocks.output.conv.w', 'decoder')  # [2C, n_hid, 1, 1]
    encoder_groups = _groups(encoder, 'encoder')
    decoder_groups = _groups(decoder, 'decoder')
    layout = dict(
        codebook_size=encoder_output.shape[0],
        n_hid=encoder_input.shape[0],
        n_blk_per_group=encoder_groups[1],
        group_count=encoder_groups[0],
        input_channels=encoder_input.shape[1],
        n_init=decoder_input.shape[0],
    )
    from_decoder = dict(
        codebook_size=decoder_input.shape[1],
        n_hid=decoder_output.shape[1],
        n_blk_per_group=decoder_groups[1],
        group_count=decoder_groups[0],
        input_channels=decoder_output.shape[0] // 2,
    )
    differences = [
        f'{name} {layout[name]} (encoder) vs {value} (decoder)'
        for name, value in from_decoder.items()
        if layout[name] != value
    ]
    if differences:
        raise UserError(
            'the encoder and decoder do not belong to the same dVAE: ' + '; '.join(differences)
        )
    return {name: int(value) for name, value in layout.items()}


def check_attrs_fields(layout: dict, fields: dict, role: str) -> None:
    """Raise UserError if an attrs field the pickle holds disagrees with the tensor shapes."""
    for field, value in fields.items():
        name = ATTRS_FIELDS[field]
        if isinstance(value, int) and value != layout[name]:
            raise UserError(
                f'the {role} says {field}={value} but its tensors give {name}={layout[name]}'
            )


def check_against_model(layout: dict, state_dict: dict) -> int:
    """Build DVAE(**layout) without memory and check every key and shape; the parameter count."""
    from davinci_zoo_dvae.dvae import DVAE

    with torch.device('meta'):
        model = DVAE(**layout)
    check_state_dict_matches(model, state_dict, source='the converted dall_e weights')
    return sum(parameter.numel() for parameter in model.parameters())


# -- writing ---------------------------------------------------------------------------------
def config_text(layout: dict, checkpoint_path: str, sources: list[str]) -> str:
    arguments = ''.join(f'    {name}={value!r},\n' for name, value in layout.items())
    return (
        f'# DALL-E dVAE converted from {", ".join(sources)} by\n'
        '# tools/model_converters/openai_dvae.py. Needs the davinci-zoo-dvae plugin.\n'
        'image_tokenizer = dict(\n'
        "    type='DVAE',\n"
        f'{arguments}'
        f'    checkpoint={checkpoint_path!r},\n'
        ')\n'
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    print(TRUSTED_INPUT_NOTICE.format(files=f'{args.encoder_pkl} and {args.decoder_pkl}'))
    encoder, encoder_fields = read_module(args.encoder_pkl, 'encoder')
    decoder, decoder_fields = read_module(args.decoder_pkl, 'decoder')
    layout = infer_layout(encoder, decoder)
    check_attrs_fields(layout, encoder_fields, 'encoder')
    check_attrs_fields(layout, decoder_fields, 'decoder')

    state_dict = {
        f'{role}.{key}': tensor.float() if tensor.is_floating_point() else tensor
        for role, tensors in (('encoder', encoder), ('decoder', decoder))
        for key, tensor in tensors.items()
    }
    parameter_count = check_against_model(layout, state_dict)

    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    checkpoint_path = osp.join(out_dir, CHECKPOINT_NAME)
    config_path = osp.join(out_dir, CONFIG_NAME)
    sources = [osp.basename(args.encoder_pkl), osp.basename(args.decoder_pkl)]
    meta = dict(
        config=dict(type='DVAE', **layout),
        converted_from=sources,
        converter='tools/model_converters/openai_dvae.py',
    )
    save_checkpoint_file({'state_dict': state_dict, 'meta': meta}, checkpoint_path)
    text = config_text(layout, checkpoint_path, sources)
    atomic_write(config_path, lambda stream: stream.write(text.encode()))

    summary = ', '.join(f'{name}={value}' for name, value in layout.items())
    print(f'DVAE({summary}): {parameter_count:,} parameters, {len(state_dict)} tensors')
    print(f'wrote {checkpoint_path}')
    print(f'wrote {config_path}')
    return 0


if __name__ == '__main__':
    run_tool(main)
