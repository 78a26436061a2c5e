"""Image folders with broken files, PSNR/SSIM, reconstruction losses, image grids."""

import numpy as np
import pytest
import torch
from PIL import Image

from davinci_zoo.datasets.bad_rows import DataFileError
from davinci_zoo.datasets.image_folder import ImageFolderImages
from davinci_zoo.evaluation.image_quality import psnr, ssim
from davinci_zoo.models.losses import PerceptualLoss, PixelL1Loss, PixelMSELoss
from davinci_zoo.visualization import image_grid, save_png


def folder_pipeline(size: int) -> list[dict]:
    return [
        dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
        dict(
            type='ResizeEdge', scale=size, edge='short', backend='pillow', interpolation='bicubic'
        ),
        dict(type='CenterCrop', crop_size=size),
        dict(type='PackDaVinciInputs'),
    ]


def write_images(folder, count, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f'img_{i}.png')


def test_image_folder_skips_and_counts_corrupt_files(tmp_path):
    write_images(tmp_path / 'a', 8)
    (tmp_path / 'a' / 'garbage.jpg').write_bytes(b'this is not a jpeg')
    good = (tmp_path / 'a' / 'img_0.png').read_bytes()
    (tmp_path / 'a' / 'sub').mkdir()
    (tmp_path / 'a' / 'sub' / 'truncated.png').write_bytes(good[:60])
    dataset = ImageFolderImages(str(tmp_path / 'a'), folder_pipeline(32), max_bad_fraction=0.5)
    assert len(dataset) == 8 and dataset.num_skipped == 2
    item = dataset[3]
    images = item['inputs']['images']
    assert images.shape == (3, 32, 32) and images.dtype == torch.uint8
    assert item['data_samples'].img_path.endswith('img_3.png')
    assert set(item['inputs']) == {'images'}  # no caption


def test_image_folder_stops_when_too_many_files_are_bad(tmp_path):
    write_images(tmp_path / 'b', 2)
    for i in range(3):
        (tmp_path / 'b' / f'bad_{i}.jpg').write_bytes(b'nope')
    with pytest.raises(DataFileError, match='3 of 5 images are unreadable'):
        ImageFolderImages(str(tmp_path / 'b'), folder_pipeline(32), max_bad_fraction=0.1)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        ImageFolderImages(str(tmp_path / 'missing'))


def test_image_folder_skips_a_file_that_breaks_after_start_up(tmp_path):
    write_images(tmp_path / 'c', 4)
    dataset = ImageFolderImages(str(tmp_path / 'c'), folder_pipeline(16), max_bad_fraction=0.5)
    dataset.paths[1].write_bytes(b'corrupted later')
    item = dataset[1]
    assert item['data_samples'].sample_idx == 2 and dataset.num_skipped == 1


def test_psnr_and_ssim_values():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(images, images), torch.ones(2))
    shifted = (images + 0.1).clamp(0, 1)
    expected = 10 * torch.log10(1 / ((shifted - images) ** 2).flatten(1).mean(1))
    assert torch.allclose(psnr(shifted, images), expected)
    slightly = (images + 0.02 * torch.randn_like(images)).clamp(0, 1)
    heavily = (images + 0.3 * torch.randn_like(images)).clamp(0, 1)
    assert (ssim(slightly, images) > ssim(heavily, images)).all()
    assert (psnr(slightly, images) > psnr(heavily, images) + 10).all()
    assert ssim(torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)).item() < 0.01
    assert torch.equal(psnr(images, images), torch.full((2,), 100.0))  # not inf
    with pytest.raises(ValueError, match='at least 6x6 pixels, got 5x8'):
        ssim(torch.rand(1, 3, 5, 8), torch.rand(1, 3, 5, 8))


def test_psnr_and_ssim_match_the_values_before_torchmetrics():
    """Numbers the hand-written PSNR/SSIM (valid-region mean, float64) gave on these images.

    PSNR agrees to float32 rounding. torchmetrics' SSIM also averages the reflect-padded
    border windows: 7e-5 off near SSIM 0.985, 2.6e-3 near 0.82 at this size (48 x 64).
    """
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 48, 64, generator=generator)
    close = (images + 0.05 * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    far = (images + 0.2 * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    before = {
        'close': ([26.30267, 26.25215], [0.98543, 0.98540]),
        'far': ([15.04123, 14.96761], [0.82038, 0.82281]),
    }
    for name, noisy in (('close', close), ('far', far)):
        psnr_before, ssim_before = map(torch.tensor, before[name])
        torch.testing.assert_close(psnr(noisy, images), psnr_before, atol=2e-5, rtol=0)
        tolerance = 1e-3 if name == 'close' else 5e-3
        torch.testing.assert_close(ssim(noisy, images), ssim_before, atol=tolerance, rtol=0)


def test_pixel_losses_and_their_names():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert PixelL1Loss(weight=2.0)(a, b).item() == pytest.approx(1.0)
    assert PixelMSELoss()(a, b).item() == pytest.approx(0.25)
    assert PixelL1Loss().name == 'loss_l1' and PixelMSELoss(name='loss_x').name == 'loss_x'


def test_perceptual_loss_reads_vgg_weights_from_a_local_file(tmp_path):
    from torchvision.models import vgg16

    path = tmp_path / 'vgg16.pth'
    torch.save({f'features.{k}': v for k, v in vgg16().features.state_dict().items()}, path)
    loss = PerceptualLoss(str(path))
    images = torch.rand(1, 3, 32, 32)
    assert loss(images, images).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(torch.rand(1, 3, 32, 32), images).item() > 0
    torch.save({'features.0.weight': torch.zeros(1)}, tmp_path / 'wrong.pth')
    with pytest.raises(Exception, match='VGG16 weights'):
        PerceptualLoss(str(tmp_path / 'wrong.pth'))


def test_image_grid_layout_and_png(tmp_path):
    red = torch.zeros(3, 4, 5)
    red[0] = 1
    grid = image_grid([[red, red], [red]], padding=1)
    assert grid.shape == (2 * 5 + 1, 2 * 6 + 1, 3)
    assert (grid[1:5, 1:6] == [255, 0, 0]).all() and (grid[6:10, 7:12] == 0).all()
    save_png(grid, tmp_path / 'grid.png')
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'grid.png')), grid)
