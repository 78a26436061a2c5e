"""Training and evaluating image tokenizers from configs, the reconstruction metric, benchmark."""

import json

import pytest
import torch
from conftest import REPO, run_tool

from davinci_zoo.evaluation.reconstruction_metric import ReconstructionMetric

VQGAN_CONFIG = str(REPO / 'configs' / 'tokenizers' / 'vqgan_f4_scenes32.py')
DVAE_CONFIG = str(REPO / 'configs' / 'tokenizers' / 'dvae_f4_scenes32.py')


def reconstruction_samples(count, reconstruction):
    """``count`` seeded noise images [3, 16, 16] with codes 0-3 and their reconstructions."""
    generator = torch.Generator().manual_seed(3)
    samples = []
    for i in range(count):
        images = torch.rand(3, 16, 16, generator=generator)
        samples.append(
            dict(
                images=images,
                reconstruction=reconstruction(images),
                codes=torch.full((8, 8), i % 4),
            )
        )
    return samples


def test_reconstruction_metric_perfect_and_blank():
    metric = ReconstructionMetric(codebook_size=16)
    metric.process({}, reconstruction_samples(20, lambda image: image.clone()))
    perfect = metric.compute_metrics(metric.results)
    assert perfect['psnr'] > 90 and perfect['ssim'] == pytest.approx(1.0)
    assert perfect['codebook_usage'] == 4 / 16 and perfect['perplexity'] == pytest.approx(4.0)
    assert 'analyser_accuracy' not in perfect  # the scenes plugin's subclass adds it

    metric = ReconstructionMetric(codebook_size=16)
    metric.process({}, reconstruction_samples(20, torch.zeros_like))
    blank = metric.compute_metrics(metric.results)
    assert blank['psnr'] < 10 and blank['ssim'] < 0.1


@pytest.mark.slow(budget_s=300)
@pytest.mark.parametrize(
    'config, own_losses',
    [
        (VQGAN_CONFIG, ('loss_vq', 'perplexity', 'dead_codes')),
        (DVAE_CONFIG, ('loss_kl', 'temperature', 'kl_weight', 'perplexity', 'dead_codes')),
    ],
)
def test_train_then_test_a_tokenizer_from_its_config(tmp_path, config, own_losses):
    """tools/train.py and tools/test.py on the scene tokenizer configs (a few steps)."""
    train = run_tool(
        'tools/train.py',
        config,
        '--work-dir',
        str(tmp_path),
        '--cfg-options',
        'train_cfg.max_iters=12',
        'train_cfg.val_interval=12',
        'default_hooks.checkpoint.interval=12',
        'default_hooks.logger.interval=4',
        'train_dataloader.batch_size=8',
        'val_dataloader.dataset.num_scenes=20',
    )
    assert train.returncode == 0, train.stderr[-3000:]
    log = train.stdout + train.stderr
    for name in ('loss_l1', 'loss_mse', *own_losses):
        assert f'{name}: ' in log
    assert list(tmp_path.glob('reconstructions_iter_12.png'))
    metrics_path = tmp_path / 'metrics.json'
    test = run_tool(
        'tools/test.py',
        config,
        str(tmp_path / 'iter_12.pth'),
        '--work-dir',
        str(tmp_path),
        '--metrics-json',
        str(metrics_path),
        '--cfg-options',
        'test_dataloader.dataset.num_scenes=30',
    )
    assert test.returncode == 0, test.stderr[-3000:]
    metrics = json.loads(metrics_path.read_text())
    assert metrics['reconstruction/analyser_accuracy_original'] == 1.0
    assert 0 <= metrics['reconstruction/analyser_accuracy'] <= 1
    assert 0 < metrics['reconstruction/codebook_usage'] <= 1
    assert metrics['reconstruction/psnr'] > 5
    assert (tmp_path / 'reconstructions.png').is_file()


@pytest.mark.slow(budget_s=120)
def test_benchmark_tokenizer_mode_prints_json():
    result = run_tool(
        'tools/benchmark.py', 'tokenizer', VQGAN_CONFIG, '--batch', '4', '--repeats', '1'
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report['tokenizer'] == 'VQGAN' and report['code_grid'] == [8, 8]
    assert report['encode_images_per_s'] > 0 and report['decode_images_per_s'] > 0
