"""Linear probes: the image feature, the feature cache, both classifiers and the suite tool."""

from __future__ import annotations

import csv
import importlib.util
import os
import textwrap

import numpy as np
import pytest
import torch
from conftest import FIXTURES, REPO, tiny_davinci_config
from PIL import Image

from davinci_zoo.probes.cache import FeatureCache
from davinci_zoo.probes.probe_task import split_features
from davinci_zoo.probes.sources import DaVinciSource, PixelSource

PROBE_CONFIGS = REPO / 'configs' / 'downstream' / 'linear_probe'
PROBE_NAMES = [
    'imagenet',
    'food101',
    'cifar10',
    'cifar100',
    'stanford_cars',
    'fgvc_aircraft',
    'dtd',
    'oxford_pets',
    'flowers102',
    'mnist',
    'stl10',
    'country211',
    'scenes_shapes',
]
COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255))  # RGB, one class each


def tiny_model(**overrides):
    from davinci_zoo.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(tiny_davinci_config(**overrides)).eval()


def save_tiny_checkpoint(path) -> str:
    """A tiny DaVinci (with its random tokenizer) saved as mmengine does: weights + cfg text."""
    from mmengine.config import Config

    from davinci_zoo.checkpoint import save_checkpoint_file

    cfg = Config(dict(model=tiny_davinci_config()))
    model = tiny_model()
    meta = dict(cfg=cfg.pretty_text)
    save_checkpoint_file(dict(meta=meta, state_dict=model.state_dict()), path)
    return str(path)


def write_colour_folders(root, per_class: dict[str, int]) -> None:
    """ImageFolder layout: root/<split>/class<k>/<i>.png, a coloured square on noise."""
    rng = np.random.default_rng(0)
    for split, count in per_class.items():
        for label, colour in enumerate(COLOURS):
            folder = root / split / f'class{label}'
            folder.mkdir(parents=True)
            for index in range(count):
                image = rng.integers(0, 60, (20, 20, 3)).astype(np.uint8)
                image[3:17, 3:17] = colour
                Image.fromarray(image).save(folder / f'{index}.png')


def colour_probe_data(root) -> dict:
    split = dict(type='CustomDataset', data_root=str(root))
    return dict(
        name='colours',
        num_classes=3,
        load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
        train=dict(split, data_prefix='train'),
        val=None,
        test=dict(split, data_prefix='test'),
    )


# -- the feature ---------------------------------------------------------------------------
def test_image_features_are_the_three_states_of_the_original():
    from davinci_zoo.models.davinci.features import FEATURE_PARTS, PROMPT, image_features

    model = tiny_model(objectives=[], image_tokenizer=None)
    width = model.hidden_size
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = image_features(model, images)
        # by hand, with the original's indexing: encoder(image, "[CLS]") -> [image CLS,
        # patches, text CLS]; patches are [1:-1]; the decoder reads "[CLS] a picture of [SEP]"
        ids, mask = model.tokenize([''] * 3)
        memory, memory_mask = model.encode(images, ids, mask)
        prompt, _ = model.tokenize([PROMPT] * 3)
        assert prompt[0, -1].item() == model.text_tokenizer.sep_id
        positions = torch.arange(prompt.shape[1])
        hidden = model.decoder_hidden(prompt, positions, memory, memory_mask)
        alone = image_features(model, images[1:2])
        other_prompt = image_features(model, images, prompt='a photo of a')
    assert FEATURE_PARTS == ('image_cls', 'patch_mean', 'prompt_sep')
    assert features.shape == (3, 3 * width)
    torch.testing.assert_close(features[:, :width], memory[:, 0])
    torch.testing.assert_close(features[:, width : 2 * width], memory[:, 1:-1].mean(1))
    torch.testing.assert_close(features[:, 2 * width :], hidden[:, -1])
    torch.testing.assert_close(alone, features[1:2], rtol=1e-5, atol=1e-5)  # batch-independent
    torch.testing.assert_close(other_prompt[:, : 2 * width], features[:, : 2 * width])
    assert not torch.allclose(other_prompt[:, 2 * width :], features[:, 2 * width :])


