"""The image embedder: a ResNet trunk (stem + stages 1-3) as patch tokens
(docs/original.md section 1.2).

The stages are torchvision's ResNet bottleneck blocks (imported when a model is built); the
stem is built here because tiny layouts change its width, stride and pooling. Parameter names
are torchvision's ResNet ones (``conv1``, ``bn1``, ``layer1.0.conv1`` ...), so an ImageNet
torchvision weight file initialises it directly and the original's ``visual_encoder`` keys map
one to one. ResNet-101 (blocks 3, 4, 23) with stride 16 is the base layout; wide
ResNet-101-2 doubles the bottleneck width; tiny layouts shrink depth, widths and stride.
"""

from __future__ import annotations

import torch
from torch import nn

from ...checkpoint import load_checkpoint_file, state_dict_of
from ...registry import BACKBONES
from ..parts import ComponentArgumentError


def bottleneck(in_channels: int, planes: int, stride: int, width_per_group: int) -> nn.Module:
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv).

    [B, C_in, H, W] -> [B, 4p, H/s, W/s] for ``planes`` p; the inner 3x3 conv is
    ``p * width_per_group / 64`` wide. The shortcut projection is made last, as before the
    block came from torchvision, so a seeded initialisation gives the same weights.
    """
    from torchvision.models.resnet import Bottleneck

    block = Bottleneck(in_channels, planes, stride, base_width=width_per_group)
    out_channels = planes * Bottleneck.expansion
    if stride != 1 or in_channels != out_channels:
        block.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    return block


@BACKBONES.register_module()
class ResNetImageEmbedder(nn.Module):
    """Images [B, 3, H, W] -> tokens [B, 1 + (H/s)(W/s), out_dim] (cls first, raster order).

    Args:
        out_dim: width of the tokens after the projection (the transformer width).
        image_size: the pretraining resolution; sizes the position table (grid + cls).
        stage_blocks: blocks per stage, e.g. (3, 4, 23) for ResNet-101's stages 1-3.
        base_planes: planes of stage 1 (64 as in torchvision; stage i outputs
            4 * base_planes * 2^i channels). Smaller for tiny models.
        width_per_group: torchvision's name for the inner width per 64 planes: 64 for ResNet,
            128 for wide ResNet-101-2.
        stem_channels: channels of the 7x7 stem.
        stem_pool: the stem's 3x3/2 max-pool (turn off for tiny images).
        stem_stride: stride of the 7x7 stem conv.
        pretrained: a local torchvision ResNet state-dict file to initialise the trunk from
            (keys outside stem + stages are ignored; missing ones are an error).

    The token grid stride is ``stem_stride * (2 if stem_pool) * 2 ** (len(stage_blocks) - 1)``
    (16 for the base layout). Positions are added by slicing the first rows of the table, so a
    prefix image of the top rows gets the positions of those rows (docs/original.md section 1.2).

    The trunk runs channels-last (NHWC): oneDNN's and cuDNN's convolutions prefer it (base
    trunk, batch 8 at 256 px, forward + backward on 2 CPU cores: 1.7 s against 2.2-2.4 s), and
    the feature map then flattens into tokens without a copy. Weights keep their shapes and
    values, so checkpoints are unaffected.
    """

    def __init__(
        self,
        out_dim: int,
        image_size: int = 256,
        stage_blocks: tuple[int, ...] = (3, 4, 23),
        base_planes: int = 64,
        width_per_group: int = 64,
        stem_channels: int = 64,
        stem_pool: bool = True,
        stem_stride: int = 2,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem_channels, 7, stride=stem_stride, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem_pool else nn.Identity()
        channels = stem_channels
        for index, blocks in enumerate(stage_blocks):
            planes = base_planes * 2**index
            stride = 1 if index == 0 else 2
            stage = []
            for block in range(blocks):
                stage.append(
                    bottleneck(channels, planes, stride if block == 0 else 1, width_per_group)
                )
                channels = planes * 4  # the bottleneck's expansion
            setattr(self, f'layer{index + 1}', nn.Sequential(*stage))
        self.num_stages = len(stage_blocks)
        self.stride = stem_stride * (2 if stem_pool else 1) * 2 ** (len(stage_blocks) - 1)
        if image_size % self.stride:
            raise ComponentArgumentError(
                f'image_size {image_size} is not a multiple of the stride {self.stride}'
            )
        self.grid = (image_size // self.stride, image_size // self.stride)
        self.feature_dim = channels
        self.cls_token = nn.Parameter(torch.zeros(1, 1, channels))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1] + 1, channels))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.proj = nn.Linear(channels, out_dim)
        if pretrained:
            self.load_torchvision_weights(pretrained)
        self.to(memory_format=torch.channels_last)  # the convolutions' weights

    def load_torchvision_weights(self, path: str) -> None:
        """Copy a torchvision ResNet's stem and stages 1..n from a local file."""
        source = state_dict_of(load_checkpoint_file(path))
        trunk = {
            k: v for k, v in self.state_dict().items() if k.startswith(('conv1', 'bn1', 'layer'))
        }
        missing = sorted(set(trunk) - set(source))
        if missing:
            raise ValueError(f'{path} lacks {len(missing)} ResNet keys, e.g. {missing[:3]}')
        self.load_state_dict({k: source[k] for k in trunk}, strict=False)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, C, H/s, W/s] (channels-last in memory)."""
        images = images.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        for index in range(self.num_stages):
            x = getattr(self, f'layer{index + 1}')(x)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, 1 + (H/s)(W/s), out_dim]; H may be a top strip of the image."""
        if images.shape[-1] != self.grid[1] * self.stride:
            raise ValueError(
                f'image width {images.shape[-1]} differs from the configured '
                f'{self.grid[1] * self.stride}'
            )
        feats = self.features(images).flatten(2).transpose(1, 2)  # [B, N, C]
        tokens = torch.cat([self.cls_token.expand(len(feats), -1, -1), feats], dim=1)
        if tokens.shape[1] > self.pos_embed.shape[1]:
            raise ValueError(
                f'{tokens.shape[1] - 1} image tokens exceed the position table '
                f'({self.pos_embed.shape[1] - 1}); is the image taller than '
                'image_size?'
            )
        return self.proj(tokens + self.pos_embed[:, : tokens.shape[1]])

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """The token grid (rows, cols) of an image of height x width pixels."""
        if height % self.stride or width % self.stride:
            raise ValueError(
                f'image {height}x{width} is not a multiple of the stride {self.stride}'
            )
        return height // self.stride, width // self.stride
