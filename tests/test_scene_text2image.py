"""The scene text-to-image evaluation: the scene FID network (its missing-file error, a tiny
training run saved and read back), ImageGenerationMetric built from a config naming it, the
tokenizer-reconstruction floor head, and the analyser's paint accuracy on rendered scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO
from davinci_zoo_scenes import generate_scenes, render
from davinci_zoo_scenes.features import SceneFeatures, labels_of, unit_input
from davinci_zoo_scenes.train_features import accuracies, rendered_scenes, train
from mmpretrain.structures import DataSample
from test_davinci_model import build_model

from davinci_zoo.checkpoint import CheckpointMismatchError
from davinci_zoo.cli import run_tool
from davinci_zoo.registry import HEADS, METRICS

CONFIGS = REPO / 'configs' / 'downstream' / 'text2image_coco'
TINY = dict(train_scenes=24, held_out_scenes=16, steps=3, batch_size=8)


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """A SceneFeatures trained 3 steps on 24 scenes, and its report."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp('features') / 'scene_features.safetensors'
    return str(path), train(str(path), seed=0, **TINY)


def rendered(scenes, size: int = 32) -> torch.Tensor:
    """uint8 RGB [N, 3, size, size] of scenes."""
    return torch.from_numpy(np.stack([render(s, size) for s in scenes])).permute(0, 3, 1, 2)


# -- the feature network -----------------------------------------------------------------------
def test_missing_feature_weights_are_one_line_naming_the_path_and_the_command(tmp_path, capsys):
    missing = tmp_path / 'none.safetensors'
    config = dict(
        type='ImageGenerationMetric',
        feature_extractor=dict(type='SceneFeatures', weights=str(missing)),
    )
    with pytest.raises(SystemExit) as exit_info:
        run_tool(lambda argv: METRICS.build(config), [])
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip()
    assert '\n' not in line and line.startswith('error: ')
    assert str(missing) in line
    assert f'python -m davinci_zoo_scenes.train_features --out {missing} --seed 0' in line


def test_saved_weights_read_back_into_the_same_network(weights):
    path, report = weights
    assert report['steps'] == 3 and set(report['held_out_accuracy']) == {
        'layout', 'first_object', 'second_object', 'scene', 'shape', 'colour', 'size'
    }  # fmt: skip
    network = SceneFeatures(weights=path)
    assert not any(p.requires_grad for p in network.parameters()) and not network.training
    # the held-out scenes of the run, scored again by the loaded network: the same accuracies
    images, labels = rendered_scenes(TINY['held_out_scenes'], np.random.default_rng([0, 1]))
    assert accuracies(network, images, labels) == report['held_out_accuracy']
    # any size from 32 px is read at 32 px; features [N, 64], the IS logits [N, 36]
    scenes = generate_scenes(3, seed=4, jitter_step=1 / 16)
    small, large = rendered(scenes, 32), rendered(scenes, 64)
    assert network(small).shape == (3, 64) and network.class_logits(large).shape == (3, 36)
    assert (unit_input(large) - small / 255).abs().max() <= 1.5 / 255  # area-resized
    with pytest.raises(ValueError, match='uint8 RGB'):
        network(small.float())


def test_labels_name_the_layout_and_both_objects():
    from davinci_zoo_scenes import SceneDescription
    from davinci_zoo_scenes.features import OBJECT_CLASSES
    from davinci_zoo_scenes.vocabulary import ObjectDesc

    circle, square = ObjectDesc('circle', 'red', 'small'), ObjectDesc('square', 'blue', 'large')
    one = SceneDescription((circle,), position='bottom left')
    two = SceneDescription((square, circle), relation='left of')
    red_circle = OBJECT_CLASSES.index(('circle', 'red', 'small'))
    blue_square = OBJECT_CLASSES.index(('square', 'blue', 'large'))
    assert labels_of(one) == (2, red_circle, 36)  # the third position; no second object
    assert labels_of(two) == (5, blue_square, red_circle)  # the second relation


# -- the metric from a config ------------------------------------------------------------------
def scores(metric, paintings, real=None) -> dict:
    samples = [dict(pred_painting=p.float() / 255) for p in paintings]
    for sample, image in zip(samples, real if real is not None else []):
        sample['gt_image'] = image
    metric.process(None, samples)
    return metric.evaluate(len(samples))


