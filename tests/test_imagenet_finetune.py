"""ImageNet fine-tuning: the image-classification head's loss (hard and Mixup/CutMix soft
targets, label smoothing) and predictions, DaVinci's layers for layer-wise lr decay, the
paper recipe's pipelines on files in ImageNet's layout, and the scene config through
tools/train.py and tools/test.py (top-1 / top-5)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool, tiny_davinci_config
from davinci_zoo_scenes import generate_scenes, render
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

from davinci_zoo.engine.optim import build_optim_wrapper
from davinci_zoo.models.davinci.features import image_features
from davinci_zoo.models.davinci.layer_depth import layer_depth
from davinci_zoo.registry import DATASETS, MODELS

CLASSES = 6
SMOOTHING = 0.1
HEAD = dict(type='ImageClassificationHead', num_classes=CLASSES, label_smoothing=SMOOTHING)
BASE = REPO / 'configs' / 'downstream' / 'imagenet' / 'imagenet_base.py'
SCENES = REPO / 'configs' / 'downstream' / 'imagenet' / 'imagenet_scenes32.py'


def tiny_model(**overrides):
    """A tiny DaVinci (2 + 2 layers) with the head; its config names an image tokenizer."""
    cfg = tiny_davinci_config(
        objectives=[], head=HEAD, encoder_layers=2, decoder_layers=2, **overrides
    )
    torch.manual_seed(0)
    return MODELS.build(cfg)


def samples(labels):
    from mmpretrain.structures import DataSample

    return [DataSample().set_gt_label(label) for label in labels]


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum((1 - s) target + s / C) log softmax(logits), written out."""
    smoothed = (1 - SMOOTHING) * target + SMOOTHING / target.shape[1]
    return -(smoothed * logits.log_softmax(1)).sum(1).mean()


def test_the_head_trains_every_part_on_hard_labels_and_builds_no_tokenizer():
    """Loss against gt_label = the smoothed cross-entropy of the MLP on the 3D feature; the
    gradient reaches the embedder, every encoder and decoder layer and the head."""
    model = tiny_model().train()
    assert model.image_tokenizer is None  # the head declares no parts
    assert model.head.classifier[0].in_features == 3 * 32  # 3D -> D -> ReLU -> classes
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    labels = [0, 3, 5, 3]
    losses = model.loss(dict(images=images), samples(labels))
    assert set(losses) == {'loss_cls', 'accuracy'}
    with torch.no_grad():
        logits = model.head.classifier(image_features(model, images))
    one_hot = torch.nn.functional.one_hot(torch.tensor(labels), CLASSES).float()
    torch.testing.assert_close(losses['loss_cls'], smoothed_cross_entropy(logits, one_hot))
    expected = (logits.argmax(1) == torch.tensor(labels)).float().mean()
    assert losses['accuracy'] == expected
    losses['loss_cls'].backward()
    reached = [
        name
        for name, param in model.named_parameters()
        if param.grad is not None and param.grad.abs().sum() > 0
    ]
    parts = ('image_embedder.', 'encoder.layers.0.', 'encoder.layers.1.', 'decoder.layers.0.')
    for part in (*parts, 'decoder.layers.1.', 'head.classifier.'):
        assert any(name.startswith(part) for name in reached), part


