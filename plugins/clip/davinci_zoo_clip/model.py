"""CLIP (Radford et al., 2021) with a ViT image tower, under OpenAI's state-dict names.

Parameter names and shapes follow OpenAI's released ``ViT-*`` checkpoints, so their state
dicts load one to one::

    visual.conv1.weight [W, 3, p, p]        visual.class_embedding [W]
    visual.positional_embedding [g*g+1, W]  visual.ln_pre / visual.ln_post
    visual.transformer.resblocks.N.{ln_1, attn.in_proj_weight [3W, W], attn.in_proj_bias,
        attn.out_proj, ln_2, mlp.c_fc [4W, W], mlp.c_proj [W, 4W]}
    visual.proj [W, E]
    token_embedding.weight [V, T]           positional_embedding [context, T]
    transformer.resblocks.N.* (as above, width T, causal)
    ln_final                                text_projection [T, E]     logit_scale []

Blocks are pre-LN with QuickGELU (``x * sigmoid(1.702 x)``) and LayerNorm eps 1e-5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention with one packed input projection (``in_proj_*``)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f'CLIP width {width} is not divisible by {heads} heads')
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        """x [B, L, W] -> [B, L, W]; ``causal`` hides later positions."""
        batch, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=causal)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class MLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = MLP(width)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, self.causal)
        return x


class VisionTransformer(nn.Module):
    """Images [B, 3, R, R] (normalised) -> features [B, E] from the class token."""

    def __init__(
        self, resolution: int, patch_size: int, width: int, layers: int, heads: int, out_dim: int
    ) -> None:
        super().__init__()
        if resolution % patch_size:
            raise ValueError(
                f'CLIP image_resolution {resolution} is not a multiple of patch size {patch_size}'
            )
        grid = resolution // patch_size
        scale = width**-0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, causal=False)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, out_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv1(images).flatten(2).transpose(1, 2)  # [B, g*g, W], row-major patches
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    """The two towers and the learned temperature.

    Args:
        embed_dim: width E of the joint embedding.
        image_resolution, vision_layers, vision_width, vision_patch_size, vision_heads: the
            ViT (``vision_heads`` default: width / 64, as OpenAI's).
        context_length, vocab_size, transformer_width, transformer_heads, transformer_layers:
            the causal text transformer.
    """

    def __init__(
        self,
        embed_dim: int = 512,
        image_resolution: int = 224,
        vision_layers: int = 12,
        vision_width: int = 768,
        vision_patch_size: int = 32,
        vision_heads: int | None = None,
        context_length: int = 77,
        vocab_size: int = 49408,
        transformer_width: int = 512,
        transformer_heads: int = 8,
        transformer_layers: int = 12,
    ) -> None:
        super().__init__()
        self.input_resolution = image_resolution  # OpenAI's name
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.visual = VisionTransformer(
            image_resolution,
            vision_patch_size,
            vision_width,
            vision_layers,
            vision_heads or max(1, vision_width // 64),
            embed_dim,
        )
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(
            0.01 * torch.randn(context_length, transformer_width)
        )
        self.transformer = Transformer(
            transformer_width, transformer_layers, transformer_heads, causal=True
        )
        self.ln_final = nn.LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(
            transformer_width**-0.5 * torch.randn(transformer_width, embed_dim)
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images [B, 3, R, R] -> features [B, E] (not unit length)."""
        return self.visual(images)

    def encode_text(self, ids: torch.Tensor, eot_positions: torch.Tensor) -> torch.Tensor:
        """Token ids [B, context] and the end-of-text index of each row [B] -> [B, E]."""
        if ids.shape[1] > self.context_length:
            raise ValueError(
                f'{ids.shape[1]} text tokens exceed CLIP context {self.context_length}'
            )
        x = self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]
        x = self.ln_final(self.transformer(x))
        return x[torch.arange(len(ids), device=ids.device), eot_positions] @ self.text_projection
