"""FID, Inception Score and CLIP score of paintings: torchmetrics on torch-fidelity's Inception.

The Inception network is torch-fidelity's ``FeatureExtractorInceptionV3`` (the TensorFlow FID
graph of 2015-12-05 in PyTorch, resizing to 299 px as TensorFlow 1 did), with weights from a
local file read by :func:`~davinci_zoo.checkpoint.load_checkpoint_file` (nothing is
downloaded, nothing is unpickled beyond tensors). torchmetrics' ``FrechetInceptionDistance``
and ``InceptionScore`` get it as their ``feature`` module, one network for both. Another
feature network (a module or a MODELS config) can replace it; it gives an Inception Score only
when it has class logits (``class_logits``).
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from torch import nn

from ..checkpoint import (
    CheckpointMismatchError,
    load_checkpoint_file,
    save_checkpoint_file,
    state_dict_of,
)
from ..models.parts import ComponentArgumentError
from ..registry import METRICS, MODELS, SCORERS

#: Where the standard FID Inception weights are published (torch-fidelity's conversion of
#: the TensorFlow graph pt_inception-2015-12-05).
INCEPTION_WEIGHTS_URL = (
    'https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/'
    'weights-inception-2015-12-05-6726825d.pth'
)
#: The Inception outputs used: pool features for FID, logits without bias for IS.
INCEPTION_FEATURES = ('2048', 'logits_unbiased')
INCEPTION_SIZES = {'2048': 2048, 'logits_unbiased': 1008}


def load_inception(weights: str, features=INCEPTION_FEATURES) -> nn.Module:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` with the weights of the local file
    ``weights`` (``.pth`` or ``.safetensors``): uint8 RGB images [N, 3, H, W] -> one tensor
    per name of ``features``. FileNotFoundError (one line, with where to get the file) when
    it is missing; CheckpointMismatchError when its keys do not fit."""
    if not os.path.isfile(weights):
        raise FileNotFoundError(
            f'Inception weights {weights} do not exist; download the standard FID weights '
            f'(pt_inception-2015-12-05) from {INCEPTION_WEIGHTS_URL} to that path'
        )
    state = dict(state_dict_of(load_checkpoint_file(weights)))
    # torch-fidelity unpickles what it is given without restriction (weights_only=False): it
    # gets a buffer of the tensors our loader read, never the file itself.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    try:
        return FeatureExtractorInceptionV3(
            'inception-v3-compat', list(features), feature_extractor_weights_path=buffer
        )
    except RuntimeError as error:
        first = str(error).strip().splitlines()[:2]
        raise CheckpointMismatchError(
            f"{weights} is not laid out like torch-fidelity's FeatureExtractorInceptionV3: "
            + ' '.join(first)[:300]
        ) from None


class SharedFeatures(nn.Module):
    """Runs a network that returns several outputs once per batch for every :class:`Output`
    reading it (FID and IS see the same images)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self._last: tuple[torch.Tensor, tuple] | None = None

    def forward(self, images: torch.Tensor) -> tuple:
        if self._last is None or self._last[0] is not images:
            with torch.no_grad():
                self._last = (images, tuple(self.network(images)))
        return self._last[1]


class Output(nn.Module):
    """Output ``index`` [N, num_features] of a :class:`SharedFeatures`."""

    def __init__(self, shared: SharedFeatures, index: int, num_features: int) -> None:
        super().__init__()
        self.shared, self.index, self.num_features = shared, index, num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.shared(images)[self.index].flatten(1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """RGB [N, 3, H, W] in [0, 1] -> uint8 (rounded); uint8 stays as it is."""
    if images.dtype == torch.uint8:
        return images
    return (images.float().clamp(0, 1) * 255).round().to(torch.uint8)


class ClassLogits(nn.Module):
    """A feature network's ``class_logits`` [N, C] as a module (the Inception Score's input),
    in float64 so that a class no image favours keeps a probability above zero."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.class_logits(images).double()


