"""Watch a DaVinci learn: captions of fixed images and paintings of fixed prompts while training.

:class:`TrainingSamplesHook` writes, every ``interval`` iterations and on rank 0 only::

    <work_dir>/samples/prompts.txt                    the fixed painting prompts (once)
    <work_dir>/samples/iter_<N>_captions.txt          image index, truth, written caption
    <work_dir>/samples/iter_<N>_paintings.png         (originals above) paintings of the prompts

and adds the same to the visualizer at step N (iterations done): the grid as image
``samples/paintings``, the captions as text ``samples/captions`` (TensorBoard backends) and, when
the fixed images have true captions, the share written exactly as scalar
``samples/caption_exact_match``.

It leaves training exactly as it would have been without it: decoding is greedy by default,
sampled paintings draw from the hook's own ``torch.Generator`` (re-seeded from ``seed`` at every
sampling point, so the pictures of different iterations are comparable), nothing calls the
global Python/numpy/torch random generators, and every module's train/eval flag is restored.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import os
import random

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..registry import DATASETS, HOOKS

IMAGE_SOURCES = ('train', 'val', 'test')


@HOOKS.register_module()
class TrainingSamplesHook(Hook):
    """Every ``interval`` iterations, caption fixed images and paint fixed prompts.

    Args:
        interval: sample after every this many training iterations.
        images: where the fixed images come from: ``'val'``, ``'test'`` or ``'train'`` (the
            dataset of that dataloader in the config) or a dataset config of its own (e.g.
            ``dict(type='ProceduralScenes', num_scenes=8, seed=7, pipeline=[...])``). Items
            must be packed (``PackDaVinciInputs``) with an image and, for default prompts,
            a ``caption``.
        num_images: how many images (the dataset's first ones).
        prompts: texts to paint; None paints the true captions of the fixed images.
        max_caption_tokens: longest written caption, in WordPiece tokens.
        sampling: ``SamplingConfig`` fields for the paintings (e.g. ``dict(do_sample=True,
            top_k=50)``); None is greedy. Captions are always greedy.
        seed: seed of the hook's private generator for sampled paintings.
        out_dir: folder under the work dir for the files.
    """

    priority = 'LOW'

    def __init__(
        self,
        interval: int = 1000,
        images: str | dict = 'test',
        num_images: int = 8,
        prompts: list[str] | None = None,
        max_caption_tokens: int = 30,
        sampling: dict | None = None,
        seed: int = 0,
        out_dir: str = 'samples',
    ) -> None:
        if interval < 1:
            raise ValueError(f'TrainingSamplesHook interval must be >= 1, got {interval}')
        if num_images < 1:
            raise ValueError(f'TrainingSamplesHook num_images must be >= 1, got {num_images}')
        if not isinstance(images, dict) and images not in IMAGE_SOURCES:
            raise ValueError(
                f'TrainingSamplesHook images must be one of {IMAGE_SOURCES} or a dataset '
                f'config dict, got {images!r}'
            )
        if prompts is not None and (not prompts or not all(isinstance(p, str) for p in prompts)):
            raise ValueError('TrainingSamplesHook prompts must be a non-empty list of strings')
        from ..models.davinci.generation import GenerationConfig, SamplingConfig

        self.interval = interval
        self.images = images
        self.num_images = num_images
        self.prompts = list(prompts) if prompts is not None else None
        self.max_caption_tokens = max_caption_tokens
        # SamplingConfig checks the keys (no beams, no lengths); the seed makes each interval's
        # paintings comparable.
        sampling = dataclasses.asdict(SamplingConfig(**(sampling or {})))
        self.painting_generation = GenerationConfig(**sampling, seed=seed)
        self.out_dir = out_dir
        self.fixed_batch: dict | None = None
        self.truths: list[str] | None = None

    # -- set-up ---------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        if get_rank() != 0:
            return
        with preserved_global_rng():  # a dataset may draw while it is built; undo that
            items = first_items(self._build_dataset(runner), self.num_images)
        self.fixed_batch, self.truths = collate_items(items)
        if self.prompts is None:
            if self.truths is None:
                raise ValueError(
                    'TrainingSamplesHook: the fixed images have no "caption" to paint; '
                    'give prompts=[...]'
                )
            self.prompts = list(self.truths)
        write_text(self._path(runner, 'prompts.txt'), '\n'.join(self.prompts) + '\n')

    def _build_dataset(self, runner):
        if isinstance(self.images, dict):
            return DATASETS.build(copy.deepcopy(self.images))
        loader = runner.cfg.get(f'{self.images}_dataloader')
        if not loader or 'dataset' not in loader:
            raise ValueError(
                f'TrainingSamplesHook images={self.images!r} needs '
                f'{self.images}_dataloader.dataset in the config, which it lacks'
            )
        return DATASETS.build(copy.deepcopy(loader['dataset']))

    # -- every interval ---------------------------------------------------------------------
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if get_rank() != 0 or not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        with evaluation_mode(model):
            written, paintings = self._generate(model)
        originals = model.data_preprocessor.unit_rgb(self.fixed_batch['inputs']['images'])
        self._record(runner, runner.iter + 1, written, paintings, originals)

    def _generate(self, model) -> tuple[list[str], torch.Tensor]:
        """-> written captions (one per fixed image), paintings [P, 3, H, W] in [0, 1]."""
        from ..models.davinci import inference
        from ..models.davinci.generation import GenerationConfig

        images = model.data_preprocessor(self.fixed_batch, False)['inputs']['images']
        images = fit_images(images, model.image_size)
        writing = GenerationConfig(max_length=self.max_caption_tokens)
        written = inference.write_texts(model, images, writing)
        codes, _ = inference.paint_codes(model, self.prompts, self.painting_generation)
        return written, inference.codes_to_images(model, codes[:, 0])

    def _record(self, runner, step: int, written: list[str], paintings, originals) -> None:
        """Write the files and visualizer entries; ``originals``: the fixed images [K, 3, H, W]
        RGB in [0, 1]."""
        from ..visualization import save_png

        truths = self.truths or [''] * len(written)
        rows = [f'{i}\t{truth}\t{text}' for i, (truth, text) in enumerate(zip(truths, written))]
        write_text(
            self._path(runner, f'iter_{step}_captions.txt'),
            'image\ttruth\twritten\n' + '\n'.join(rows) + '\n',
        )
        grid = self._painting_grid(paintings, originals)
        save_png(grid, self._path(runner, f'iter_{step}_paintings.png'))
        runner.visualizer.add_image('samples/paintings', grid, step=step)
        add_text(runner.visualizer, 'samples/captions', captions_markdown(truths, written), step)
        if self.truths is not None:
            exact = sum(t == w for t, w in zip(self.truths, written)) / len(written)
            runner.visualizer.add_scalars({'samples/caption_exact_match': exact}, step=step)

    def _painting_grid(self, paintings: torch.Tensor, originals: torch.Tensor) -> np.ndarray:
        """Paintings in a row, under their source images when the prompts are their captions."""
        from ..visualization import image_grid

        rows = [list(paintings.cpu())]
        if self.truths is not None and self.prompts == self.truths:
            originals = fit_images(originals.cpu(), paintings.shape[-1], paintings.shape[-2])
            rows.insert(0, list(originals))
        return image_grid(rows)

    def _path(self, runner, name: str) -> str:
        return os.path.join(runner.work_dir, self.out_dir, name)


# -- helpers ---------------------------------------------------------------------------------
@contextlib.contextmanager
def evaluation_mode(model: torch.nn.Module):
    """Run with every module in eval mode; restore each module's own flag afterwards."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


@contextlib.contextmanager
def preserved_global_rng():
    """Restore the Python, numpy and torch (CPU and CUDA) random states on exit."""
    python, numpy_state = random.getstate(), np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def first_items(dataset, count: int) -> list:
    """The first ``count`` items of a map-style or iterable dataset."""
    if hasattr(dataset, '__len__') and hasattr(dataset, '__getitem__'):
        items = [dataset[i] for i in range(min(count, len(dataset)))]
    else:
        items = list(itertools.islice(iter(dataset), count))
    if not items:
        raise ValueError('TrainingSamplesHook: the image dataset is empty')
    return items


def collate_items(items: list) -> tuple[dict, list[str] | None]:
    """Packed dataset items -> one batch (``mixed_collate``) and their captions (None if any
    lacks one or it is empty, as image-folder items do)."""
    from ..datasets.mixing import mixed_collate

    for item in items:
        if not isinstance(item, dict) or 'images' not in item.get('inputs', {}):
            raise ValueError(
                'TrainingSamplesHook needs packed dataset items with an image '
                "(end the pipeline with dict(type='PackDaVinciInputs')); got "
                f'{type(item).__name__}'
            )
    batch = mixed_collate(items)
    captions = [sample.get('caption') for sample in batch['data_samples']]
    truths = captions if all(isinstance(c, str) and c for c in captions) else None
    return batch, truths


def fit_images(images: torch.Tensor, width: int, height: int | None = None) -> torch.Tensor:
    """Resize images [B, 3, H, W] to ``height`` x ``width`` (default square) if they differ."""
    size = (height or width, width)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode='bilinear', antialias=True).clamp(0, 1)


def captions_markdown(truths: list[str], written: list[str]) -> str:
    """A markdown table (TensorBoard renders text summaries as markdown)."""
    lines = ['| image | truth | written |', '|---|---|---|']
    lines += [f'| {i} | {t} | {w} |' for i, (t, w) in enumerate(zip(truths, written))]
    return '\n'.join(lines)


def add_text(visualizer, tag: str, text: str, step: int) -> None:
    """Add a text summary to every visualizer backend that stores text (TensorBoard).

    mmengine's Visualizer has no ``add_text``; its backends are reached through the
    ``_vis_backends`` mapping it keeps by backend name.
    """
    for backend in getattr(visualizer, '_vis_backends', {}).values():
        writer = getattr(backend, 'experiment', None)
        if hasattr(writer, 'add_text'):
            writer.add_text(tag, text, step)


def write_text(path: str, text: str) -> None:
    from ..checkpoint import atomic_write

    atomic_write(path, lambda stream: stream.write(text.encode()))
