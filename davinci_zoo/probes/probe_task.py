"""One linear-probe task for one feature source: cached features, then a classifier.

A probe config (configs/downstream/linear_probe/<name>.py) holds ``probe_data`` (the dataset
file of its ``_base_``) and ``probe`` (the recipe of probe_base.py). Features of every split
come through the :class:`~.cache.FeatureCache`; the classifier is ``bn_linear`` (the
original's head, :mod:`.bn_linear`) or ``logistic`` (the CLIP paper's, :mod:`.logistic`).
"""

from __future__ import annotations

import os
import re
import time

import torch

from .bn_linear import BNLinearSettings, head_accuracy, train_bn_linear
from .cache import FeatureCache, cache_key
from .extract import build_split, extract_features, transform_identity
from .logistic import DEFAULT_GRID, holdout_split, sweep_and_fit
from .results import Row
from .sources import FeatureSource

CLASSIFIERS = ('bn_linear', 'logistic')
SPLITS = ('train', 'val', 'test')


class ProbeDataError(ValueError):
    """A probe's data cannot be classified (labels outside its classes, a split missing or
    empty); the message is one line."""


def missing_data(probe_data: dict) -> str | None:
    """The first ``data_root`` of the probe's splits that does not exist, or None."""
    for split in SPLITS:
        config = probe_data.get(split)
        root = (config or {}).get('data_root')
        if root and not os.path.exists(root):
            return root
    return None


def slug(text: str) -> str:
    """A file-name-safe form of a label (its last 60 characters)."""
    return re.sub(r'[^A-Za-z0-9_.]+', '_', text).strip('_')[-60:]


def split_features(
    probe_data: dict,
    split: str,
    source: FeatureSource,
    cache: FeatureCache,
    batch_size: int = 64,
    num_workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, F], labels [N]) of one split from the cache, extracted on a miss."""
    config, load = probe_data[split], list(probe_data.get('load') or [])
    key = cache_key(
        source=source.identity(),
        dataset=dict(load=load, split=config),
        split=split,
        transform=transform_identity(source.resolution),
    )
    name = f'{probe_data["name"]}-{split}-{slug(source.label)}'

    def compute():
        dataset = build_split(config, load, source.resolution)
        if len(dataset) == 0:
            raise ProbeDataError(f'the {split} split of {probe_data["name"]} has no images')
        title = f'{probe_data["name"]} {split} features of {source.label}'
        return extract_features(dataset, source, batch_size, num_workers, title)

    return cache.get_or_compute(key, compute, name)


def classify(
    classifier: str,
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    settings: dict,
    device: str = 'cpu',
) -> tuple[float, str]:
    """Train ``classifier`` on the train (and val) features, score test: (accuracy, detail)."""
    moved = {name: (x.to(device), y.to(device)) for name, (x, y) in splits.items()}
    for name, (_, labels) in moved.items():
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ProbeDataError(
                f'{name} labels span {int(labels.min())}..{int(labels.max())}, outside the '
                f'{num_classes} classes of probe_data.num_classes'
            )
    if classifier == 'bn_linear':
        options = BNLinearSettings(**settings.get('bn_linear', {}))
        head = train_bn_linear(*moved['train'], num_classes, options)
        detail = f'{options.epochs} epochs, bn_statistics={options.bn_statistics}'
        return head_accuracy(head, *moved['test']), detail
    if classifier == 'logistic':
        options = dict(settings.get('logistic', {}))
        train = moved['train']
        if 'val' in moved:
            val, held = moved['val'], 'val split'
        else:
            fraction, seed = options.get('val_fraction', 0.2), options.get('seed', 0)
            train, val = holdout_split(*train, fraction, seed)
            held = f'{fraction:g} of train held out'
        result = sweep_and_fit(
            train,
            val,
            moved['test'],
            num_classes,
            grid=options.get('l2_grid', DEFAULT_GRID),
            refine=options.get('refine', True),
            max_iter=options.get('max_iter', 1000),
            patience=options.get('patience', 2),
        )
        return result.test_accuracy, f'l2={result.l2:.3g} chosen on {held}'
    raise ValueError(f'unknown classifier {classifier!r}; use one of {", ".join(CLASSIFIERS)}')


def run_probe(
    task: str,
    probe_data: dict,
    settings: dict,
    source: FeatureSource,
    cache: FeatureCache,
    classifier: str,
    device: str = 'cpu',
) -> Row:
    """Features of every split, the classifier, and the test accuracy (percent, as the GLUE
    scores and mmpretrain's Accuracy) as a Row."""
    start = time.perf_counter()
    needed = SPLITS if classifier == 'logistic' else ('train', 'test')  # val: the L2 sweep's
    splits = {
        split: split_features(
            probe_data,
            split,
            source,
            cache,
            settings.get('batch_size', 64),
            settings.get('num_workers', 0),
        )
        for split in needed
        if probe_data.get(split)
    }
    if 'train' not in splits or 'test' not in splits:
        raise ProbeDataError(f'{task}: probe_data needs a train and a test split')
    accuracy, detail = classify(
        classifier, splits, int(probe_data['num_classes']), settings, device
    )
    sizes = f'{len(splits["train"][1])} train / {len(splits["test"][1])} test'
    detail = f'{detail}; {sizes}; {time.perf_counter() - start:.1f} s'
    return Row(task, source.label, 'accuracy', 100 * accuracy, classifier, detail)
