"""The training benchmark counts a full step's FLOPs and reports sane, consistent numbers."""

import json

import pytest
import torch
from conftest import run_tool
from mmengine.config import Config

from davinci_zoo.benchmarks import training
from davinci_zoo.engine.optim import build_optim_wrapper
from davinci_zoo.registry import MODELS

TINY = 'configs/davinci_tiny_scenes32.py'


def tiny_model_and_optimizer():
    cfg = Config.fromfile(TINY)
    cfg.model.update(hidden_size=64, num_heads=2, intermediate_size=128)
    cfg.model.encoder_layers = cfg.model.decoder_layers = 1
    # fixed splits (whole captions, no prefix image), so every step costs the same FLOPs
    cfg.model.objectives = [
        dict(type='PrefixLM', empty_prefix_prob=1.0),
        dict(type='PrefixImage', mode='static'),
    ]
    model = MODELS.build(cfg.model)
    return model, build_optim_wrapper(model, cfg.optim_wrapper), cfg.model.image_size


@pytest.mark.slow(budget_s=90)
def test_training_benchmark_counts_forward_and_backward(monkeypatch):
    monkeypatch.setattr(training, 'MATMUL_SIZE', 256)
    model, optim_wrapper, image_size = tiny_model_and_optimizer()
    settings = training.TrainingSettings(batch=4, steps=2, warmup=1, profile_ops=5)
    result = training.run_training_benchmark(model, optim_wrapper, image_size, settings)

    batch = training.synthetic_batch(4, image_size, 0)
    assert batch['inputs']['images'].dtype == torch.uint8  # what the data workers deliver
    inputs = model.data_preprocessor(batch, True)['inputs']
    inputs['codes'] = model.image_codes(inputs['images'])
    forward = training.count_flops(lambda: model.loss(inputs))
    # A step is forward + backward (about twice the forward) + the optimizer (no matmuls).
    assert 2.5 * forward < result['step_gflop'] * 1e9 < 3.5 * forward
    assert result['tokenizer_encode']['gflop'] > 0
    assert result['samples_per_s'] == pytest.approx(4 / result['step_seconds_best'])
    expected = result['step_gflop'] / (result['step_seconds_best'] * result['matmul_gflop_per_s'])
    assert result['utilisation'] == pytest.approx(expected)
    assert 0 < result['utilisation'] < 2
    assert set(result['losses']) == {'loss_prefixlm', 'loss_prefiximage'}
    shares = [row['share'] for row in result['op_profile']]
    assert len(shares) == 5 and shares == sorted(shares, reverse=True)
    assert result['peak_rss_mb'] > 0


def test_matmul_rate_is_the_flops_of_one_product(monkeypatch):
    monkeypatch.setattr(training, 'MATMUL_SIZE', 128)
    calls = []
    real_mm = torch.mm
    monkeypatch.setattr(torch, 'mm', lambda a, b: calls.append(a.shape) or real_mm(a, b))
    assert training.matmul_flops_per_second(repeats=3) > 0
    assert calls == [(128, 128)] * 4  # one warm-up and the timed repeats


@pytest.mark.slow(budget_s=120)
@pytest.mark.subprocess
def test_training_mode_prints_json():
    result = run_tool(
        'tools/benchmark.py', 'training', TINY, '--batch', '2', '--steps', '1', timeout=110
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report['mode'] == 'training' and report['batch'] == 2
    assert report['code_grid'] == [8, 8] and report['step_gflop'] > 0


@pytest.mark.slow(budget_s=90)
@pytest.mark.subprocess
def test_finetune_mode_times_each_frozen_set_on_the_task_data(tmp_path):
    from test_heads import classification_config, write_counting_fixture

    config = classification_config(tmp_path, write_counting_fixture(tmp_path, count=40, train=32))
    frozen = ['image_embedder', 'encoder.embeddings.word_embeddings']
    result = run_tool(
        'tools/benchmark.py', 'finetune', config, '--frozen', '', ','.join(frozen),
        '--rounds', '2', timeout=80,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report['mode'] == 'finetune' and report['batch'] == 16 and report['rounds'] == 2
    base, frozen_set = report['variants']
    assert base['frozen_parts'] == [] and frozen_set['frozen_parts'] == frozen
    ratio = frozen_set['step_seconds_mean'] / base['step_seconds_mean']
    assert frozen_set['relative'] == pytest.approx(ratio)
    model = MODELS.build(dict(Config.fromfile(config).model, pretrained=None))
    total = sum(p.numel() for p in model.parameters())
    in_frozen = sum(p.numel() for name in frozen for p in model.get_submodule(name).parameters())
    assert base['trainable_parameters'] == total
    assert frozen_set['trainable_parameters'] == total - in_frozen
    # the frozen embedder's backward is skipped: fewer FLOPs in the same forward
    assert frozen_set['step_gflop'] < base['step_gflop']
    assert base['samples_per_s'] == pytest.approx(16 / base['step_seconds_mean'])

    broken = run_tool('tools/benchmark.py', 'finetune', config, '--frozen', 'encoder.layer.9')
    assert broken.returncode == 2 and 'Traceback' not in broken.stderr
    assert (
        broken.stderr.strip()
        .splitlines()[-1]
        .startswith("error: frozen_parts: the model has no submodule 'encoder.layer.9'")
    )
