"""Frozen features of one dataset split: build its pipeline, run a source over it in batches.

The pipeline of a probe split is the dataset file's ``load`` transforms, a bicubic resize of
both sides to the source's resolution, and ``PackDaVinciInputs``
(configs/_base_/datasets/probes/*.py, docs/tasks/linear_probe.md).
"""

from __future__ import annotations

import sys

import torch

from .sources import FeatureSource


def probe_pipeline(load: list, resolution: int) -> list[dict]:
    """``load`` + resize to ``resolution`` x ``resolution`` (bicubic) + pack."""
    return [
        *load,
        dict(
            type='Resize',
            scale=(resolution, resolution),
            keep_ratio=False,
            backend='pillow',
            interpolation='bicubic',
        ),
        dict(type='PackDaVinciInputs', text_keys=()),
    ]


def transform_identity(resolution: int) -> dict:
    """The transform's part of the cache key."""
    return dict(resize=[resolution, resolution], interpolation='bicubic', backend='pillow')


def build_split(split: dict, load: list, resolution: int):
    """A split's dataset config (interface: ``probe_data.train`` etc., no pipeline) -> the
    dataset with the probe pipeline."""
    from mmengine.registry import DefaultScope

    from ..registry import DATASETS

    config = dict(split, pipeline=probe_pipeline(list(load), resolution))
    with DefaultScope.overwrite_default_scope('davinci_zoo'):  # mmpretrain's sets see ours
        return DATASETS.build(config)


def extract_features(
    dataset,
    source: FeatureSource,
    batch_size: int = 64,
    num_workers: int = 0,
    title: str = '',
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [N, F] float32 and labels [N] int64 of every item of ``dataset`` (in order),
    under ``torch.no_grad()``, with a progress bar (ETA) on stderr."""
    from mmengine.utils import ProgressBar

    from ..datasets.mixing import mixed_collate

    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=mixed_collate,
    )
    if title:
        print(f'{title}: {len(dataset)} images', file=sys.stderr, flush=True)
    bar = ProgressBar(len(dataset), file=sys.stderr)
    features, labels = [], []
    with torch.no_grad():
        for batch in loader:
            images = batch['inputs']['images']
            features.append(source.encode(images).float().cpu())
            labels.append(torch.cat([sample.gt_label for sample in batch['data_samples']]))
            bar.update(len(images))
    sys.stderr.write('\n')
    if not features:
        raise ValueError(f'{title or "the dataset"} has no images')
    return torch.cat(features), torch.cat(labels).long()
