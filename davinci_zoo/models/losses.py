"""Reconstruction losses for training image tokenizers (swappable by config)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import check_state_dict_matches, load_checkpoint_file, state_dict_of
from ..registry import MODELS


class ReconstructionLoss(nn.Module):
    """``weight * distance(reconstruction, images)``; both [B, 3, H, W] in [0, 1]."""

    def __init__(self, weight: float = 1.0, name: str | None = None) -> None:
        super().__init__()
        self.weight = weight
        self.name = name or self.default_name

    default_name = 'loss_rec'

    def forward(self, reconstruction: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return self.weight * self.distance(reconstruction, images)

    def distance(self, reconstruction: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@MODELS.register_module()
class PixelL1Loss(ReconstructionLoss):
    """Mean absolute pixel error."""

    default_name = 'loss_l1'

    def distance(self, reconstruction, images):
        return F.l1_loss(reconstruction, images)


@MODELS.register_module()
class PixelMSELoss(ReconstructionLoss):
    """Mean squared pixel error."""

    default_name = 'loss_mse'

    def distance(self, reconstruction, images):
        return F.mse_loss(reconstruction, images)


@MODELS.register_module()
class PerceptualLoss(ReconstructionLoss):
    """Distance between VGG16 feature maps (LPIPS-style, unweighted), weights from a local file.

    Pretrained weights cannot be downloaded here: ``vgg16_weights`` names a torchvision VGG16
    state dict on disk (``.pth`` or ``.safetensors``). Images are normalised with the ImageNet
    statistics; features after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 are
    channel-normalised and compared with a mean squared error, summed over the five layers.
    """

    default_name = 'loss_perceptual'
    LAYER_ENDS = (4, 9, 16, 23, 30)  # indices after which torchvision's vgg16.features taps

    def __init__(self, vgg16_weights: str, weight: float = 1.0, name: str | None = None):
        super().__init__(weight, name)
        from torchvision.models import vgg16

        features = vgg16().features[: self.LAYER_ENDS[-1]]
        state = {
            key.removeprefix('features.'): value
            for key, value in state_dict_of(load_checkpoint_file(vgg16_weights)).items()
            if key.startswith('features.')
        }
        check_state_dict_matches(features, state, source=f'VGG16 weights {vgg16_weights}')
        features.load_state_dict(state)
        self.features = features.eval().requires_grad_(False)
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.mean) / self.std
        outputs, start = [], 0
        for end in self.LAYER_ENDS:
            x = self.features[start:end](x)
            outputs.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
            start = end
        return outputs

    def distance(self, reconstruction, images):
        pairs = zip(self.taps(reconstruction), self.taps(images))
        return sum(F.mse_loss(a, b) for a, b in pairs)
