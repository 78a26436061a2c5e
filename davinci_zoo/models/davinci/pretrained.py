"""Start a task model from a pretraining checkpoint: strictly, except for the head.

mmengine's ``load_from`` loads non-strictly and only warns, so a checkpoint of another width or
with missing encoder keys would fine-tune from a half-random model. :func:`load_pretrained`
refuses that in one line naming the keys. What it allows, on purpose:

- the task head's keys (``head.``) may be missing from the checkpoint (they start fresh), and
  a checkpoint's own head keys are dropped when the task model's head does not have them;
- the image tokenizer's keys are dropped when the task model does not build one, and so are
  the parameters pretraining objectives own (``objectives.``: ITC's projections, MLM's head);
- the image resolution may change: the image embedder's position table
  (``image_embedder.pos_embed``, [1, 1 + h*w, D]) and the encoder's 2-D relative bias
  tables ([(2h-1)(2w-1), heads]) are resized bicubically to the task's token grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from mmengine.logging import print_log

from ...checkpoint import (
    OBJECTIVE_WEIGHTS_PREFIX,
    CheckpointMismatchError,
    listed_keys,
    load_checkpoint_file,
    mismatch_problems,
    state_dict_of,
)
from ..parts import IMAGE_TOKENIZER
from .original_weights import resize_pos_embed

HEAD = 'head'
POS_EMBED = 'image_embedder.pos_embed'
RELATIVE_TABLE = 'relative_bias_table'


@dataclass
class PretrainedReport:
    """What :func:`load_pretrained` did: keys loaded, left new, dropped and resized."""

    loaded: int = 0
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)

    def summary(self, path: str) -> str:
        parts = [f'loaded {self.loaded} tensors from {path}']
        for label, keys in (('new', self.new), ('dropped', self.dropped)):
            if keys:
                parts.append(f'{label} ({len(keys)}): {listed_keys(keys)}')
        if self.resized:
            parts.append(f'resized to the task resolution: {listed_keys(self.resized)}')
        return '; '.join(parts)


def load_pretrained(model: torch.nn.Module, path: str) -> PretrainedReport:
    """Load the weights of ``path`` (a training checkpoint or a bare state dict) into a
    DaVinci strictly except for the head, resizing image position tables; raises
    CheckpointMismatchError naming the keys that do not fit."""
    state = dict(state_dict_of(load_checkpoint_file(path)))
    expected = model.state_dict()
    report = PretrainedReport()
    report.dropped = sorted(key for key in state if key not in expected and _optional(key))
    for key in report.dropped:
        del state[key]
    report.resized = _resize_image_tables(state, expected)
    _check_fits(state, expected, path)
    report.new = sorted(set(expected) - set(state))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert sorted(missing) == report.new and not unexpected  # checked above
    report.loaded = len(state)
    print_log(report.summary(path), logger='current')
    return report


def _optional(key: str) -> bool:
    """Keys a task model may leave out: a head's, the image tokenizer's, the objectives'."""
    return key.startswith((f'{HEAD}.', f'{IMAGE_TOKENIZER}.', OBJECTIVE_WEIGHTS_PREFIX))


def _resize_image_tables(
    state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> list[str]:
    """Resize the position table and the 2-D relative bias tables in place to the model's
    token grid; returns the keys that changed."""
    resized = []
    table = state.get(POS_EMBED)
    if table is not None and table.shape != expected[POS_EMBED].shape:
        if table.shape[::2] != expected[POS_EMBED].shape[::2]:
            return resized  # another width: reported as a mismatch
        tokens = expected[POS_EMBED].shape[1] - 1
        grid = _grid_of(tokens, key=POS_EMBED)
        state[POS_EMBED] = resize_pos_embed(table, grid)
        resized.append(POS_EMBED)
    for key, value in list(state.items()):
        if not key.endswith(RELATIVE_TABLE) or key not in expected:
            continue
        if value.shape != expected[key].shape and value.shape[1:] == expected[key].shape[1:]:
            resized.append(key)  # RelativePositionBias2d resizes it while loading
    return resized


def _grid_of(tokens: int, key: str) -> tuple[int, int]:
    side = int(round(tokens**0.5))
    if side * side != tokens:
        raise CheckpointMismatchError(f'{key}: cannot resize to a non-square grid of {tokens}')
    return side, side


def _check_fits(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], path: str
) -> None:
    problems = mismatch_problems(
        expected,
        state,
        may_miss=lambda key: key.startswith(f'{HEAD}.'),
        may_differ=lambda key: (
            key.endswith(RELATIVE_TABLE) and state[key].shape[1:] == expected[key].shape[1:]
        ),  # resized while loading
    )
    if problems:
        raise CheckpointMismatchError(
            f'model.pretrained {path} does not fit the model built from the config (only the '
            'head may be new): ' + '; '.join(problems)
        )
