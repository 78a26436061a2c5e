"""Hooks the zoo adds to mmengine's."""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the Python, numpy, torch CPU and CUDA random states in checkpoints and restore them
    on resume.

    mmengine re-seeds on resume, so anything random inside a training step (dropout, random
    split points, data augmentation in the main process) would diverge from an uninterrupted
    run. With this hook a resumed run continues the same random stream. On a GPU the dropout
    masks come from the CUDA generator of the process's current device, so its state is saved
    too (``cuda``, absent when CUDA is not initialised); a checkpoint saved on a GPU and resumed
    without one restores the rest and warns.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = {
            'python': random.getstate(),
            'numpy': np.random.get_state(legacy=False),
            'torch': torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state()  # the current device's generator
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        if state is None:
            return
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
        if 'cuda' not in state:
            return
        if torch.cuda.is_available():
            torch.cuda.set_rng_state(state['cuda'])
        else:
            print_log(
                'RNGStateHook: the checkpoint holds a CUDA random state but CUDA is not '
                'available; GPU dropout masks of the resumed run will differ',
                logger='current',
                level=logging.WARNING,
            )


@HOOKS.register_module()
class ReconstructionGridHook(Hook):
    """Save originals (top row) above reconstructions (bottom row) of the first test/val batch.

    Writes ``<work_dir>/reconstructions.png`` after testing and
    ``<work_dir>/reconstructions_iter_<N>.png`` after each validation, and adds the grid to the
    visualizer (TensorBoard when configured). Expects predictions with ``images`` and
    ``reconstruction`` ([3, H, W] in [0, 1]), as ImageTokenizerTrainer returns.

    Args:
        max_images: how many image pairs to show.
    """

    priority = 'LOW'

    def __init__(self, max_images: int = 16) -> None:
        self.max_images = max_images

    def _save(self, runner, outputs, name: str) -> None:
        from ..visualization import image_grid, save_png

        shown = outputs[: self.max_images]
        grid = image_grid([[o['images'] for o in shown], [o['reconstruction'] for o in shown]])
        save_png(grid, os.path.join(runner.work_dir, f'{name}.png'))
        runner.visualizer.add_image(name, grid, step=runner.iter)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if batch_idx == 0 and outputs and get_rank() == 0:
            self._save(runner, outputs, 'reconstructions')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if batch_idx == 0 and outputs and get_rank() == 0:
            self._save(runner, outputs, f'reconstructions_iter_{runner.iter}')


@HOOKS.register_module()
class WritePaintSamplesHook(Hook):
    """After testing, leave DaVinci's writing and painting on disk.

    ``<work_dir>/captions.tsv``: truth and written caption of every test image;
    ``<work_dir>/paintings.png``: the first ``max_images`` test images (top row) above the
    paintings of their captions (bottom row), also added to the visualizer. Reads the data
    samples of :class:`~davinci_zoo.models.heads.WritePaintHead` (``caption``,
    ``pred_caption``, ``pred_painting``) and the test batch's images.
    """

    priority = 'LOW'

    def __init__(self, max_images: int = 16) -> None:
        self.max_images = max_images

    def before_test(self, runner) -> None:
        self.rows: list[str] = []

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not outputs or get_rank() != 0:
            return
        self.rows.extend(f'{o.caption}\t{o.pred_caption}' for o in outputs)
        if batch_idx == 0:
            from mmengine.model import is_model_wrapper

            from ..visualization import image_grid, save_png

            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            shown = outputs[: self.max_images]
            images = model.data_preprocessor.unit_rgb(data_batch['inputs']['images'])
            grid = image_grid([list(images[: len(shown)]), [o.pred_painting.cpu() for o in shown]])
            save_png(grid, os.path.join(runner.work_dir, 'paintings.png'))
            runner.visualizer.add_image('paintings', grid, step=runner.iter)

    def after_test(self, runner) -> None:
        if get_rank() != 0:
            return
        from ..checkpoint import atomic_write

        text = 'truth\twritten\n' + '\n'.join(self.rows) + '\n'
        atomic_write(
            os.path.join(runner.work_dir, 'captions.tsv'),
            lambda stream: stream.write(text.encode()),
        )


@HOOKS.register_module()
class ProvenanceHook(Hook):
    """Make checkpoints self-describing; warn when they are loaded under other plugins.

    Saves ``checkpoint['meta']['davinci_zoo'] = {version, vocab_sha256, plugins}`` where
    ``plugins`` maps every distribution whose classes the model uses (the zoo core and its
    plugins) to its version. mmengine already stores the config (``meta['cfg']``), and the
    image tokenizer's weights are part of the model's state dict. On load, a plugin whose
    installed version differs (or that is missing) is reported as a warning.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['davinci_zoo'] = provenance_of(runner.model)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        for message in provenance_warnings(checkpoint.get('meta', {}).get('davinci_zoo')):
            runner.logger.warning(message)


def provenance_of(model) -> dict:
    """What :class:`ProvenanceHook` stores for ``model`` (unwrapped from DDP if needed)."""
    from ..plugins import distributions_used_by
    from ..version import __version__

    model = getattr(model, 'module', model)
    text_tokenizer = getattr(model, 'text_tokenizer', None)
    vocab_sha256 = None
    if text_tokenizer is not None:
        from ..text.wordpiece import file_sha256

        vocab_sha256 = file_sha256(text_tokenizer.vocab_file)
    return dict(
        version=__version__, vocab_sha256=vocab_sha256, plugins=distributions_used_by(model)
    )


def provenance_warnings(provenance: dict | None) -> list[str]:
    """Messages for every plugin whose installed version differs from the checkpoint's."""
    from ..plugins import installed_version

    messages = []
    for distribution, version in ((provenance or {}).get('plugins') or {}).items():
        installed = installed_version(distribution)
        if installed != version:
            now = f'{installed} is installed' if installed else 'it is not installed'
            messages.append(
                f'checkpoint was saved with {distribution} {version}, but {now}; results may differ'
            )
    return messages