def network_identity(network: nn.Module) -> str:
    """``ClassName-<sha256 prefix of its weights>``: tells cached reference statistics made
    with other weights apart."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f'{type(network).__name__}-{digest.hexdigest()[:16]}'


@METRICS.register_module()
class ImageGenerationMetric(BaseMetric):
    """FID and Inception Score of paintings, and optionally their CLIP score.

    Reads the data samples of :class:`~davinci_zoo.models.heads.TextToImageHead`:
    ``pred_painting`` (RGB [3, H, W] in [0, 1]) and, unless the reference statistics come
    from ``reference_stats``, ``gt_image`` (the real image, uint8 RGB [3, H, W]). Reports
    ``FID`` (paintings against the real images), ``IS`` and ``IS_std`` (over ``is_splits``
    splits, shuffled with ``seed``; only from a network with class logits, below),
    ``clip_score`` with ``clip_scorer`` and ``count``.

    Args:
        inception_weights: a local file of torch-fidelity's Inception weights (the standard
            FID network: :data:`INCEPTION_WEIGHTS_URL`).
        feature_extractor: instead, another feature network: a module or a ``MODELS`` config
            (e.g. ``dict(type='SceneFeatures', weights=...)`` of davinci-zoo-scenes), uint8 RGB
            [N, 3, H, W] -> FID features [N, d]. When it also has a method ``class_logits``
            (uint8 [N, 3, H, W] -> [N, C]), the Inception Score is computed from those; without
            one no IS is reported (features are no class probabilities).
        reference_stats: a file caching the real images' FID statistics (``.safetensors``):
            read when it exists (the real images are then not run through the network),
            written after the first evaluation when it does not. It records the network
            (Inception: the weights file name; another network: its class and a hash of its
            weights) and is refused for another.
        clip_scorer: a ``SCORERS`` config of an image-text scorer that ignores the model
            (e.g. ``dict(type='CLIPScorer', ...)`` from davinci-zoo-clip); None: no CLIP score.
        is_splits: splits of the Inception Score (the standard 10).
        seed: seeds the shuffle before the IS splits, so a result repeats.
        collect_device, prefix: as mmengine's ``BaseMetric``.
    """

    default_prefix = 'text2image'

    def __init__(
        self,
        inception_weights: str | None = None,
        feature_extractor: nn.Module | dict | None = None,
        reference_stats: str | None = None,
        clip_scorer: dict | None = None,
        is_splits: int = 10,
        seed: int = 0,
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if (inception_weights is None) == (feature_extractor is None):
            raise ComponentArgumentError(
                'ImageGenerationMetric takes one of inception_weights or feature_extractor'
            )
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.inception import InceptionScore

        if inception_weights is not None:
            shared = SharedFeatures(load_inception(inception_weights))
            fid_features = Output(shared, 0, INCEPTION_SIZES[INCEPTION_FEATURES[0]])
            is_features = Output(shared, 1, INCEPTION_SIZES[INCEPTION_FEATURES[1]])
            self.extractor = os.path.basename(inception_weights)
        else:
            if isinstance(feature_extractor, dict):
                feature_extractor = MODELS.build(feature_extractor)
            fid_features = feature_extractor.eval()
            has_logits = callable(getattr(feature_extractor, 'class_logits', None))
            is_features = ClassLogits(feature_extractor) if has_logits else None
            self.extractor = network_identity(feature_extractor)
        self.fid = FrechetInceptionDistance(feature=fid_features, reset_real_features=False)
        self.inception_score = None
        if is_features is not None:
            self.inception_score = InceptionScore(feature=is_features, splits=is_splits)
        self.reference_stats, self.seed = reference_stats, seed
        self.has_reference = bool(reference_stats) and os.path.isfile(reference_stats)
        if self.has_reference:
            self.load_reference(reference_stats)
        self.clip_scorer = None if clip_scorer is None else SCORERS.build(clip_scorer)

    # -- the reference statistics ------------------------------------------------------------
    def load_reference(self, path: str) -> None:
        """Set the FID's real-image statistics from a file :meth:`save_reference` wrote."""
        checkpoint = load_checkpoint_file(path)
        stats, meta = checkpoint['state_dict'], checkpoint.get('meta', {})
        size = self.fid.real_features_sum.shape[0]
        if meta.get('extractor') != self.extractor or stats['sum'].shape[0] != size:
            raise CheckpointMismatchError(
                f'reference statistics {path} were made with {meta.get("extractor")!r} '
                f'({stats["sum"].shape[0]} features), not {self.extractor!r} ({size}); '
                'delete the file to recompute them'
            )
        from mmengine.dist import get_rank

        if get_rank() != 0:  # the ranks' statistics are summed: only one holds the reference
            return
        self.fid.real_features_sum = stats['sum'].double()
        self.fid.real_features_cov_sum = stats['cov_sum'].double()
        self.fid.real_features_num_samples = stats['count'].long().reshape(())

    def save_reference(self, path: str) -> None:
        """Write the FID's real-image statistics (all ranks' together) to ``path``."""
        from mmengine.dist import is_main_process

        with self.fid.sync_context():
            stats = {
                'sum': self.fid.real_features_sum.cpu(),
                'cov_sum': self.fid.real_features_cov_sum.cpu(),
                'count': self.fid.real_features_num_samples.reshape(1).cpu(),
            }
        if is_main_process():
            meta = dict(extractor=self.extractor, count=int(stats['count']))
            save_checkpoint_file(dict(state_dict=stats, meta=meta), path)

    # -- mmengine ----------------------------------------------------------------------------
    def process(self, data_batch, data_samples) -> None:
        paintings = to_uint8(torch.stack([sample['pred_painting'] for sample in data_samples]))
        self.fid.to(paintings.device)
        self.fid.update(paintings, real=False)
        if self.inception_score is not None:
            self.inception_score.to(paintings.device)
            self.inception_score.update(paintings)
        if not self.has_reference:
            if any('gt_image' not in sample for sample in data_samples):
                raise ComponentArgumentError(
                    'ImageGenerationMetric needs the real images (gt_image, set by '
                    'TextToImageHead from the batch images) or a reference_stats file'
                )
            real = to_uint8(torch.stack([sample['gt_image'] for sample in data_samples]))
            self.fid.update(real.to(paintings.device), real=True)
        results = [{} for _ in data_samples]
        if self.clip_scorer is not None:
            texts = [sample['caption'] for sample in data_samples]
            if isinstance(self.clip_scorer, nn.Module):
                self.clip_scorer.to(paintings.device)
            scores = self.clip_scorer(None, paintings.float() / 255, texts)
            for result, score in zip(results, torch.as_tensor(scores).flatten().tolist()):
                result['clip_score'] = float(score)
        self.results.extend(results)

    def generation_scores(self) -> dict[str, float]:
        """FID, and IS with its spread when there are class logits, over every rank's
        paintings (computed on every rank)."""
        if self.reference_stats and not self.has_reference:
            self.save_reference(self.reference_stats)
            self.has_reference = True
        scores = {'FID': float(self.fid.compute())}
        if self.inception_score is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                is_mean, is_std = self.inception_score.compute()
            scores.update(IS=float(is_mean), IS_std=float(is_std))
        return scores

    def evaluate(self, size: int) -> dict:
        scores = self.generation_scores()
        metrics = super().evaluate(size)
        metrics.update({f'{self.prefix}/{key}': value for key, value in scores.items()})
        self.fid.reset()  # the real statistics stay (reset_real_features=False)
        if self.inception_score is not None:
            self.inception_score.reset()
        return metrics

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        metrics: dict[str, float] = {'count': len(results)}
        clip = [result['clip_score'] for result in results if 'clip_score' in result]
        if clip:
            metrics['clip_score'] = float(np.mean(clip))
        return metrics
