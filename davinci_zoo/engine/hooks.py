"""Hooks the zoo adds to mmengine's."""

from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.hooks import Hook

from ..registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the Python, numpy and torch random states in checkpoints and restore them on resume.

    mmengine re-seeds on resume, so anything random inside a training step (dropout, random
    split points, data augmentation in the main process) would diverge from an uninterrupted
    run. With this hook a resumed run continues the same random stream.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = {
            'python': random.getstate(),
            'numpy': np.random.get_state(legacy=False),
            'torch': torch.get_rng_state(),
        }

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        if state is None:
            return
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
