"""The image embedder's ResNet trunk, built from torchvision's bottleneck blocks: the same
parameter names, shapes, initialisation and outputs as the hand-written blocks it replaced."""

from __future__ import annotations

import hashlib

import pytest
import torch

from davinci_zoo.models.davinci.image_embedder import ResNetImageEmbedder

torch.set_num_threads(1)
# wide (128 per group), a pooled stride-1 stem, two blocks in stage 2: every block variant
LAYOUT = dict(
    out_dim=8,
    image_size=32,
    stage_blocks=(1, 2, 1),
    base_planes=8,
    width_per_group=128,
    stem_channels=16,
    stem_pool=True,
    stem_stride=1,
)


def filled(model: ResNetImageEmbedder) -> ResNetImageEmbedder:
    """Every parameter and BN statistic drawn from a fixed generator, in state-dict order."""
    generator = torch.Generator().manual_seed(0)
    positive = ('running_var', 'bn1.weight', 'bn2.weight', 'bn3.weight', 'downsample.1.weight')
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith('num_batches_tracked'):
                continue
            if key.endswith(positive):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            else:
                tensor.copy_(0.2 * torch.randn(tensor.shape, generator=generator))
    return model.eval()


def test_keys_shapes_and_outputs_equal_the_hand_written_trunk():
    """Numbers the hand-written bottleneck trunk gave for this layout, these weights and
    images (measured before the swap)."""
    model = filled(ResNetImageEmbedder(**LAYOUT))
    listing = '\n'.join(f'{k} {tuple(v.shape)}' for k, v in model.state_dict().items())
    assert len(model.state_dict()) == 100
    assert hashlib.sha256(listing.encode()).hexdigest()[:16] == '3d3b6a4f99e6f4b5'
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        tokens, top = model(images), model(images[:, :, :16])
    assert tokens.shape == (2, 17, 8) and top.shape == (2, 9, 8)
    expected = torch.tensor(
        [
            [0.30371, 1.08483, 0.23793, 1.10382],
            [22.17209, 1.84234, 4.27383, -23.5878],
            [31.23952, 10.485, 13.91571, -28.85312],
        ]
    )
    torch.testing.assert_close(tokens[0, :3, :4], expected, rtol=1e-4, atol=1e-4)
    last = torch.tensor([12.02025, -9.74679, -33.30468, -46.01775])
    torch.testing.assert_close(tokens[1, -1, :4], last, rtol=1e-4, atol=1e-4)
    assert tokens.abs().mean().item() == pytest.approx(33.395237, rel=1e-5)
    assert top.abs().mean().item() == pytest.approx(29.955217, rel=1e-5)


def test_seeded_initialisation_is_unchanged():
    """Values a seeded hand-written trunk started from: the shortcut projection is still
    created after the block's convolutions, so the random stream is consumed in order."""
    torch.manual_seed(0)
    model = ResNetImageEmbedder(**LAYOUT)
    conv2, shortcut = model.layer2[0].conv2.weight, model.layer2[0].downsample[0].weight
    assert conv2.shape == (32, 32, 3, 3) and shortcut.shape == (64, 32, 1, 1)
    assert conv2.flatten()[:3].tolist() == pytest.approx([0.0340, 0.0580, 0.0504], abs=1e-4)
    assert shortcut.flatten()[:3].tolist() == pytest.approx([0.1303, -0.0345, 0.0213], abs=1e-4)
    assert model.proj.weight.flatten()[:2].tolist() == pytest.approx([0.0274, -0.0681], abs=1e-4)


def test_trunk_is_torchvision_resnet101_up_to_stage_3_and_channels_last():
    from torchvision.models import resnet101

    with torch.device('meta'):
        reference = resnet101()
        model = ResNetImageEmbedder(out_dim=16, image_size=64)
    ours = {k: v.shape for k, v in model.state_dict().items() if k.startswith(('conv1', 'bn', 'l'))}
    theirs = {
        k: v.shape
        for k, v in reference.state_dict().items()
        if k.startswith(('conv1', 'bn1', 'layer1', 'layer2', 'layer3'))
    }
    assert ours == theirs and len(ours) == 30 * 18 + 3 * 6 + 6  # blocks, shortcuts, stem
    small = ResNetImageEmbedder(**LAYOUT)
    convs = [m.weight for m in small.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    features = small.features(torch.rand(1, 3, 32, 32))
    assert features.is_contiguous(memory_format=torch.channels_last)