# -- the cache -----------------------------------------------------------------------------
def counting_source(checkpoint, calls: list) -> DaVinciSource:
    """A checkpoint's source whose model counts its encoder runs in ``calls``."""
    from davinci_zoo.probes.sources import checkpoint_model_config

    source = DaVinciSource(
        checkpoint, checkpoint_model_config(checkpoint), checkpoint, device='cpu'
    )
    model = source.model
    encode = model.encode
    model.encode = lambda *args, **kwargs: calls.append(1) or encode(*args, **kwargs)
    return source


def test_feature_cache_runs_the_model_once_and_recomputes_a_broken_file(tmp_path):
    write_colour_folders(tmp_path / 'data', dict(train=2, test=1))
    checkpoint = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    probe_data = colour_probe_data(tmp_path / 'data')
    cache = FeatureCache(tmp_path / 'cache')
    calls = []
    features, labels = split_features(
        probe_data, 'train', counting_source(checkpoint, calls), cache
    )
    assert features.shape == (6, 3 * 32) and features.dtype == torch.float32
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert len(calls) == 1  # one batch

    fresh = DaVinciSource(checkpoint, counting_source(checkpoint, []).model_cfg, checkpoint)
    again, again_labels = split_features(probe_data, 'train', fresh, cache)
    assert fresh._model is None  # the warm cache never built the model
    torch.testing.assert_close(again, features)
    assert torch.equal(again_labels, labels)

    (stored,) = (tmp_path / 'cache').glob('colours-train-*.safetensors')
    stored.write_bytes(stored.read_bytes()[:-50])  # a torn file
    recount = []
    with pytest.warns(RuntimeWarning, match='not usable'):
        repaired, _ = split_features(
            probe_data, 'train', counting_source(checkpoint, recount), cache
        )
    assert len(recount) == 1
    torch.testing.assert_close(repaired, features)
    assert not list((tmp_path / 'cache').glob('.*.tmp'))  # written via a temporary name


def test_the_cache_key_changes_with_the_split_the_transform_and_the_weights(tmp_path):
    write_colour_folders(tmp_path / 'data', dict(train=1, test=1))
    probe_data = colour_probe_data(tmp_path / 'data')
    cache = FeatureCache(tmp_path / 'cache')
    for source in (PixelSource('pixels', 32), PixelSource('pixels', 16), PixelSource('p', 32, 8)):
        for split in ('train', 'test'):
            split_features(probe_data, split, source, cache)
    assert len(list((tmp_path / 'cache').iterdir())) == 6
    features, _ = split_features(probe_data, 'test', PixelSource('pixels', 32, 8), cache)
    assert features.shape == (3, 3 * 8 * 8)  # averaged down to 8 px a side


# -- the classifiers -----------------------------------------------------------------------
def separable(count: int, seed: int, dims: int = 20, classes: int = 4):
    """Points labelled by the largest of 4 fixed linear scores, kept only with a margin."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(dims, classes, generator=torch.Generator().manual_seed(99))
    features = torch.randn(count * 4, dims, generator=generator) * 2 + 1
    scores = features @ weight
    top = scores.topk(2, dim=1).values
    kept = (top[:, 0] - top[:, 1]) > 1.0
    return features[kept][:count], scores[kept][:count].argmax(1)


def blobs(count: int, seed: int, dims: int = 20, classes: int = 4):
    """Gaussian clusters (std 1) around 8 * e_k: separable with a wide margin."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % classes
    features = torch.randn(count, dims, generator=generator)
    features[torch.arange(count), labels] += 8.0
    return features, labels


def test_lbfgs_logistic_probe_separates_a_separable_set_exactly():
    from davinci_zoo.probes.logistic import fit_logistic, holdout_split, sweep_and_fit

    features, labels = separable(400, seed=0)
    assert fit_logistic(features, labels, 4, l2=1e-6).accuracy(features, labels) == 1.0
    assert fit_logistic(features, labels, 4, l2=10.0).accuracy(features, labels) < 1.0

    train, test = blobs(200, seed=0), blobs(100, seed=1)
    fit, val = holdout_split(*train, fraction=0.25, seed=0)
    result = sweep_and_fit(fit, val, test, num_classes=4, grid=(1e-4, 1e-2, 1.0), refine=True)
    assert result.test_accuracy == 1.0
    assert set(result.val_accuracy) >= {1e-4, 1e-2, 1.0} and len(result.val_accuracy) >= 4
    assert result.val_accuracy[result.l2] == max(result.val_accuracy.values())


