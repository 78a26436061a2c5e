"""Export a trained image tokenizer: the weights file a DaVinci config's tokenizer reads.

``tools/train.py`` on a tokenizer config saves the whole ``ImageTokenizerTrainer`` (its
tokenizer's weights under ``tokenizer.``, plus optimizer state); DaVinci's
``model.image_tokenizer.checkpoint`` takes the tokenizer's own weights, without the prefix.
"""

from __future__ import annotations

import os

import torch

from ..checkpoint import (
    CheckpointError,
    check_state_dict_matches,
    load_checkpoint_file,
    save_checkpoint_file,
    state_dict_of,
)

#: Where ImageTokenizerTrainer keeps its tokenizer (its attribute name).
TRAINER_PREFIX = 'tokenizer.'
SUFFIXES = ('.safetensors', '.pth')


def export_tokenizer(
    checkpoint: str | os.PathLike, out_path: str | os.PathLike, tokenizer_cfg: dict | None = None
) -> dict[str, torch.Tensor]:
    """Write the tokenizer weights of a tokenizer-training checkpoint to ``out_path``.

    Args:
        checkpoint: a ``.pth`` (or ``.safetensors``) that ``tools/train.py`` wrote for an
            ``ImageTokenizerTrainer`` config.
        out_path: ``.safetensors`` (recommended) or ``.pth``; written atomically.
        tokenizer_cfg: an ``IMAGE_TOKENIZERS`` config (e.g. a DaVinci config's
            ``model.image_tokenizer``): the weights must fit it exactly, checked before
            anything is written. None: not checked.

    Returns:
        The exported state dict (names without ``tokenizer.``).

    Raises:
        CheckpointError: the checkpoint is missing or holds no ``tokenizer.`` weights, or
            (with ``tokenizer_cfg``) they do not fit that tokenizer.
        ValueError: ``out_path`` has another suffix.
    """
    checkpoint, out_path = os.fspath(checkpoint), os.fspath(out_path)
    if not out_path.endswith(SUFFIXES):
        raise ValueError(f'{out_path}: the exported tokenizer must end in .safetensors or .pth')
    state = state_dict_of(load_checkpoint_file(checkpoint))
    weights = {
        key.removeprefix(TRAINER_PREFIX): value
        for key, value in state.items()
        if key.startswith(TRAINER_PREFIX)
    }
    if not weights:
        raise CheckpointError(
            f'{checkpoint} holds no image tokenizer weights (keys starting with '
            f'{TRAINER_PREFIX!r}); give a checkpoint that tools/train.py wrote for a '
            'tokenizer config (model.type ImageTokenizerTrainer)'
        )
    if tokenizer_cfg is not None:
        check_fits(weights, tokenizer_cfg, checkpoint)
    save_checkpoint_file({'state_dict': weights, 'meta': {'source': checkpoint}}, out_path)
    return weights


def check_fits(weights: dict[str, torch.Tensor], tokenizer_cfg: dict, source: str) -> None:
    """Raise CheckpointMismatchError unless ``weights`` load into the tokenizer of
    ``tokenizer_cfg`` exactly (built without its own checkpoint)."""
    from ..registry import IMAGE_TOKENIZERS

    cfg = dict(tokenizer_cfg)
    cfg.pop('checkpoint', None)
    tokenizer = IMAGE_TOKENIZERS.build(cfg)
    check_state_dict_matches(tokenizer, weights, source=f'tokenizer weights of {source}')
