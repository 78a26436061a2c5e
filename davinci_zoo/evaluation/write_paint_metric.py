"""Writing and painting scores for any image-caption set: caption scores, likelihood, CLIP."""

from __future__ import annotations

import shutil

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from ..registry import METRICS, SCORERS
from .captioning import caption_scores


@METRICS.register_module()
class WritePaintMetric(BaseMetric):
    """Scores DaVinci's writing and painting on image-caption pairs (any captions).

    Reads the data samples of :class:`~davinci_zoo.models.heads.WritePaintHead`:

    - writing: ``pred_caption`` against the sample's ``references`` (all its captions, kept
      by :class:`~davinci_zoo.datasets.caption_references.KeepCaptionReferences`), else its
      ``caption``: ``Bleu_1`` .. ``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr`` of
      :func:`~davinci_zoo.evaluation.caption_scores` over the whole set (needs Java);
    - painting: ``self_likelihood``, the mean over samples of ``pred_painting_likelihood``
      (``WritePaintHead(painting_likelihood=True)``: the model's mean log-probability per
      token of the caption, written from its own painting). It tells whether paintings carry
      their caption as the model reads it; the model grades itself, so it is never an aim;
    - with ``clip_scorer``, ``clip_score``: the mean score of that scorer for each
      ``pred_painting`` against its ``caption`` (``CLIPScorer``: 100 x the cosine of the CLIP
      embeddings);
    - ``count``: the samples scored.

    Args:
        clip_scorer: a ``SCORERS`` config of an image-text scorer that ignores the model,
            e.g. ``dict(type='CLIPScorer', weights=..., merges=...)`` from the davinci-zoo-clip
            plugin; None: no ``clip_score``.
        collect_device, prefix: as mmengine's ``BaseMetric``.
    """

    default_prefix = 'write_paint'

    def __init__(
        self,
        clip_scorer: dict | None = None,
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if shutil.which('java') is None:  # fail before the test set is generated
            raise RuntimeError(
                'WritePaintMetric needs Java for its caption scores (PTB tokenizer, METEOR); '
                'install a Java runtime, e.g. apt-get install default-jre-headless'
            )
        self.clip_scorer = None if clip_scorer is None else SCORERS.build(clip_scorer)

    def process(self, data_batch, data_samples) -> None:
        results = [self.sample_result(sample) for sample in data_samples]
        painted = [i for i, s in enumerate(data_samples) if 'pred_painting' in s]
        if self.clip_scorer is not None and painted:
            scores = self.clip_scores([data_samples[i] for i in painted])
            for i, score in zip(painted, scores):
                results[i]['clip_score'] = score
        self.results.extend(results)

    @staticmethod
    def sample_result(sample: dict) -> dict:
        """The written caption and its references, and the painting's likelihood, if there."""
        result = {}
        if 'pred_caption' in sample:
            references = sample.get('references', sample.get('caption'))
            if references is None:
                raise ValueError(
                    'WritePaintMetric: a sample has pred_caption but neither references nor '
                    'caption to score it against; pack them (PackDaVinciInputs)'
                )
            result['written'] = sample['pred_caption']
            result['references'] = [references] if isinstance(references, str) else references
        if 'pred_painting_likelihood' in sample:
            result['self_likelihood'] = float(sample['pred_painting_likelihood'])
        return result

    def clip_scores(self, samples: list[dict]) -> list[float]:
        """The clip scorer's score of each sample's painting [3, H, W] against its caption."""
        paintings = torch.stack([s['pred_painting'] for s in samples]).float().clamp(0, 1)
        if isinstance(self.clip_scorer, torch.nn.Module):
            self.clip_scorer.to(paintings.device)
        scores = self.clip_scorer(None, paintings, [s['caption'] for s in samples])
        return [float(score) for score in torch.as_tensor(scores).flatten().cpu()]

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        metrics: dict[str, float] = {}
        written = [r for r in results if 'written' in r]
        if written:
            metrics.update(
                caption_scores(
                    {i: r['written'] for i, r in enumerate(written)},
                    {i: r['references'] for i, r in enumerate(written)},
                )
            )
        for key in ('self_likelihood', 'clip_score'):
            values = [r[key] for r in results if key in r]
            if values:
                metrics[key] = float(np.mean(values))
        metrics['count'] = len(results)
        return metrics