def test_mixup_and_cutmix_give_soft_targets_the_loss_uses():
    """The data preprocessor's Mixup / CutMix batch augments mix the images and set gt_score
    (two one-hot labels mixed, rows summing to 1); the head's loss is the smoothed
    cross-entropy against those scores, and the hard loss is the soft loss of one-hot rows."""
    preprocessor = dict(
        type='DaVinciDataPreprocessor',
        num_classes=CLASSES,
        batch_augments=dict(
            augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]
        ),
    )
    model = tiny_model(data_preprocessor=preprocessor).train()
    generator = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = [0, 1, 2, 3, 4, 5]
    np.random.seed(0)
    torch.manual_seed(0)
    batch = model.data_preprocessor(
        dict(inputs=dict(images=images), data_samples=samples(labels)), training=True
    )
    scores = torch.stack([s.gt_score for s in batch['data_samples']])
    torch.testing.assert_close(scores.sum(1), torch.ones(6))
    assert ((scores > 0).sum(1) <= 2).all() and (scores < 1).any()  # two labels mixed
    losses = model.loss(batch['inputs'], batch['data_samples'])
    with torch.no_grad():
        logits = model.head.classifier(image_features(model, batch['inputs']['images']))
    torch.testing.assert_close(losses['loss_cls'], smoothed_cross_entropy(logits, scores))
    assert losses['accuracy'] == (logits.argmax(1) == scores.argmax(1)).float().mean()
    hard = model.loss(batch['inputs'], samples(labels))['loss_cls']
    one_hot = [s.set_gt_score(torch.eye(CLASSES)[k]) for s, k in zip(samples(labels), labels)]
    torch.testing.assert_close(hard, model.loss(batch['inputs'], one_hot)['loss_cls'])
    wrong = [s.set_gt_score(torch.ones(CLASSES + 1)) for s in samples(labels)]
    with pytest.raises(ValueError, match="data preprocessor's num_classes"):
        model.loss(batch['inputs'], wrong)


def test_predict_sets_scores_that_accuracy_reads_at_top_1_and_top_5():
    """pred_score is the softmax of the logits and pred_label its argmax, on the samples given;
    mmpretrain's Accuracy(topk=(1, 5)) reads them: labels placed at rank 1, 3 and 6."""
    from mmpretrain.evaluation import Accuracy

    model = tiny_model().eval()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model.head.classifier(image_features(model, images))
    order = logits.argsort(1, descending=True)
    given = samples([int(order[0, 0]), int(order[1, 2]), int(order[2, 5])])
    predicted = model(dict(images=images), given, mode='predict')
    assert [id(s) for s in predicted] == [id(s) for s in given]
    for sample, row in zip(predicted, logits):
        torch.testing.assert_close(sample.pred_score, row.softmax(0))
        assert int(sample.pred_label) == int(row.argmax())
    metric = Accuracy(topk=(1, 5))
    metric.process(None, [sample.to_dict() for sample in predicted])
    assert metric.evaluate(3) == {
        'accuracy/top1': pytest.approx(100 / 3),
        'accuracy/top5': pytest.approx(200 / 3),
    }


def test_davinci_layers_for_layer_decay():
    """Embeddings are layer 0, encoder layers 1..E, decoder layers (and their painting bias
    tables) E+1..E+D, the word prediction head E+D, the task head E+D+1 of E+D+2."""
    expected = {
        'image_embedder.layer3.0.conv1.weight': 0,
        'image_embedder.pos_embed': 0,
        'encoder.embeddings.word_embeddings.weight': 0,
        'decoder.embeddings.position_embeddings.weight': 0,
        'decoder.image_grid_embeddings.row_embeddings.weight': 0,
        'encoder.layers.0.attention.self.query.weight': 1,
        'encoder.layers.2.output.LayerNorm.bias': 3,
        'decoder.layers.0.crossattention.self.key.weight': 4,
        'decoder.painting_bias.tables.1.relative_bias_table': 5,
        'decoder.layers.1.output.dense.weight': 5,
        'decoder.head.transform.dense.weight': 5,
        'head.classifier.2.weight': 6,
    }
    for name, layer in expected.items():
        assert layer_depth(name, 3, 2) == (layer, 7), name
    with pytest.raises(ValueError, match='no such layer'):
        layer_depth('decoder.layers.2.output.dense.weight', 3, 2)


PARAMWISE = dict(
    norm_decay_mult=0.0,
    bias_decay_mult=0.0,
    custom_keys={
        'pos_embed': dict(decay_mult=0.0),
        'relative_bias_table': dict(decay_mult=0.0, lr_mult=20.0),
    },
)


def optimizer_settings(model, constructor: str, **paramwise) -> dict[str, tuple]:
    """parameter name -> (lr, weight decay) as the built optimizer holds them."""
    wrapper = build_optim_wrapper(
        model,
        dict(
            constructor=constructor,
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
            paramwise_cfg=dict(PARAMWISE, **paramwise),
        ),
    )
    held = {
        id(param): (group['lr'], group['weight_decay'])
        for group in wrapper.optimizer.param_groups
        for param in group['params']
    }
    groups = len(wrapper.optimizer.param_groups)
    return {name: held[id(param)] for name, param in model.named_parameters()}, groups


