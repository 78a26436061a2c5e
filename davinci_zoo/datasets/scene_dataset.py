"""The procedural scenes as an mmengine dataset (quick start data, tokenizer training data)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..registry import DATASETS
from ..scenes import generate_scenes, render, uses_held_out_pair


@DATASETS.register_module()
class ProceduralScenes(Dataset):
    """``num_scenes`` seeded scenes of simple shapes with exact captions.

    Args:
        num_scenes: how many scenes (a fixed, reproducible list for a given seed).
        image_size: side in pixels (>= 32).
        seed: the scene list depends only on this seed.
        two_object_prob: share of scenes with two objects and a relation.
        held_out: ``'exclude'`` drops the held-out colour/shape pairs (training sets),
            ``'only'`` keeps only scenes that use one (to report unseen combinations),
            ``'include'`` keeps everything.
        jitter_step: objects' jitter in whole multiples of this fraction of the side
            (1 / image_size: whole pixels); None (default) draws it from a continuum.

    Each item is ``dict(images=[3, S, S] float in [0, 1], caption=str, index=int)``.
    """

    def __init__(
        self,
        num_scenes: int,
        image_size: int = 32,
        seed: int = 0,
        two_object_prob: float = 0.4,
        held_out: str = 'include',
        jitter_step: float | None = None,
    ) -> None:
        exclude = {
            'include': None,
            'exclude': uses_held_out_pair,
            'only': lambda description: not uses_held_out_pair(description),
        }
        if held_out not in exclude:
            raise ValueError(f'held_out must be one of {sorted(exclude)}, got {held_out!r}')
        if image_size < 32:
            raise ValueError(f'image_size must be at least 32 pixels, got {image_size}')
        self.image_size = image_size
        self.scenes = generate_scenes(
            num_scenes,
            seed,
            two_object_prob=two_object_prob,
            exclude=exclude[held_out],
            jitter_step=jitter_step,
        )

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> dict:
        scene = self.scenes[index]
        pixels = torch.from_numpy(render(scene, self.image_size))
        images = pixels.permute(2, 0, 1).float() / 255
        return dict(images=images, caption=scene.caption, index=index)
