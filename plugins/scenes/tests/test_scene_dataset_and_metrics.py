"""The scenes plugin's dataset and metrics: held-out pairs, analyser accuracy of reconstructions."""

import numpy as np
import pytest
import torch
from davinci_zoo_scenes import (
    all_descriptions,
    paraphrases,
    parse_caption,
    parse_paraphrase,
    uses_held_out_pair,
)
from davinci_zoo_scenes.dataset import ProceduralScenes
from davinci_zoo_scenes.metrics import SceneCaptionAccuracy, SceneReconstructionMetric

from davinci_zoo.registry import DATASETS, METRICS


def test_the_plugin_registers_its_components_through_its_entry_point():
    """The core finds the scenes' components by name, as configs use them."""
    assert DATASETS.get('ProceduralScenes') is ProceduralScenes
    assert METRICS.get('SceneReconstructionMetric') is SceneReconstructionMetric
    assert METRICS.get('SceneWritePaintMetric').__module__ == 'davinci_zoo_scenes.metrics'


def scene_samples(count, reconstruction):
    dataset = ProceduralScenes(count, image_size=32, seed=3)
    samples = []
    for i in range(count):
        item = dataset[i]
        images = torch.from_numpy(item['img'][..., ::-1].copy()).permute(2, 0, 1) / 255
        samples.append(
            dict(
                images=images,
                reconstruction=reconstruction(images),
                codes=torch.full((8, 8), i % 4),
                caption=item['caption'],
            )
        )
    return samples


def test_reconstruction_metric_perfect_and_blank():
    metric = SceneReconstructionMetric(codebook_size=16)
    metric.process({}, scene_samples(20, lambda image: image.clone()))
    perfect = metric.compute_metrics(metric.results)
    assert perfect['analyser_accuracy'] == 1.0 == perfect['analyser_accuracy_original']
    assert perfect['psnr'] > 90 and perfect['ssim'] == pytest.approx(1.0)
    assert perfect['codebook_usage'] == 4 / 16 and perfect['perplexity'] == pytest.approx(4.0)

    metric = SceneReconstructionMetric(codebook_size=16)
    metric.process({}, scene_samples(20, torch.zeros_like))
    blank = metric.compute_metrics(metric.results)
    assert blank['analyser_accuracy'] == 0.0 and blank['psnr'] < 20


def test_procedural_scenes_dataset_holds_out_pairs():
    train = ProceduralScenes(300, image_size=32, seed=0, held_out='exclude')
    unseen = ProceduralScenes(20, image_size=32, seed=0, held_out='only')
    assert not any(uses_held_out_pair(parse_caption(s.caption)) for s in train.scenes)
    assert all(uses_held_out_pair(parse_caption(s.caption)) for s in unseen.scenes)
    assert [s.caption for s in ProceduralScenes(5, seed=7).scenes] == [
        s.caption for s in ProceduralScenes(5, seed=7).scenes
    ]
    with pytest.raises(ValueError, match='held_out'):
        ProceduralScenes(5, held_out='sometimes')
    on_grid = ProceduralScenes(50, image_size=32, seed=0, jitter_step=1 / 16)
    offsets = np.array([o for s in on_grid.scenes for o in s.offsets]) * 16
    assert np.allclose(offsets, np.round(offsets)) and np.abs(offsets).max() > 0
    with pytest.raises(ValueError, match='jitter_step'):
        ProceduralScenes(5, jitter_step=-1)


def test_reconstruction_metric_skips_the_analyser_for_other_captions():
    samples = scene_samples(4, lambda image: image.clone())
    for sample in samples[:2]:
        sample['caption'] = 'a photo of a dog on a sofa'
    metric = SceneReconstructionMetric(codebook_size=16)
    metric.process({}, samples)
    scores = metric.compute_metrics(metric.results)
    assert scores['analysed_images'] == 2 and scores['analyser_accuracy'] == 1.0


def test_every_phrasing_parses_back_to_its_scene():
    """Each of the five phrasings of every scene reads back as that scene, and only that one;
    case, the full stop and WordPiece splits do not matter."""
    descriptions = all_descriptions()
    for description in descriptions[::7]:
        texts = paraphrases(description)
        assert len(set(texts)) == 5 and parse_caption(texts[0]) == description
        assert all(parse_paraphrase(text) == description for text in texts)
    two = next(d for d in descriptions if d.relation == 'above' and d.objects[0].shape == 'circle')
    written = paraphrases(two)[2]  # 'a ... below a ...': the inverse relation, objects swapped
    assert parse_paraphrase(written.capitalize() + '.') == two
    assert parse_paraphrase(written.replace('circle', 'cir ##cle')) == two
    assert parse_paraphrase(written.replace(' below ', ' above ')) != two
    assert parse_paraphrase('a small red circle somewhere') is None


def test_scene_caption_accuracy_reads_any_phrasing():
    scenes = ProceduralScenes(12, image_size=32, seed=5).scenes
    references = [paraphrases(parse_caption(s.caption)) for s in scenes]
    written = [refs[(i % 4) + 1] for i, refs in enumerate(references)]  # paraphrases, not first
    written[0] = references[1][0]  # another scene's caption: wrong
    written[1] = 'a picture of nothing'  # no scene: wrong
    metric = SceneCaptionAccuracy()
    samples = [dict(references=r, pred_caption=w) for r, w in zip(references, written)]
    metric.process({}, samples)
    scores = metric.compute_metrics(metric.results)
    seen = [not uses_held_out_pair(parse_caption(s.caption)) for s in scenes]
    expected = np.mean([i >= 2 for i, ok in enumerate(seen) if ok])
    assert scores['caption_accuracy_all'] == pytest.approx(expected)
    assert scores['count_all'] == sum(seen)
    with pytest.raises(ValueError, match='not a scene caption'):
        metric.process({}, [dict(references=['a dog'], pred_caption='a dog')])
