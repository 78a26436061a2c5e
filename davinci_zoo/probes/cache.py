"""Frozen features on disk: computed once per (source, dataset, split, transform), then read.

A cache file is a ``.safetensors`` with ``features`` [N, F] float32 and ``labels`` [N] int64;
its metadata holds the full key. It is written to a temporary name and renamed into place
(:func:`~davinci_zoo.checkpoint.atomic_write`), so a killed writer leaves no partial file
under the final name. A file that does not read, or whose key or shapes are wrong, is
reported with a warning and recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable

import torch

from ..checkpoint import CheckpointError, load_checkpoint_file, save_checkpoint_file

#: Bump when the feature code changes what it computes for the same key.
FEATURE_VERSION = 1


def cache_key(**parts) -> str:
    """The sha256 of the key parts' canonical JSON (with :data:`FEATURE_VERSION`)."""
    text = json.dumps(dict(parts, version=FEATURE_VERSION), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class FeatureCache:
    """Features by key in ``directory``.

    Args:
        directory: where the files go (made on the first write).
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = os.fspath(directory)

    def path(self, key: str, name: str = '') -> str:
        """The file of ``key``; ``name`` (e.g. ``cifar10-train-random``) makes it readable."""
        stem = f'{name}-{key[:16]}' if name else key[:16]
        return os.path.join(self.directory, f'{stem}.safetensors')

    def load(self, key: str, name: str = '') -> tuple[torch.Tensor, torch.Tensor] | None:
        """(features [N, F] float32, labels [N] int64) of ``key``, or None when there is no
        usable file (a broken or mismatched one is reported with a warning)."""
        path = self.path(key, name)
        if not os.path.exists(path):
            return None
        try:
            stored = load_checkpoint_file(path)
            problem = _problem(stored, key)
        except CheckpointError as error:
            problem = str(error)
        if problem:
            warnings.warn(
                f'feature cache {path} is not usable ({problem}); recomputing it',
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        tensors = stored['state_dict']
        return tensors['features'], tensors['labels']

    def save(self, key: str, features: torch.Tensor, labels: torch.Tensor, name: str = '') -> str:
        """Write features [N, F] and labels [N] atomically; returns the file's path."""
        path = self.path(key, name)
        tensors = dict(
            features=features.detach().float().cpu().contiguous(),
            labels=labels.detach().long().cpu().contiguous(),
        )
        meta = dict(key=key, rows=len(features), dims=int(features.shape[1]))
        save_checkpoint_file(dict(state_dict=tensors, meta=meta), path)
        return path

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], tuple[torch.Tensor, torch.Tensor]],
        name: str = '',
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached (features, labels) of ``key``; on a miss ``compute()`` runs once and
        its result is stored."""
        found = self.load(key, name)
        if found is not None:
            return found
        features, labels = compute()
        self.save(key, features, labels, name)
        return features.float(), labels.long()


def _problem(stored: dict, key: str) -> str:
    """What is wrong with a loaded cache file ('' when nothing)."""
    tensors, meta = stored.get('state_dict', {}), stored.get('meta', {})
    if meta.get('key') != key:
        return 'its key differs from the requested one'
    features, labels = tensors.get('features'), tensors.get('labels')
    if features is None or labels is None:
        return 'features or labels are missing'
    if features.dim() != 2 or labels.dim() != 1 or len(features) != len(labels):
        return f'shapes {tuple(features.shape)} and {tuple(labels.shape)} do not fit'
    if features.dtype != torch.float32 or labels.dtype != torch.int64:
        return f'dtypes {features.dtype} and {labels.dtype}'
    if meta.get('rows') != len(features) or meta.get('dims') != features.shape[1]:
        return 'its shape disagrees with its metadata'
    return ''
