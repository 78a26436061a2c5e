"""OpenAI's discrete VAE (DALL-E) as a davinci-zoo image tokenizer."""

from __future__ import annotations

import os

import torch

from davinci_zoo.models.image_tokenizer import ImageTokenizer, TokenizerOutput
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import IMAGE_TOKENIZERS

from .networks import Decoder, Encoder
from .pixels import map_pixels, pixels_from_statistics
from .relaxation import CodeUsage, code_histogram, gumbel_softmax_codes, kl_to_uniform, perplexity
from .schedules import build_schedule

#: The DALL-E paper's temperature end points (1 -> 1/16), here on an exponential curve.
DEFAULT_TEMPERATURE = dict(type='exponential', start=1.0, end=1 / 16, steps=150_000)
#: KL weight warm-up from 0. The final value suits reconstruction losses that are per-pixel
#: means (L1/L2) and a KL summed over codes, averaged over positions (as in taming's
#: GumbelQuantize); the paper's beta = 6.6 weighs sums over pixels of a logit-Laplace NLL.
DEFAULT_KL_WEIGHT = dict(type='linear', start=0.0, end=5e-4, steps=5_000)


@IMAGE_TOKENIZERS.register_module()
class DVAE(ImageTokenizer):
    """The DALL-E dVAE: images in [0, 1] <-> a grid of codes, f = 2**(group_count - 1).

    The published model is ``DVAE()``: 8192 codes, f8 (256 px -> 32 x 32 codes).
    Weights: ``encoder.blocks.*`` and ``decoder.blocks.*``, the layout of OpenAI's
    ``encoder.pkl``/``decoder.pkl`` (convert them with tools/model_converters/openai_dvae.py).

    Args:
        codebook_size: number of codes K.
        n_hid: width of the first encoder group (and of the last decoder group); a multiple of 4.
        n_blk_per_group: residual blocks per group.
        group_count: groups in the encoder and in the decoder; f = 2**(group_count - 1).
        input_channels: image channels (3).
        n_init: channels of the decoder's input 1x1 convolution.
        temperature: gumbel-softmax temperature, a number or a schedule dict
            (see :mod:`davinci_zoo_dvae.schedules`); default 1 -> 1/16 over 150k steps.
        kl_weight: weight of the KL to the uniform prior, a number or a schedule dict; default
            linear warm-up 0 -> 5e-4 over 5k steps.
        usage_decay: decay of the running per-code usage behind ``dead_codes``.
        dead_code_threshold: a code is dead when its running share of positions is below
            ``dead_code_threshold / codebook_size``.
        checkpoint: a ``.safetensors``/``.pth`` file to load at the end of construction.

    Attributes:
        architecture: the layout arguments above (codebook_size .. n_init), e.g. for metadata.
        temperature, kl_weight: the schedules, called with the step.
        usage: the running per-code usage (:class:`CodeUsage`) behind ``dead_codes``.
    """

    def __init__(
        self,
        codebook_size: int = 8192,
        n_hid: int = 256,
        n_blk_per_group: int = 2,
        group_count: int = 4,
        input_channels: int = 3,
        n_init: int = 128,
        temperature: float | dict | None = None,
        kl_weight: float | dict | None = None,
        usage_decay: float = 0.99,
        dead_code_threshold: float = 0.01,
        checkpoint: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        _check_layout(codebook_size, n_hid, n_blk_per_group, group_count, input_channels, n_init)
        self.codebook_size = codebook_size
        self.downsample_factor = 2 ** (group_count - 1)
        self.architecture = dict(
            codebook_size=codebook_size,
            n_hid=n_hid,
            n_blk_per_group=n_blk_per_group,
            group_count=group_count,
            input_channels=input_channels,
            n_init=n_init,
        )
        self.encoder = Encoder(codebook_size, n_hid, n_blk_per_group, group_count, input_channels)
        self.decoder = Decoder(
            codebook_size, n_hid, n_blk_per_group, group_count, n_init, input_channels
        )
        self.temperature = build_schedule(
            DEFAULT_TEMPERATURE if temperature is None else temperature
        )
        self.kl_weight = build_schedule(DEFAULT_KL_WEIGHT if kl_weight is None else kl_weight)
        self.usage = CodeUsage(codebook_size, usage_decay, dead_code_threshold)
        if checkpoint is not None:
            self.load_weights(checkpoint)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> [B, codebook_size, H/f, W/f] encoder logits."""
        self.check_images(images)
        return self.encoder(map_pixels(images))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> [B, H/f, W/f] int64 codes (argmax of the logits)."""
        return self.logits(images).argmax(dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, h, w] int64 codes -> [B, 3, h*f, w*f] in [0, 1]."""
        self._check_codes(codes)
        return pixels_from_statistics(self.decoder.forward_indices(codes))

    def code_vectors(self) -> torch.Tensor:
        """[codebook_size, n_init]: the decoder's 1x1 input weights for each code."""
        return self.decoder.blocks.input.w[:, :, 0, 0].t().detach().clone()

    def forward_train(self, images: torch.Tensor, step: int = 0) -> TokenizerOutput:
        """Gumbel-softmax pass on [B, 3, H, W] images in [0, 1]; ``step`` drives the schedules.

        Returns the differentiable reconstruction [B, 3, H, W], the hard codes [B, h, w],
        ``loss_kl`` (already weighted) and the stats ``temperature``, ``kl_weight``,
        ``perplexity`` (of this batch's codes) and ``dead_codes`` (running usage).
        """
        logits = self.logits(images)
        temperature, kl_weight = self.temperature(step), self.kl_weight(step)
        soft_codes = gumbel_softmax_codes(logits, temperature)
        reconstruction = pixels_from_statistics(self.decoder(soft_codes))
        codes = logits.detach().argmax(dim=1)
        counts = code_histogram(codes, self.codebook_size)
        self.usage.update(counts)
        return TokenizerOutput(
            reconstruction=reconstruction,
            codes=codes,
            losses={'loss_kl': kl_weight * kl_to_uniform(logits)},
            stats={
                'temperature': temperature,
                'kl_weight': kl_weight,
                'perplexity': perplexity(counts),
                'dead_codes': float(self.usage.dead_codes()),
            },
        )

    def _check_codes(self, codes: torch.Tensor) -> None:
        if codes.dim() != 3 or codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError(
                f'expected integer codes of shape [B, h, w], got {codes.dtype} {tuple(codes.shape)}'
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(
                f'codes must lie in [0, {self.codebook_size}), got '
                f'[{int(codes.min())}, {int(codes.max())}]'
            )


def _check_layout(
    codebook_size: int,
    n_hid: int,
    n_blk_per_group: int,
    group_count: int,
    input_channels: int,
    n_init: int,
) -> None:
    if codebook_size < 2:
        raise ComponentArgumentError(f'codebook_size must be at least 2, got {codebook_size}')
    if n_hid < 4 or n_hid % 4:
        raise ComponentArgumentError(f'n_hid must be a positive multiple of 4, got {n_hid}')
    if n_blk_per_group < 1 or group_count < 1 or n_init < 1:
        raise ComponentArgumentError(
            'n_blk_per_group, group_count and n_init must be positive, got '
            f'{n_blk_per_group}, {group_count}, {n_init}'
        )
    if input_channels != 3:
        raise ComponentArgumentError(
            f'davinci-zoo images have 3 channels, got input_channels={input_channels}'
        )