def test_layer_decay_scales_each_layers_learning_rate():
    """lr x 0.5 ** (layers above): the head at 1e-3, the embeddings at 1e-3 / 2**5 (n = 6);
    weight decay and lr_mult as configured; one param group per (layer, setting)."""
    model = tiny_model()
    names = [name for name, _ in model.named_parameters()]
    norm_types = (torch.nn.LayerNorm, torch.nn.BatchNorm2d, torch.nn.GroupNorm)
    norms = {
        f'{prefix}.{name}'
        for prefix, module in model.named_modules()
        if isinstance(module, norm_types)
        for name, _ in module.named_parameters(recurse=False)
    }
    settings, groups = optimizer_settings(
        model, 'LayerDecayOptimWrapperConstructor', layer_decay_rate=0.5
    )
    assert groups < len(names) / 4
    for name in names:
        layer, count = model.get_layer_depth(name)
        assert count == 6
        multiplier = 20.0 if 'relative_bias_table' in name else 1.0
        lr, decay = settings[name]
        assert math.isclose(lr, 1e-3 * 0.5 ** (count - 1 - layer) * multiplier), name
        no_decay = name in norms or name.endswith('.bias') or 'pos_embed' in name
        no_decay = no_decay or 'relative_bias_table' in name
        assert decay == (0.0 if no_decay else 0.05), name
    assert settings['head.classifier.2.weight'][0] == 1e-3
    assert math.isclose(settings['image_embedder.conv1.weight'][0], 1e-3 / 32)


def test_layer_decay_off_is_the_grouped_constructor():
    """layer_decay_rate=1.0 (the recipe's default) gives every parameter the lr and weight
    decay of GroupedOptimWrapperConstructor with the same paramwise settings."""
    model = tiny_model()
    off, _ = optimizer_settings(model, 'LayerDecayOptimWrapperConstructor', layer_decay_rate=1.0)
    grouped, _ = optimizer_settings(model, 'GroupedOptimWrapperConstructor')
    assert off == grouped


def write_imagenet_layout(root: Path, per_split: int = 2) -> None:
    """mmpretrain's ImageNet layout: train/<wnid>/<wnid>_<n>.JPEG and val/ILSVRC2012_val_*.JPEG
    with meta/train.txt and meta/val.txt ('<path> <label>' per line); JPEGs of other sizes."""
    rng = np.random.default_rng(0)
    lines = {'train': [], 'val': []}
    for index in range(per_split):
        for split in lines:
            height, width = (300, 400) if index % 2 else (375, 250)
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            name = (
                f'n0144076{index}/n0144076{index}_{index}.JPEG'
                if split == 'train'
                else f'ILSVRC2012_val_{index + 1:08d}.JPEG'
            )
            path = root / split / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path, format='JPEG')
            lines[split].append(f'{name} {index}')
    (root / 'meta').mkdir()
    for split, rows in lines.items():
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(rows) + '\n')


def test_the_paper_recipe_reads_imagenet_at_its_resolution(tmp_path):
    """The base config: ImageNet statistics, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, lr
    8e-3 at the original's 8 x 512; its train pipeline (crop, flip, RandAugment, erasing) and
    test pipeline (resize, centre crop) give 256 px images of files in ImageNet's layout."""
    cfg = Config.fromfile(str(BASE))
    model = cfg.model
    assert model.objectives == [] and model.head.type == 'ImageClassificationHead'
    assert model.head.label_smoothing == 0.1 and model.head.num_classes == 1000
    assert model.data_preprocessor.mean == (123.675, 116.28, 103.53)
    augments = model.data_preprocessor.batch_augments.augments
    assert [(a.type, a.alpha) for a in augments] == [('Mixup', 0.8), ('CutMix', 1.0)]
    total = 8 * cfg.train_dataloader.batch_size
    lr = cfg.optim_wrapper.optimizer.lr * total / cfg.auto_scale_lr.base_batch_size
    assert math.isclose(lr, 8e-3) and cfg.auto_scale_lr.enable
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 1.0  # off by default
    assert cfg.test_evaluator == dict(type='Accuracy', topk=(1, 5))
    write_imagenet_layout(tmp_path)
    for loader in ('train_dataloader', 'test_dataloader'):
        dataset = dict(cfg[loader].dataset, data_root=str(tmp_path))
        with DefaultScope.overwrite_default_scope('davinci_zoo'):
            built = DATASETS.build(dataset)
            items = [built[index] for index in range(len(built))]
        assert len(items) == 2 and len(built.metainfo['classes']) == 1000
        for index, item in enumerate(items):
            assert tuple(item['inputs']['images'].shape) == (3, 256, 256)
            assert item['inputs']['images'].dtype == torch.uint8
            assert int(item['data_samples'].gt_label) == index


