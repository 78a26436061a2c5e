"""Reading taming-transformers VQGAN files: the YAML config and the checkpoint's weights.

Used by ``tools/model_converters/taming_vqgan.py``. The functions here take already-loaded
objects (a parsed YAML dict, a state dict) and raise :class:`TamingFormatError` for input
that does not describe a taming ``VQModel``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch

SUPPORTED_TARGETS = ('taming.models.vqgan.VQModel',)
DDCONFIG_FIELDS = (
    'z_channels',
    'resolution',
    'in_channels',
    'out_ch',
    'ch',
    'ch_mult',
    'num_res_blocks',
    'attn_resolutions',
)


class TamingFormatError(ValueError):
    """A YAML or checkpoint that is not a taming VQGAN; the message names what is wrong."""


def _field(mapping: Any, path: str, where: str) -> Any:
    node = mapping
    for part in path.split('.'):
        if not isinstance(node, Mapping) or part not in node:
            raise TamingFormatError(f'{where} has no {path} (not a taming VQGAN config?)')
        node = node[part]
    return node


def vqgan_config_from_yaml(config: Any, where: str = 'the YAML') -> dict[str, Any]:
    """The ``VQGAN(...)`` keyword arguments of a parsed taming YAML.

    Reads ``model.params.{embed_dim, n_embed, ddconfig}``; ``lossconfig`` is ignored.
    """
    model = config.get('model') if isinstance(config, Mapping) else None
    target = model.get('target') if isinstance(model, Mapping) else None
    if target is not None and target not in SUPPORTED_TARGETS:
        raise TamingFormatError(
            f'{where} describes {target}; only {", ".join(SUPPORTED_TARGETS)} is supported'
        )
    values = {
        name: _field(config, f'model.params.ddconfig.{name}', where) for name in DDCONFIG_FIELDS
    }
    ddconfig = _field(config, 'model.params.ddconfig', where)
    if ddconfig.get('double_z', False):
        raise TamingFormatError(
            f'{where} sets model.params.ddconfig.double_z: true; a VQModel needs false'
        )
    try:
        return dict(
            ch=int(values['ch']),
            ch_mult=[int(m) for m in values['ch_mult']],
            num_res_blocks=int(values['num_res_blocks']),
            attn_resolutions=[int(r) for r in values['attn_resolutions']],
            z_channels=int(values['z_channels']),
            embed_dim=int(_field(config, 'model.params.embed_dim', where)),
            codebook_size=int(_field(config, 'model.params.n_embed', where)),
            resolution=int(values['resolution']),
            in_channels=int(values['in_channels']),
            out_ch=int(values['out_ch']),
            dropout=float(ddconfig.get('dropout', 0.0)),
        )
    except (TypeError, ValueError) as error:
        raise TamingFormatError(f'{where} has a malformed model.params value: {error}') from None


def model_weights(checkpoint: Any, where: str = 'the checkpoint') -> Mapping[str, Any]:
    """The weight dict of a loaded container: Lightning's ``state_dict`` or DaVinci's ``model``."""
    if isinstance(checkpoint, Mapping):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), Mapping):
                return checkpoint[key]
    keys = ', '.join(map(str, list(checkpoint)[:8])) if isinstance(checkpoint, Mapping) else ''
    raise TamingFormatError(
        f'{where} has no state_dict (a taming Lightning checkpoint keeps its weights there); '
        f'found {type(checkpoint).__name__}' + (f' with keys {keys}' if keys else '')
    )


def tokenizer_prefix(state_dict: Mapping[str, Any], where: str = 'the checkpoint') -> str:
    """The prefix of the VQGAN's keys: '' for taming, 'd_vae.model.' in a DaVinci checkpoint."""
    anchor = 'quantize.embedding.weight'
    prefixes = sorted(key[: -len(anchor)] for key in state_dict if key.endswith(anchor))
    prefixes = [p for p in prefixes if p == '' or p.endswith('.')]
    if not prefixes:
        raise TamingFormatError(f'{where} has no {anchor} (no VQGAN codebook in it)')
    if len(prefixes) > 1:
        raise TamingFormatError(
            f'{where} holds several codebooks ({", ".join(p + anchor for p in prefixes)})'
        )
    return prefixes[0]


def select_tokenizer_weights(
    state_dict: Mapping[str, Any], expected: Mapping[str, torch.Tensor], prefix: str = ''
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Split a checkpoint's weights into the tokenizer's and the rest.

    Args:
        state_dict: the checkpoint's weights (taming keys, possibly under ``prefix``).
        expected: the tokenizer's own state dict (names and shapes; values unused).
        prefix: stripped from the keys first; keys without it are not the tokenizer's.

    Returns:
        ``(kept, dropped)``: the tokenizer's float32 tensors under our names, and the number
        of dropped keys per group (the first two name components, e.g. ``loss.discriminator``).

    Raises:
        TamingFormatError: naming the tokenizer keys the checkpoint lacks.
    """
    kept: dict[str, torch.Tensor] = {}
    dropped: Counter[str] = Counter()
    for key, value in state_dict.items():
        name = key[len(prefix) :] if key.startswith(prefix) else None
        if name in expected and isinstance(value, torch.Tensor):
            tensor = value.detach()
            kept[name] = (tensor.float() if tensor.is_floating_point() else tensor).clone()
        else:
            dropped['.'.join(str(key).split('.')[:2])] += 1
    missing = sorted(set(expected) - set(kept))
    if missing:
        shown = ', '.join(prefix + key for key in missing[:5])
        more = f' and {len(missing) - 5} more' if len(missing) > 5 else ''
        raise TamingFormatError(f'the checkpoint lacks {len(missing)} VQGAN keys: {shown}{more}')
    return kept, dict(sorted(dropped.items()))


def config_snippet(config: Mapping[str, Any], checkpoint_path: str, source: str) -> str:
    """A davinci-zoo config file defining ``image_tokenizer = dict(type='VQGAN', ...)``."""
    lines = [
        f'# VQGAN converted from {source} by tools/model_converters/taming_vqgan.py.',
        '# Use it as, e.g., model = dict(..., image_tokenizer=image_tokenizer).',
        'image_tokenizer = dict(',
        "    type='VQGAN',",
        *(f'    {name}={value!r},' for name, value in config.items()),
        f'    checkpoint={checkpoint_path!r},',
        ')',
    ]
    return '\n'.join(lines) + '\n'
