"""The interface every image tokenizer implements (VQGAN, dVAE, plugins).

A tokenizer turns images into a grid of discrete codes and back. Everything downstream that
depends on it (the visual vocabulary size, the code grid, the number of image positions in the
decoder) is derived from :attr:`codebook_size` and :meth:`code_grid`, never hard-coded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn

from ..checkpoint import check_state_dict_matches, load_checkpoint_file, state_dict_of


@dataclass
class TokenizerOutput:
    """What :meth:`ImageTokenizer.forward_train` returns for a batch of B images.

    Attributes:
        reconstruction: [B, 3, H, W] floats on the [0, 1] scale (not necessarily clamped to
            it: losses need gradients where the decoder overshoots), differentiable w.r.t. the
            parameters.
        codes: [B, h, w] int64 codes chosen for the batch (for usage statistics).
        losses: the tokenizer's own loss terms, already weighted, e.g. ``loss_commit`` (VQ)
            or ``loss_kl`` (dVAE); the trainer adds the reconstruction losses.
        stats: scalars to log, e.g. ``perplexity``, ``dead_codes``, ``temperature``.
    """

    reconstruction: torch.Tensor
    codes: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)


class ImageTokenizer(nn.Module):
    """Images in [0, 1] <-> integer codes.

    Subclasses set :attr:`codebook_size` and :attr:`downsample_factor` and implement
    :meth:`encode` and :meth:`decode`.

    Example:
        >>> tokenizer = IMAGE_TOKENIZERS.build(dict(type='VQGAN', ...))
        >>> codes = tokenizer.encode(images)        # [B, 3, 64, 64] -> [B, 16, 16] (f4)
        >>> images = tokenizer.decode(codes)        # [B, 16, 16] -> [B, 3, 64, 64]
    """

    codebook_size: int
    downsample_factor: int

    def code_grid(self, height: int, width: int) -> tuple[int, int]:
        """The code grid (h, w) of an image of ``height`` x ``width`` pixels.

        Raises:
            ValueError: if a side is not a positive multiple of :attr:`downsample_factor`.
        """
        factor = self.downsample_factor
        if height <= 0 or width <= 0 or height % factor or width % factor:
            raise ValueError(
                f'{type(self).__name__} takes images whose sides are positive multiples of '
                f'{factor} pixels; got {height}x{width}'
            )
        return height // factor, width // factor

    def check_images(self, images: torch.Tensor) -> None:
        """Raise ValueError unless ``images`` is [B, 3, H, W] with a supported H and W."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'expected images of shape [B, 3, H, W], got {tuple(images.shape)}')
        self.code_grid(images.shape[2], images.shape[3])

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] floats in [0, 1] -> [B, H/f, W/f] int64 codes in [0, codebook_size)."""
        raise NotImplementedError

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, h, w] int64 codes -> [B, 3, h*f, w*f] floats in [0, 1]."""
        raise NotImplementedError

    def code_vectors(self) -> torch.Tensor:
        """[codebook_size, C]: each code's vector in the tokenizer's own space (VQ: the
        codebook entry; dVAE: the decoder's input weights for the code), so codes that draw
        alike lie close. Optional: DaVinci can initialise its visual word embeddings from it.
        """
        raise NotImplementedError(f'{type(self).__name__} does not expose code vectors')

    def forward_train(self, images: torch.Tensor, step: int = 0) -> TokenizerOutput:
        """One training pass on [B, 3, H, W] images in [0, 1]; ``step`` drives schedules.

        Tokenizers that can be trained implement this (straight-through VQ, gumbel dVAE);
        the others are used frozen.
        """
        raise NotImplementedError(f'{type(self).__name__} cannot be trained')

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load a checkpoint whose keys and shapes must match this tokenizer exactly.

        Raises:
            CheckpointMismatchError: naming missing, unexpected and mis-shaped keys (a wrong
                codebook size shows as a shape mismatch of the codebook).
        """
        state_dict = state_dict_of(load_checkpoint_file(path))
        check_state_dict_matches(self, state_dict, source=f'tokenizer checkpoint {path}')
        self.load_state_dict(state_dict)
