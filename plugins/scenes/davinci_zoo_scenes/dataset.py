"""``ProceduralScenes``: the scenes as an mmengine dataset (quick start and tokenizer data)."""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import Dataset

from davinci_zoo.datasets.transforms import build_pipeline
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import DATASETS

from .render import generate_scenes, render
from .vocabulary import uses_held_out_pair


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
        pipeline: transforms from ``dict(img=(S, S, 3) uint8 in BGR order, as mmcv loads
            images, caption=str, sample_idx=int, img_shape, ori_shape)`` to an item, e.g.
            ``[dict(type='TokenizeText'), dict(type='PackDaVinciInputs')]``; empty: that dict.
    """

    def __init__(
        self,
        num_scenes: int,
        image_size: int = 32,
        seed: int = 0,
        two_object_prob: float = 0.4,
        held_out: str = 'include',
        jitter_step: float | None = None,
        pipeline: Sequence = (),
    ) -> None:
        exclude = {
            'include': None,
            'exclude': uses_held_out_pair,
            'only': lambda description: not uses_held_out_pair(description),
        }
        if held_out not in exclude:
            raise ComponentArgumentError(
                f'held_out must be one of {sorted(exclude)}, got {held_out!r}'
            )
        if image_size < 32:
            raise ComponentArgumentError(f'image_size must be at least 32 pixels, got {image_size}')
        self.image_size = image_size
        self.pipeline = build_pipeline(pipeline)
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
        image = render(scene, self.image_size)[..., ::-1].copy()  # RGB -> mmcv's BGR
        shape = image.shape[:2]
        return self.pipeline(
            dict(
                img=image, img_shape=shape, ori_shape=shape, caption=scene.caption, sample_idx=index
            )
        )