def test_bn_linear_head_keeps_fixed_statistics_as_decided():
    from davinci_zoo.probes.bn_linear import BNLinearSettings, head_accuracy, train_bn_linear

    features, labels = blobs(200, seed=2)
    features = features * 50 + 300  # far from standard: the statistics must do their job
    settings = BNLinearSettings(epochs=20, warmup_epochs=2, batch_size=32, lr=1e-2)
    head = train_bn_linear(features, labels, 4, settings)
    torch.testing.assert_close(head.bn.running_mean, features.mean(0))  # set once, never moved
    torch.testing.assert_close(head.bn.running_var, features.var(0, unbiased=False))
    test, test_labels = blobs(100, seed=3)
    assert head_accuracy(head, test * 50 + 300, test_labels) == 1.0
    original = train_bn_linear(
        features, labels, 4, BNLinearSettings(epochs=1, bn_statistics='identity')
    )
    assert torch.equal(original.bn.running_mean, torch.zeros(20))  # the original's identity
    assert torch.equal(original.bn.running_var, torch.ones(20))


def test_config_text_is_read_without_running_it():
    from davinci_zoo.probes.config_text import UnsafeConfigText, config_value

    text = "model = dict(type='DaVinci', sizes=(1, -2), extra={'a': [None, True]})\nx = 1\n"
    assert config_value(text, 'model') == dict(
        type='DaVinci', sizes=(1, -2), extra={'a': [None, True]}
    )
    with pytest.raises(UnsafeConfigText):
        config_value("model = __import__('os').system('true')", 'model')
    with pytest.raises(KeyError):
        config_value(text, 'head')


# -- the configs and the suite ---------------------------------------------------------------
def test_a_probe_config_for_every_dataset_of_the_suite():
    from davinci_zoo.cli import load_config
    from davinci_zoo.probes.tasks import known_tasks

    assert {f'probe_{name}' for name in PROBE_NAMES} <= set(known_tasks(str(PROBE_CONFIGS.parent)))
    for name in PROBE_NAMES:
        cfg = load_config(str(PROBE_CONFIGS / f'{name}.py'))
        assert cfg.probe_data.name == name and cfg.probe.classifier in ('bn_linear', 'logistic')
        assert cfg.probe_data.train and cfg.probe_data.test


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'tool_probe_suite', REPO / 'tools' / 'probe_suite.py'
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_suite(capsys, *argv):
    from davinci_zoo.cli import run_tool

    suite = run_tool(load_tool().main, [str(arg) for arg in argv])
    return suite, capsys.readouterr().err


def probe_configs(root, data, absent) -> None:
    """root/linear_probe/colours.py (data present) and absent.py (its data_root missing)."""
    folder = root / 'linear_probe'
    folder.mkdir(parents=True)
    base = PROBE_CONFIGS / 'probe_base.py'
    for name, probe_data in (
        ('colours', colour_probe_data(data)),
        ('absent', dict(colour_probe_data(absent), name='absent')),
    ):
        (folder / f'{name}.py').write_text(
            f'_base_ = [{str(base)!r}]\nprobe_data = {probe_data!r}\n'
            'probe = dict(bn_linear=dict(epochs=5, warmup_epochs=1))\n'
        )


