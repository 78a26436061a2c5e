"""The VQGAN image tokenizer (Esser et al., taming-transformers), registered as ``VQGAN``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from davinci_zoo.models.image_tokenizer import ImageTokenizer, TokenizerOutput
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import IMAGE_TOKENIZERS

from .modules import Decoder, Encoder
from .quantizer import VectorQuantizer


def check_layout(ch: int, ch_mult: Sequence[int], norm_groups: int) -> None:
    """Raise ComponentArgumentError for a layout whose channel counts GroupNorm cannot split."""
    if not ch_mult:
        raise ComponentArgumentError('ch_mult needs at least one level')
    bad = sorted({ch * m for m in ch_mult if (ch * m) % norm_groups})
    if bad:
        raise ComponentArgumentError(
            f'VQGAN channel counts {bad} (ch={ch} x ch_mult) are not divisible by '
            f'norm_groups={norm_groups}; choose ch and norm_groups so that they are'
        )


@IMAGE_TOKENIZERS.register_module()
class VQGAN(ImageTokenizer):
    """Images in [0, 1] <-> codes through a convolutional encoder, a codebook and a decoder.

    The defaults are the published taming-transformers ImageNet VQGAN (f16, 1024 codes) that
    DaVinci uses: 256 px images -> 16 x 16 codes. Parameter names follow taming's state dict,
    so weights converted with ``tools/model_converters/taming_vqgan.py`` load as they are.

    Args:
        ch, ch_mult, num_res_blocks, attn_resolutions, z_channels, resolution, in_channels,
            out_ch, dropout: taming's ``ddconfig``. The downsample factor is
            ``2 ** (len(ch_mult) - 1)``; ``resolution`` only decides where attention goes.
        embed_dim: dimension of a code vector.
        codebook_size: number of codes (taming's ``n_embed``).
        beta: weight of the commitment loss.
        codebook_update: ``'loss'`` (taming) or ``'ema'``; see :mod:`.quantizer`.
        ema_decay: decay of the EMA codebook statistics.
        dead_code_threshold: running usage (EMA of assignments per batch) below which a code
            is dead.
        restart_interval: every this many training steps, dead codes are moved to random
            encoder outputs of the batch; 0 disables restarts (taming's behaviour).
        norm_groups: GroupNorm groups (taming: 32); must divide every channel count.
        cell_local_encoder: encode each f x f cell from its own pixels only (1x1 convs,
            non-overlapping 2x2 downsampling, GroupNorm statistics taken per position, no
            attention), so equal cells always get the same code; the decoder is taming's
            either way. Not taming's layout: off for published weights. The small scenes use
            it so that the plain background is one code, not hundreds that depend on the rest
            of the image.
        checkpoint: weights to load at the end of construction (``.safetensors`` or ``.pth``).
    """

    def __init__(
        self,
        ch: int = 128,
        ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        attn_resolutions: Sequence[int] = (16,),
        z_channels: int = 256,
        embed_dim: int = 256,
        codebook_size: int = 1024,
        resolution: int = 256,
        in_channels: int = 3,
        out_ch: int = 3,
        dropout: float = 0.0,
        beta: float = 0.25,
        codebook_update: str = 'loss',
        ema_decay: float = 0.99,
        dead_code_threshold: float = 1.0,
        restart_interval: int = 0,
        norm_groups: int = 32,
        cell_local_encoder: bool = False,
        checkpoint: str | os.PathLike | None = None,
    ):
        super().__init__()
        check_layout(ch, ch_mult, norm_groups)
        if restart_interval < 0:
            raise ComponentArgumentError(f'restart_interval must be >= 0, got {restart_interval}')
        self.codebook_size = codebook_size
        self.downsample_factor = 2 ** (len(ch_mult) - 1)
        self.restart_interval = restart_interval
        shared = dict(
            ch=ch,
            ch_mult=tuple(ch_mult),
            num_res_blocks=num_res_blocks,
            attn_resolutions=tuple(attn_resolutions),
            resolution=resolution,
            z_channels=z_channels,
            norm_groups=norm_groups,
            dropout=dropout,
        )
        self.encoder = Encoder(in_channels=in_channels, cell_local=cell_local_encoder, **shared)
        self.decoder = Decoder(out_ch=out_ch, **shared)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)
        self.quantize = VectorQuantizer(
            codebook_size,
            embed_dim,
            beta=beta,
            codebook_update=codebook_update,
            ema_decay=ema_decay,
            dead_code_threshold=dead_code_threshold,
        )
        if checkpoint is not None:
            self.load_weights(checkpoint)

    # -- the two halves ----------------------------------------------------------------------
    def encode_to_latents(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> [B, embed_dim, H/f, W/f] pre-quantisation latents."""
        self.check_images(images)
        return self.quant_conv(self.encoder(images * 2 - 1))

    def decode_from_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, embed_dim, h, w] code vectors -> [B, 3, h*f, w*f] images in [-1, 1] (unclamped)."""
        return self.decoder(self.post_quant_conv(latents))

    @staticmethod
    def to_unit_scale(images: torch.Tensor) -> torch.Tensor:
        """Decoder output on the [-1, 1] scale -> the [0, 1] scale, unclamped (training)."""
        return (images + 1) / 2

    @classmethod
    def to_unit_range(cls, images: torch.Tensor) -> torch.Tensor:
        """Decoder output clamped to [-1, 1] -> images in [0, 1] (decoding)."""
        return cls.to_unit_scale(images.clamp(-1, 1))

    # -- ImageTokenizer ------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] floats in [0, 1] -> [B, H/f, W/f] int64 codes in [0, codebook_size)."""
        return self.quantize.nearest_codes(self.encode_to_latents(images))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, h, w] int64 codes -> [B, 3, h*f, w*f] floats in [0, 1]."""
        self.check_codes(codes)
        return self.to_unit_range(self.decode_from_latents(self.quantize.lookup(codes)))

    def code_vectors(self) -> torch.Tensor:
        """[codebook_size, embed_dim]: the codebook."""
        return self.quantize.codebook.detach().clone()

    def check_codes(self, codes: torch.Tensor) -> None:
        """Raise ValueError unless ``codes`` is a [B, h, w] integer tensor of valid codes."""
        if codes.dim() != 3 or codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError(
                f'expected integer codes of shape [B, h, w], got {codes.dtype} {tuple(codes.shape)}'
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(
                f'codes must lie in [0, {self.codebook_size}); got values in '
                f'[{int(codes.min())}, {int(codes.max())}]'
            )

    def forward_train(self, images: torch.Tensor, step: int = 0) -> TokenizerOutput:
        """One training pass on [B, 3, H, W] images in [0, 1].

        Updates the codebook statistics and, every ``restart_interval`` steps (counting
        ``step`` from 0), restarts dead codes. Returns the reconstruction mapped to [0, 1] but
        not clamped (as taming's training: a clamp would stop every gradient of a pixel once
        the decoder overshoots, and a decoder that starts below the black background never
        recovers), the codes,
        ``losses['loss_vq']`` and ``stats`` ``perplexity`` (of this batch's codes) and
        ``dead_codes`` (after this step's restart, if any).
        """
        latents = self.encode_to_latents(images)
        quantized = self.quantize(latents)
        self.quantize.update(latents, quantized.codes, restart=self.restart_due(step))
        reconstruction = self.to_unit_scale(self.decode_from_latents(quantized.latents))
        stats = {
            'perplexity': self.quantize.perplexity(quantized.codes, self.codebook_size),
            'dead_codes': float(self.quantize.dead_codes().sum()),
        }
        return TokenizerOutput(reconstruction, quantized.codes, {'loss_vq': quantized.loss}, stats)

    def restart_due(self, step: int) -> bool:
        """Whether training step ``step`` (from 0) ends a restart interval."""
        return self.restart_interval > 0 and (step + 1) % self.restart_interval == 0
