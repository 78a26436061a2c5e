"""Caption and paint accuracy on procedural scenes (the quick start's scores)."""

from __future__ import annotations

import numpy as np
from mmengine.evaluator import BaseMetric

from davinci_zoo.evaluation.reconstruction_metric import ReconstructionMetric
from davinci_zoo.registry import METRICS

from .analyse import analyse
from .captions import parse_caption, parse_paraphrase
from .vocabulary import uses_held_out_pair


@METRICS.register_module()
class SceneWritePaintMetric(BaseMetric):
    """Scores DaVinci's predictions on scenes whose captions are exact.

    - caption accuracy: the written caption parses to exactly the scene's description
      (a caption that does not parse counts as wrong);
    - paint accuracy: the analyser reads the painting back as exactly the caption's description.

    Reads the data samples of :class:`~davinci_zoo.models.heads.WritePaintHead`: ``caption``
    (the truth), ``pred_caption`` and ``pred_painting``. When they carry
    ``pred_painting_sampled`` and ``pred_painting_reranked`` (the head's ``reranked_painting``
    option), also ``sampled_paint_accuracy`` (one plain sample) and
    ``reranked_paint_accuracy`` (the best of N by the scorer).

    Reported for one-object and two-object scenes separately and together, over scenes whose
    colour/shape pairs were seen in training; scenes using a held-out pair are reported under
    ``unseen_*`` (no target: they measure generalisation to new combinations).
    """

    default_prefix = 'scenes'

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            truth = parse_caption(sample['caption'])
            if truth is None:
                raise ValueError(f'not a scene caption: {sample["caption"]!r}')
            result = dict(
                objects=len(truth.objects),
                unseen=uses_held_out_pair(truth),
                caption_ok=parse_caption(sample['pred_caption']) == truth,
                paint_ok=reads_back(sample['pred_painting'], truth),
            )
            if 'pred_painting_reranked' in sample:
                result['sampled_paint_ok'] = reads_back(sample['pred_painting_sampled'], truth)
                result['reranked_paint_ok'] = reads_back(sample['pred_painting_reranked'], truth)
            self.results.append(result)

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        return grouped_accuracies(results, ('caption', 'paint', 'sampled_paint', 'reranked_paint'))


def grouped_accuracies(results: list[dict], names) -> dict[str, float]:
    """``{prefix}{name}_accuracy_{group}`` = mean of ``{name}_ok`` over each group of scenes.

    Groups: all, one_object, two_objects (``count_{group}`` each); prefix '' for scenes whose
    colour/shape pairs were seen in training and 'unseen_' for the held-out pairs. A name
    whose ``{name}_ok`` the results do not carry is left out.
    """
    metrics: dict[str, float] = {}
    for prefix, chosen in (
        ('', [r for r in results if not r['unseen']]),
        ('unseen_', [r for r in results if r['unseen']]),
    ):
        groups = {
            'all': chosen,
            'one_object': [r for r in chosen if r['objects'] == 1],
            'two_objects': [r for r in chosen if r['objects'] == 2],
        }
        for group, rows in groups.items():
            if not rows:
                continue
            for name in names:
                if f'{name}_ok' in rows[0]:
                    metrics[f'{prefix}{name}_accuracy_{group}'] = float(
                        np.mean([r[f'{name}_ok'] for r in rows])
                    )
            metrics[f'{prefix}count_{group}'] = len(rows)
    return metrics


def scene_truth(sample, key: str):
    """The SceneDescription that ``sample[key]`` (any phrasing) states; ValueError if none."""
    text = sample[key]
    if isinstance(text, (list, tuple)):  # references: every one names the same scene
        text = text[0]
    truth = parse_paraphrase(text)
    if truth is None:
        raise ValueError(f'{key} is not a scene caption in any of its phrasings: {text!r}')
    return truth


def _scene_row(truth) -> dict:
    return dict(objects=len(truth.objects), unseen=uses_held_out_pair(truth))


@METRICS.register_module()
class SceneCaptionAccuracy(BaseMetric):
    """Caption accuracy of a captioning head on scenes written in any of their five phrasings.

    A written caption (``pred_caption``) is right when it states exactly the scene of the
    sample's ``references`` (or ``caption``) in any phrasing (``parse_paraphrase``); one that
    does not parse is wrong. Keys as :class:`SceneWritePaintMetric`: ``caption_accuracy_all``,
    ``_one_object``, ``_two_objects``, ``count_*`` and the ``unseen_`` versions.
    """

    default_prefix = 'scenes'

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            truth = scene_truth(sample, 'references' if 'references' in sample else 'caption')
            written = parse_paraphrase(sample['pred_caption'])
            self.results.append(dict(_scene_row(truth), caption_ok=written == truth))

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        return grouped_accuracies(results, ('caption',))


@METRICS.register_module()
class ScenePaintAccuracy(BaseMetric):
    """Paint accuracy of a text-to-image head on scenes: the analyser reads ``pred_painting``
    ([3, H, W] in [0, 1]) back as exactly the scene its ``caption`` (any phrasing) states.

    Keys: ``paint_accuracy_all``, ``_one_object``, ``_two_objects``, ``count_*`` and the
    ``unseen_`` versions.
    """

    default_prefix = 'scenes'

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            truth = scene_truth(sample, 'caption')
            painted = reads_back(sample['pred_painting'], truth)
            self.results.append(dict(_scene_row(truth), paint_ok=painted))

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        return grouped_accuracies(results, ('paint',))


def reads_back(painting, truth) -> bool:
    """Whether the analyser reads painting [3, H, W] in [0, 1] as exactly ``truth``."""
    pixels = (painting.clamp(0, 1) * 255).round().byte()
    return analyse(pixels.permute(1, 2, 0).cpu().numpy()) == truth


@METRICS.register_module()
class SceneReconstructionMetric(ReconstructionMetric):
    """:class:`ReconstructionMetric` plus what the scene analyser reads in the reconstructions.

    For images with scene captions it adds ``analyser_accuracy`` (the analyser reads the
    reconstruction back as the caption says; this caps what painting can reach),
    ``analyser_accuracy_original`` (the same on the originals, a sanity check that should be
    ~1) and ``analysed_images``. Images whose caption is not a scene caption get only the
    reconstruction scores.
    """

    def score_image(self, sample: dict, reconstruction, image) -> dict:
        result = super().score_image(sample, reconstruction, image)
        description = parse_caption(sample.get('caption') or '')
        if description is not None:
            result['analysed'] = reads_back(reconstruction, description)
            result['analysed_original'] = reads_back(image, description)
        return result

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        metrics = super().compute_metrics(results)
        scored = [r for r in results if 'analysed' in r]
        if scored:
            metrics['analyser_accuracy'] = float(np.mean([r['analysed'] for r in scored]))
            metrics['analyser_accuracy_original'] = float(
                np.mean([r['analysed_original'] for r in scored])
            )
            metrics['analysed_images'] = len(scored)
        return metrics
