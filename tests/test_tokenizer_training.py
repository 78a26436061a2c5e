"""Training and evaluating image tokenizers from configs, the reconstruction metric, benchmark."""

import json

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool

from davinci_zoo.datasets.scene_dataset import ProceduralScenes
from davinci_zoo.evaluation.reconstruction_metric import ReconstructionMetric

VQGAN_CONFIG = str(REPO / 'configs' / 'tokenizers' / 'vqgan_f4_scenes32.py')
DVAE_CONFIG = str(REPO / 'configs' / 'tokenizers' / 'dvae_f4_scenes32.py')


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
    metric = ReconstructionMetric(codebook_size=16)
    metric.process({}, scene_samples(20, lambda image: image.clone()))
    perfect = metric.compute_metrics(metric.results)
    assert perfect['analyser_accuracy'] == 1.0 == perfect['analyser_accuracy_original']
    assert perfect['psnr'] > 90 and perfect['ssim'] == pytest.approx(1.0)
    assert perfect['codebook_usage'] == 4 / 16 and perfect['perplexity'] == pytest.approx(4.0)

    metric = ReconstructionMetric(codebook_size=16)
    metric.process({}, scene_samples(20, torch.zeros_like))
    blank = metric.compute_metrics(metric.results)
    assert blank['analyser_accuracy'] == 0.0 and blank['psnr'] < 20


def test_procedural_scenes_dataset_holds_out_pairs():
    from davinci_zoo.scenes import parse_caption, uses_held_out_pair

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
