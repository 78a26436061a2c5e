"""BEiT-style masked image modelling: the codes of block-masked patches, predicted from the rest.

Not the original's "MIM" branch, which continues a prefix image with an empty caption
(docs/original.md section 2.5).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...registry import OBJECTIVES
from ...text import sequences
from ..objective import Objective
from ..parts import IMAGE_TOKENIZER, ComponentArgumentError


def block_mask(
    height: int,
    width: int,
    count: int,
    rng,
    min_area: int = 4,
    min_aspect: float = 0.3,
) -> np.ndarray:
    """BEiT's blockwise mask: bool [height, width] with exactly ``count`` cells True.

    Rectangles are added until ``count`` cells are covered: each of area uniform in
    [min(min_area, left), left] (``left``: cells still to mask) and aspect ratio log-uniform in
    [min_aspect, 1 / min_aspect], sides clipped to the grid, placed uniformly. A rectangle
    that would overshoot masks only its first new cells in raster order.

    Args:
        rng: numpy's global generator (``np.random``) or a ``np.random.RandomState``
            (``uniform`` and ``randint`` are used).
    """
    if not 0 < count <= height * width:
        raise ValueError(f'count must lie in [1, {height * width}] for a {height}x{width} grid')
    if not 0.0 < min_aspect <= 1.0:
        raise ValueError(f'min_aspect must lie in (0, 1], got {min_aspect}')
    mask = np.zeros((height, width), dtype=bool)
    log_aspect = math.log(min_aspect)
    left = count
    while left:
        area = rng.uniform(min(min_area, left), left)
        aspect = math.exp(rng.uniform(log_aspect, -log_aspect))
        rows = min(max(round(math.sqrt(area * aspect)), 1), height)
        cols = min(max(round(math.sqrt(area / aspect)), 1), width)
        top, start = rng.randint(0, height - rows + 1), rng.randint(0, width - cols + 1)
        new = np.zeros_like(mask)
        new[top : top + rows, start : start + cols] = True
        new &= ~mask
        added = int(new.sum())
        if added > left:  # keep its first `left` new cells (raster order)
            new.flat[np.flatnonzero(new)[left:]] = False
            added = left
        mask |= new
        left -= added
    return mask


def patch_codes(codes: torch.Tensor, ratio: int) -> torch.Tensor:
    """Codes [B, h, w] -> [B, (h / r)(w / r), r * r]: each patch's r x r codes (raster order
    of patches, then of the codes inside a patch)."""
    batch, height, width = codes.shape
    rows, cols = height // ratio, width // ratio
    blocks = codes.view(batch, rows, ratio, cols, ratio).permute(0, 1, 3, 2, 4)
    return blocks.reshape(batch, rows * cols, ratio * ratio)


@OBJECTIVES.register_module()
class MaskedImageModeling(Objective):
    """BEiT: about ``mask_ratio`` of the image patches masked block-wise, their codes predicted.

    The image embedder's patch grid (h_p, w_p) may be coarser than the tokenizer's code grid
    (h, w): each patch then covers r x r codes, r = embedder stride / tokenizer downsample
    factor (the tiny scene model: 8 px patches, 4 px codes, r = 2). Per image,
    ``count = round(mask_ratio * h_p * w_p)`` patches (at least one masked, one kept) are
    drawn by :func:`block_mask` (numpy's global generator). Masked patch tokens (positions
    1..N of ``model.embed_image``, the image CLS at 0 kept) become the learned mask token;
    the encoder reads them with the caption (``with_caption``) and its 2-D relative bias,
    which is where a masked token learns its position (BEiT pretrains with relative bias
    only). The head maps each masked patch's state [M, D] to logits [M, r*r, K]; the loss is
    the mean cross-entropy (model's label smoothing) over the M*r*r masked codes.

    Owns (``attach``): ``mask_token`` [D] and ``head`` Linear(D, r*r*K), both drawn from
    normal(0.02) as in BEiT, the head's bias zero. Teaches neither writing nor painting (the
    decoder is unused).

    Choice beyond BEiT (``blank_pixels``, on by default): the masked patches' pixels are set
    to 0 (the normalised mean colour) before the embedder, because its convolutions see
    beyond a patch: without it the visible neighbours' tokens carry the masked pixels.

    Args:
        weight: loss weight.
        mask_ratio: share of patches masked, in (0, 1) (BEiT: 0.4).
        with_caption: the encoder also reads the caption (VL context); False: image only.
        blank_pixels: zero the masked patches' pixels before the embedder (see above).
        min_block: smallest block area in patches (:func:`block_mask`'s ``min_area``).
        max_tokens: caption tokens kept, ``[CLS]``/``[SEP]`` included.
        name, must_fire_within: see :class:`~davinci_zoo.models.objective.Objective`.

    Reads ``inputs['images']`` [B, 3, H, W] (normalised), ``inputs['caption']`` and the
    batch's codes [B, h, w] (``inputs['codes']`` or the tokenizer's).
    """

    inputs = ('images', 'caption')
    parts = (IMAGE_TOKENIZER,)
    teaches = ()

    def __init__(
        self,
        weight: float = 1.0,
        mask_ratio: float = 0.4,
        with_caption: bool = True,
        blank_pixels: bool = True,
        min_block: int = 4,
        max_tokens: int = 30,
        name: str | None = None,
        must_fire_within: int | None = 100,
    ) -> None:
        super().__init__(weight, name, must_fire_within)
        if not 0.0 < mask_ratio < 1.0:
            raise ComponentArgumentError(f'mask_ratio must lie in (0, 1), got {mask_ratio}')
        if min_block < 1:
            raise ComponentArgumentError(f'min_block must be >= 1 patch, got {min_block}')
        self.mask_ratio, self.with_caption, self.blank_pixels = (
            mask_ratio,
            with_caption,
            blank_pixels,
        )
        self.min_block, self.max_tokens = min_block, max_tokens

    def attach(self, model: nn.Module) -> None:
        """The mask token and the code head, sized by the patch / code-cell ratio."""
        stride = model.image_embedder.stride
        cell = model.image_tokenizer.downsample_factor
        if stride < cell or stride % cell:
            raise ComponentArgumentError(
                f'MaskedImageModeling needs image patches ({stride} px, the embedder stride) '
                f'made of whole code cells ({cell} px, the tokenizer downsample factor); use '
                'a tokenizer whose cell divides the stride'
            )
        self.ratio, self.stride = stride // cell, stride
        self.codebook_size = model.vocab.codebook_size
        hidden = model.hidden_size
        self.mask_token = nn.Parameter(torch.zeros(hidden))
        self.head = nn.Linear(hidden, self.ratio**2 * self.codebook_size)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def mask_count(self, patches: int) -> int:
        """Patches to mask out of ``patches``: round(mask_ratio * patches) in [1, patches - 1]."""
        if patches < 2:
            raise ValueError(f'MaskedImageModeling needs at least 2 image patches, got {patches}')
        return min(max(round(self.mask_ratio * patches), 1), patches - 1)

    def draw_masks(self, batch: int, rows: int, cols: int, device) -> torch.Tensor:
        """[B, rows, cols] bool: one block mask per image (numpy's global generator)."""
        count = self.mask_count(rows * cols)
        masks = [block_mask(rows, cols, count, np.random, self.min_block) for _ in range(batch)]
        return torch.from_numpy(np.stack(masks)).to(device)

    def forward(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        images, captions = inputs['images'], inputs['caption']
        codes = model.batch_codes(inputs)
        rows, cols = model.image_embedder.token_grid(images.shape[-2], images.shape[-1])
        if tuple(codes.shape[1:]) != (rows * self.ratio, cols * self.ratio):
            raise ValueError(
                f'codes {tuple(codes.shape[1:])} do not cover the {rows}x{cols} patch grid '
                f'at {self.ratio}x{self.ratio} codes per patch; were the codes made at another '
                'resolution?'
            )
        masks = self.draw_masks(len(images), rows, cols, images.device)
        if self.blank_pixels:
            pixels = masks.repeat_interleave(self.stride, 1).repeat_interleave(self.stride, 2)
            images = images.masked_fill(pixels[:, None], 0.0)
        tokens = model.embed_image(images)
        masked = masks.flatten(1)  # [B, N]
        patches = torch.where(masked[..., None], self.mask_token.to(tokens.dtype), tokens[:, 1:])
        tokens = torch.cat([tokens[:, :1], patches], dim=1)
        text_ids, text_mask = None, None
        if self.with_caption:
            text_ids, text_mask = sequences(captions, max_tokens=self.max_tokens)
        hidden, _ = model.encoder(text_ids, text_mask, tokens, (rows, cols))
        states = hidden[:, 1 : 1 + rows * cols][masked]  # [M, D]
        logits = self.head(states).view(-1, self.ratio**2, self.codebook_size)
        targets = patch_codes(codes, self.ratio)[masked]  # [M, r*r]
        loss = F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), label_smoothing=model.label_smoothing
        )
        return {f'loss_{self.name}': self.weight * loss}