@pytest.mark.filterwarnings(r'ignore:std\(\)')  # one IS split has no spread
def test_the_metric_builds_the_scene_network_from_its_config(weights, tmp_path):
    path, _ = weights
    cache = tmp_path / 'reference.safetensors'
    config = dict(
        type='ImageGenerationMetric',
        feature_extractor=dict(type='SceneFeatures', weights=path),
        reference_stats=str(cache),
        is_splits=1,
    )
    real = rendered(generate_scenes(12, seed=2, jitter_step=1 / 16))
    same = scores(METRICS.build(config), real, real)
    assert abs(same['text2image/FID']) < 1e-3
    # IS from the network's class logits, by hand: exp(mean KL(p(y|x) || p(y)))
    probs = SceneFeatures(weights=path).class_logits(real).double().softmax(1)
    expected = torch.exp((probs * (probs.log() - probs.mean(0).log())).sum(1).mean())
    assert same['text2image/IS'] == pytest.approx(float(expected), rel=1e-4)
    # against the cached reference, identical paintings (no spread): FID = |mu_r - mu_b|^2 +
    # tr(cov_r)
    blank = scores(METRICS.build(config), torch.zeros_like(real))
    network = SceneFeatures(weights=path)
    features, blank_features = network(real).double(), network(torch.zeros_like(real[:1]))
    expected = (features.mean(0) - blank_features[0].double()).square().sum()
    expected += features.var(0).sum()  # torchmetrics' covariance is the unbiased one
    assert blank['text2image/FID'] == pytest.approx(float(expected), rel=1e-3)
    # a cache made with other weights is refused (the file records a hash of them)
    other = tmp_path / 'other.safetensors'
    train(str(other), seed=1, **TINY)
    with pytest.raises(CheckpointMismatchError, match='delete the file'):
        METRICS.build(
            dict(config, feature_extractor=dict(type='SceneFeatures', weights=str(other)))
        )


class ChannelMeans(torch.nn.Module):
    def forward(self, images):
        return images.float().mean((2, 3))


def test_features_without_class_logits_give_fid_and_no_inception_score():
    real = rendered(generate_scenes(6, seed=3))
    metric = METRICS.build(dict(type='ImageGenerationMetric', feature_extractor=ChannelMeans()))
    result = scores(metric, real, real)
    assert 'text2image/FID' in result and not any('IS' in key for key in result)


def test_the_scene_config_names_the_network_and_the_analyser():
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / 'text2image_coco_scenes32.py'))
    fid, paint = cfg.test_evaluator
    assert fid['feature_extractor']['type'] == 'SceneFeatures' and 'inception_weights' not in fid
    assert paint['type'] == 'ScenePaintAccuracy'
    base = Config.fromfile(str(CONFIGS / 'text2image_coco_base.py'))
    assert base.test_evaluator['inception_weights'].endswith('6726825d.pth')
    floor = Config.fromfile(str(CONFIGS / 'text2image_coco_scenes32_tokenizer_floor.py'))
    assert floor.model.head == dict(type='TokenizerReconstructionHead')
    assert floor.test_evaluator == cfg.test_evaluator


# -- the floor head ----------------------------------------------------------------------------
def test_the_floor_head_paints_the_tokenizers_reconstruction_of_the_real_image():
    torch.manual_seed(0)
    model = build_model(objectives=[], head=dict(type='TokenizerReconstructionHead')).eval()
    assert isinstance(model.head, HEADS.get('TokenizerReconstructionHead'))
    stored = rendered(generate_scenes(2, seed=5)).flip(1)  # the pipeline's BGR
    images = model.data_preprocessor.model_input(stored)
    samples = [DataSample(caption='x'), DataSample(caption='y')]
    predictions = model.predict(dict(images=images), samples)
    pixels = stored.flip(1).float() / 255
    tokenizer = model.image_tokenizer
    expected = tokenizer.decode(tokenizer.encode(pixels)).clamp(0, 1)
    for row, sample in enumerate(predictions):
        assert sample is samples[row]
        assert torch.allclose(sample.pred_painting, expected[row], atol=1e-5)
        assert torch.equal(sample.gt_image, stored[row].flip(0))  # RGB of the BGR input
    assert model.head.loss(model, dict(images=images), samples) == {}


# -- the analyser's paint accuracy -------------------------------------------------------------
def test_scene_paint_accuracy_is_one_for_the_render_and_zero_for_a_blank():
    scenes = generate_scenes(8, seed=6, jitter_step=1 / 16)
    captions = [scene.caption for scene in scenes]

    def accuracy(paintings):
        metric = METRICS.build(dict(type='ScenePaintAccuracy'))
        metric.process(
            None, [dict(pred_painting=p, caption=c) for p, c in zip(paintings, captions)]
        )
        return metric.evaluate(len(captions))

    right = accuracy([torch.from_numpy(render(s, 32)).permute(2, 0, 1) / 255 for s in scenes])
    blank = accuracy([torch.zeros(3, 32, 32)] * len(scenes))
    keys = [key for key in right if 'paint_accuracy' in key]
    assert any('one_object' in key for key in keys) and any('two_objects' in key for key in keys)
    assert all(right[key] == 1.0 and blank[key] == 0.0 for key in keys)