def quickstart_checkpoint(folder: Path) -> str:
    """The weights of a DaVinci built from the quick start's config (tokenizer included), as
    the scene config's ``pretrained`` file: they must load strictly into the task model."""
    cfg = Config.fromfile(str(REPO / 'configs' / 'davinci_tiny_scenes32.py'))
    torch.manual_seed(0)
    path = folder / 'iter_700.pth'
    torch.save(MODELS.build(cfg.model).state_dict(), path)
    return str(path)


def write_image_folder(root: Path, classes: int, per_class: int, seed: int) -> None:
    """ImageFolder: <root>/<class>/<n>.png, 32 px scenes."""
    scenes = generate_scenes(classes * per_class, seed, two_object_prob=0.5)
    for index, scene in enumerate(scenes):
        path = root / f'class_{index % classes:02d}' / f'{index}.png'
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(render(scene, 32)).save(path)


@pytest.mark.slow(budget_s=120)
@pytest.mark.subprocess
def test_the_scene_config_fine_tunes_and_scores_top1_and_top5_through_the_tools(tmp_path):
    """Two training steps of the scene config (one image per class, batch of half of them)
    from a quick-start-shaped checkpoint, validation, then tools/test.py writes
    accuracy/top1 and accuracy/top5 of the test folder."""
    cfg = Config.fromfile(str(SCENES))
    classes = cfg.model.head.num_classes
    assert classes >= 5 and cfg.test_evaluator.topk == (1, 5)
    data = tmp_path / 'classification'
    write_image_folder(data / 'train', classes, 1, seed=0)
    write_image_folder(data / 'test', classes, 1, seed=1)
    checkpoint = quickstart_checkpoint(tmp_path)
    work = tmp_path / 'work'
    data_options = [
        f'{loader}_dataloader.dataset.data_root={data}' for loader in ('train', 'val', 'test')
    ]
    options = [
        f'model.pretrained={checkpoint}',
        f'train_dataloader.batch_size={math.ceil(classes / 2)}',
        'train_cfg.max_epochs=1',
        *data_options,
    ]
    one_thread = dict(OMP_NUM_THREADS='1')
    train_args = ['--work-dir', str(work), '--cfg-options', *options]
    train = run_tool('tools/train.py', str(SCENES), *train_args, **one_thread)
    assert train.returncode == 0, train.stderr[-3000:]
    log = train.stdout + train.stderr
    assert 'loaded ' in log and 'dropped' in log  # the quick start's tokenizer is not built
    assert 'loss_cls: ' in log and 'accuracy/top5: ' in log
    assert re.search(r'Epoch\(train\) +\[1\]\[2/2\]', log)  # exactly two steps
    metrics = tmp_path / 'metrics.json'
    test_args = ['--work-dir', str(work), '--metrics-json', str(metrics)]
    test_args += ['--cfg-options', *data_options]
    trained = str(work / 'epoch_1.pth')
    test = run_tool('tools/test.py', str(SCENES), trained, *test_args, **one_thread)
    assert test.returncode == 0, test.stderr[-3000:]
    scores = json.loads(metrics.read_text())
    for key in ('accuracy/top1', 'accuracy/top5'):
        right = scores[key] * classes / 100  # of `classes` test images
        assert 0 <= scores[key] <= 100 and abs(right - round(right)) < 1e-4, key
    assert scores['accuracy/top5'] >= scores['accuracy/top1']