def test_probe_suite_writes_the_table_and_plot_and_reuses_the_cache(capsys, tmp_path):
    write_colour_folders(tmp_path / 'data', dict(train=4, test=2))
    checkpoint = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    probe_configs(tmp_path / 'configs', tmp_path / 'data', tmp_path / 'no_such_data')
    argv = [
        checkpoint,
        '--out',
        tmp_path / 'out',
        '--configs',
        tmp_path / 'configs',
        '--cache-dir',
        tmp_path / 'cache',
        '--baselines',
        'random,tokenizer,pixels',
        '--tasks',
        'probe_colours,probe_absent',
        '--device',
        'cpu',
    ]
    suite, err = run_suite(capsys, *argv)
    assert f'probe_absent: skipped, its data is not at {tmp_path / "no_such_data"}' in err
    assert (suite.ran, suite.skipped, suite.failed) == (1, 1, 0)
    with open(tmp_path / 'out' / 'results.csv') as stream:
        rows = list(csv.DictReader(stream))
    assert [(r['task'], r['model'], r['metric']) for r in rows] == [
        ('probe_colours', os.path.normpath(checkpoint), 'accuracy'),
        ('probe_colours', 'random', 'accuracy'),
        ('probe_colours', 'tokenizer', 'accuracy'),
        ('probe_colours', 'pixels', 'accuracy'),
    ]
    assert all(0 <= float(r['value']) <= 100 and r['method'] == 'bn_linear' for r in rows)
    assert float(rows[-1]['value']) == 100.0  # percent; the colours are in the pixels
    table = (tmp_path / 'out' / 'results.md').read_text()
    assert '| probe_colours | accuracy |' in table and 'probe_absent: skipped' in table
    assert (tmp_path / 'out' / 'results.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert err.count('features of') == 8  # 4 sources x 2 splits extracted

    warm, err = run_suite(capsys, *argv, '--classifier', 'logistic')
    assert 'features of' not in err  # all from the cache
    assert [row.method for row in warm.rows] == ['logistic'] * 4


def test_probe_suite_bad_input_is_one_line(capsys, tmp_path):
    from davinci_zoo.cli import run_tool

    main = load_tool().main
    checkpoint = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    (tmp_path / 'no_model.py').write_text('x = 1\n')
    for argv, expected in (
        ([str(tmp_path / 'nope.pth'), '--out', str(tmp_path)], 'does not exist'),
        (
            [checkpoint, '--out', str(tmp_path), '--tasks', 'probe_nope'],
            'known tasks: probe_cifar10, probe_cifar100',
        ),
        (
            [checkpoint, '--out', str(tmp_path), '--model-config', str(tmp_path / 'no_model.py')],
            'has no model',
        ),
    ):
        with pytest.raises(SystemExit) as stopped:
            run_tool(main, argv)
        err = capsys.readouterr().err.strip()
        assert stopped.value.code == 2 and err.startswith('error: ') and expected in err
        assert len(err.splitlines()) == 1


GLUE_MODEL = '''
import os
from toy_zoo import ToyRegressor
from davinci_zoo.registry import MODELS


@MODELS.register_module()
class ToyStarted(ToyRegressor):
    """The toy regressor, refusing a start checkpoint that is not there."""

    def __init__(self, hidden=16, pretrained=None):
        super().__init__(hidden)
        if pretrained is not None and not os.path.isfile(pretrained):
            raise FileNotFoundError(pretrained)
'''


@pytest.mark.subprocess
@pytest.mark.slow(budget_s=120)  # two tool processes: train, then test
def test_probe_suite_runs_a_glue_config_through_train_and_test(capsys, tmp_path, monkeypatch):
    (tmp_path / 'toy_started.py').write_text(GLUE_MODEL)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join([str(FIXTURES), str(tmp_path), str(REPO)]))
    monkeypatch.syspath_prepend(str(tmp_path))  # the suite reads the config here too
    (tmp_path / 'configs' / 'glue').mkdir(parents=True)
    (tmp_path / 'configs' / 'glue' / 'toy.py').write_text(
        textwrap.dedent(f"""
        _base_ = [{str(FIXTURES / 'configs' / 'toy_regression.py')!r}]
        custom_imports = dict(imports=['toy_zoo', 'toy_started'], allow_failed_imports=False)
        model = dict(type='ToyStarted', pretrained=None)
        train_cfg = dict(max_iters=4)
        custom_hooks = []
        data_root = {str(tmp_path)!r}
        suite_metrics = ['mse']
        """)
    )
    checkpoint = save_tiny_checkpoint(tmp_path / 'tiny.pth')
    argv = [checkpoint, '--out', tmp_path / 'out', '--configs', tmp_path / 'configs']
    argv += ['--cache-dir', tmp_path / 'cache', '--tasks', 'glue_toy', '--device', 'cpu']
    suite, err = run_suite(capsys, *argv)
    assert suite.failed == 0, err
    ((row),) = suite.rows
    assert (row.task, row.metric, row.method) == ('glue_toy', 'mse', 'finetune') and row.value > 0
    assert (tmp_path / 'out' / 'glue' / 'glue_toy').is_dir()
    again, _ = run_suite(capsys, *argv)
    assert again.rows[0].value == row.value and 'reused' in again.rows[0].detail
