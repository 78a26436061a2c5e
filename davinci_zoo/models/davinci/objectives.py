"""Pretraining objectives: prefix language modelling (write) and prefix image modelling (paint).

Randomness (split points) comes from numpy's global generator, which mmengine seeds and
:class:`~davinci_zoo.engine.hooks.RNGStateHook` saves, so resumed runs repeat exactly. With
``randomness=dict(seed=..., diff_rank_seed=True)`` every rank draws its own split points; the
original used one split point for all ranks (docs/original.md sections 7, 8.2).
"""

from __future__ import annotations

import numpy as np
import torch

from ...registry import OBJECTIVES
from ...text import TextBatch, sequences, word_span
from ..objective import Objective
from ..parts import IMAGE_TOKENIZER, ComponentArgumentError
from .vocabulary import ALL, IMAGE, TEXT


def split_caption(caption: str, k: int) -> tuple[str, str]:
    """Split at word ``k``: (first k words, the rest). k in [0, n - 1] keeps a suffix."""
    words = caption.split(' ')
    if not 0 <= k < len(words):
        raise ValueError(f'split point {k} outside [0, {len(words) - 1}] for {caption!r}')
    return ' '.join(words[:k]), ' '.join(words[k:])


def allowed_prefix_rows(code_rows: int, cell: int, stride: int) -> list[int]:
    """Code rows r in [0, code_rows - 1] whose pixel boundary r*cell the embedder stride divides."""
    return [r for r in range(code_rows) if (r * cell) % stride == 0]


def split_image(images: torch.Tensor, codes: torch.Tensor, rows: int, cell: int):
    """Top ``rows`` code rows as pixels, the rest as codes.

    images [B, 3, H, W], codes [B, h, w] -> (prefix pixels [B, 3, rows*cell, W],
    suffix codes [B, (h - rows) * w] in raster order).
    """
    return images[:, :, : rows * cell], codes[:, rows:].flatten(1)


class _TextSuffixObjective(Objective):
    """Shared by PrefixLM and TextPrefixLM: encoder sees a prefix, decoder writes the rest."""

    def __init__(
        self,
        weight: float = 1.0,
        max_tokens: int = 30,
        max_words: int = 30,
        logits: str = TEXT,
        empty_prefix_prob: float = 0.0,
        name: str | None = None,
        must_fire_within: int | None = 100,
    ) -> None:
        super().__init__(weight, name, must_fire_within)
        if logits not in (TEXT, ALL):
            raise ComponentArgumentError(f"logits must be '{TEXT}' or '{ALL}', got {logits!r}")
        if not 0.0 <= empty_prefix_prob <= 1.0:
            raise ComponentArgumentError(
                f'empty_prefix_prob must lie in [0, 1], got {empty_prefix_prob}'
            )
        self.max_tokens, self.max_words, self.logits = max_tokens, max_words, logits
        self.empty_prefix_prob = empty_prefix_prob

    def split_point(self, num_words: int) -> int:
        """k in [0, n - 1]: 0 with probability ``empty_prefix_prob``, else uniform."""
        if self.empty_prefix_prob and np.random.random() < self.empty_prefix_prob:
            return 0
        return int(np.random.randint(num_words))

    def text_loss(self, model, images, texts: TextBatch) -> dict[str, torch.Tensor]:
        """Split each text (N, none empty) at a word k drawn per text: encoder gets ``images``
        [N, 3, H, W] (or None) and ``[CLS] words < k [SEP]`` (``[CLS]`` for k = 0), the decoder
        writes ``[CLS] words k..n-1 [SEP]``."""
        count = texts.num_words.clamp(max=self.max_words) if self.max_words else texts.num_words
        split = [self.split_point(int(n)) for n in count.tolist()]
        split = torch.tensor(split, device=count.device)
        enc_ids, enc_mask = sequences(
            texts, word_span(texts, 0, split), split == 0, self.max_tokens
        )
        dec_ids, dec_mask = sequences(
            texts,
            word_span(texts, split, count),
            torch.zeros_like(split, dtype=torch.bool),
            self.max_tokens,
        )
        memory, memory_mask = model.encode(images, enc_ids, enc_mask)
        targets = dec_ids[:, 1:].masked_fill(dec_mask[:, 1:] == 0, -100)
        positions = torch.arange(dec_ids.shape[1] - 1, device=dec_ids.device)
        loss = model.decoder_loss(
            dec_ids[:, :-1],
            positions,
            memory,
            memory_mask,
            targets,
            self.logits,
            padding_mask=dec_mask[:, :-1],
        )
        return {f'loss_{self.name}': self.weight * loss}


@OBJECTIVES.register_module()
class PrefixLM(_TextSuffixObjective):
    """Write: the full image and the first k words of the caption in, the other words out.

    k is drawn per caption from [0, n - 1] (so at least one word is predicted). Empty
    captions are left out of the step; a step with none contributes no loss. Reads
    ``inputs['images']`` and ``inputs['caption']`` (one caption per image).

    Args:
        weight: loss weight.
        max_tokens: WordPiece tokens kept of encoder and decoder text (the original: 30).
        max_words: words kept of a caption before splitting (the original: 30).
        logits: ``'text'`` scores text ids only (default); ``'all'`` the whole joint
            vocabulary, as the original did.
        empty_prefix_prob: share of captions split at k = 0 (the whole caption is written
            from the image alone, as when captioning) before the uniform draw; 0 (default) is
            the original's uniform split.
        must_fire_within: see :class:`~davinci_zoo.models.objective.Objective`.
    """

    inputs = ('images', 'caption')
    teaches = ('write',)

    def forward(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        captions: TextBatch = inputs['caption']
        keep = (captions.num_words > 0).nonzero()[:, 0]
        if not len(keep):
            return {}
        captions = captions.select(keep)
        return self.text_loss(model, inputs['images'][captions.owner], captions)


@OBJECTIVES.register_module()
class Captioning(_TextSuffixObjective):
    """Write, the captioning baseline: the image in, the whole caption out (no text prefix).

    PrefixLM with the split point always at 0: the encoder reads the image and ``[CLS]``
    alone (the empty text, as the original tokenised ``""``), the decoder writes
    ``[CLS] caption [SEP]`` teacher-forced (loss on every caption token and the ``[SEP]``).
    No random draw is made. Empty captions are left out of the step. Reads
    ``inputs['images']`` and ``inputs['caption']``; owns no parameters.

    Args:
        weight, max_tokens, max_words, logits, must_fire_within: as for :class:`PrefixLM`.
    """

    inputs = ('images', 'caption')
    teaches = ('write',)

    def __init__(
        self,
        weight: float = 1.0,
        max_tokens: int = 30,
        max_words: int = 30,
        logits: str = TEXT,
        name: str | None = None,
        must_fire_within: int | None = 100,
    ) -> None:
        super().__init__(weight, max_tokens, max_words, logits, 1.0, name, must_fire_within)

    def split_point(self, num_words: int) -> int:
        """Always 0: the decoder writes the whole caption."""
        return 0

    def forward(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        captions: TextBatch = inputs['caption']
        keep = (captions.num_words > 0).nonzero()[:, 0]
        if not len(keep):
            return {}
        captions = captions.select(keep)
        return self.text_loss(model, inputs['images'][captions.owner], captions)


@OBJECTIVES.register_module()
class TextPrefixLM(_TextSuffixObjective):
    """Prefix LM on a text-only corpus (the original's C4 branch): no image in the encoder.

    Reads ``inputs['text']``; defaults follow the original (96 words, 256 tokens).
    """

    inputs = ('text',)
    teaches = ('write',)

    def __init__(
        self,
        weight: float = 1.0,
        max_tokens: int = 256,
        max_words: int = 96,
        logits: str = TEXT,
        empty_prefix_prob: float = 0.0,
        name: str | None = None,
        must_fire_within: int | None = 100,
    ) -> None:
        super().__init__(
            weight, max_tokens, max_words, logits, empty_prefix_prob, name, must_fire_within
        )

    def forward(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        texts: TextBatch = inputs['text']
        keep = (texts.num_words > 0).nonzero()[:, 0]
        if not len(keep):
            return {}
        return self.text_loss(model, None, texts.select(keep))


@OBJECTIVES.register_module()
class PrefixImage(Objective):
    """Paint: the full caption and the top rows of the image in, the remaining codes out.

    Args:
        weight: loss weight.
        mode: ``'dynamic'`` draws the split row per step among the code rows r in
            [0, h - 1] whose pixel boundary both the tokenizer cell and the embedder stride
            divide (r = 0 is plain text-to-image); ``'static'`` always uses r = 0. (The
            released original asked for dynamic but, through a schedule quirk, always used
            r = 0: docs/original.md section 8.1. Here dynamic means dynamic.)
        max_tokens: caption tokens kept.
        logits: ``'image'`` scores image ids only (default); ``'all'`` the whole vocabulary
            as the original did (docs/original.md section 8.5).
        input_noise: share of the decoder's input codes replaced by uniformly drawn codes
            (targets unchanged; ours, 0 by default). Teacher-forced, a code mostly follows
            from the codes before it (an object's colour and shape from its first cell), so
            the caption is read for few cells; noisy inputs make every cell read it.
        caption_dropout: share of samples painted from an empty caption (ours, 0 by
            default), so the model also learns p(codes | no caption) for classifier-free
            guidance (``guidance_scale`` when painting).
        must_fire_within: see :class:`~davinci_zoo.models.objective.Objective`.

    Reads ``inputs['images']`` and ``inputs['caption']``, and the batch's image codes
    (``inputs['codes']`` if the data gives them, else the image tokenizer's).

    Decoder positions are absolute raster positions: the image BOS sits at position r*w and
    code j of the image at 1 + j, so a code's position does not depend on the split (for
    r = 0 this is exactly the original's layout).
    """

    inputs = ('images', 'caption')
    parts = (IMAGE_TOKENIZER,)
    teaches = ('paint',)

    def __init__(
        self,
        weight: float = 1.0,
        mode: str = 'dynamic',
        max_tokens: int = 30,
        logits: str = IMAGE,
        input_noise: float = 0.0,
        caption_dropout: float = 0.0,
        name: str | None = None,
        must_fire_within: int | None = 100,
    ) -> None:
        super().__init__(weight, name, must_fire_within)
        if not 0.0 <= input_noise < 1.0:
            raise ComponentArgumentError(f'input_noise must lie in [0, 1), got {input_noise}')
        if not 0.0 <= caption_dropout < 1.0:
            raise ComponentArgumentError(
                f'caption_dropout must lie in [0, 1), got {caption_dropout}'
            )
        if mode not in ('dynamic', 'static'):
            raise ComponentArgumentError(f"mode must be 'dynamic' or 'static', got {mode!r}")
        if logits not in (IMAGE, ALL):
            raise ComponentArgumentError(f"logits must be '{IMAGE}' or '{ALL}', got {logits!r}")
        self.mode, self.max_tokens, self.logits = mode, max_tokens, logits
        self.input_noise, self.caption_dropout = input_noise, caption_dropout

    def dropped_captions(self, captions: TextBatch) -> torch.Tensor:
        """[B] bool: captions read as empty -- empty ones and a ``caption_dropout`` share."""
        empty = captions.num_words == 0
        if not self.caption_dropout:
            return empty
        drop = np.random.random(captions.num_texts) < self.caption_dropout
        return empty | torch.from_numpy(drop).to(empty.device)

    def noisy_inputs(self, codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
        """codes [B, n] with an ``input_noise`` share replaced by random codes."""
        if not self.input_noise:
            return codes
        replace = torch.rand(codes.shape, device=codes.device) < self.input_noise
        random_codes = torch.randint_like(codes, codebook_size)
        return torch.where(replace, random_codes, codes)

    def choose_rows(self, model, code_rows: int) -> int:
        """The split row r for this step (the same for the whole batch)."""
        if self.mode == 'static':
            return 0
        rows = allowed_prefix_rows(
            code_rows, model.image_tokenizer.downsample_factor, model.image_embedder.stride
        )
        return rows[int(np.random.randint(len(rows)))]

    def forward(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        images, captions = inputs['images'], inputs['caption']
        codes = model.batch_codes(inputs)
        height, width = codes.shape[1:]
        rows = self.choose_rows(model, height)
        prefix, suffix = split_image(images, codes, rows, model.image_tokenizer.downsample_factor)
        empty = self.dropped_captions(captions)
        text_ids, text_mask = sequences(captions, empty=empty, max_tokens=self.max_tokens)
        memory, memory_mask = model.encode(prefix, text_ids, text_mask, full_image=False)
        bos = torch.full((len(codes), 1), model.vocab.image_bos_id, device=codes.device)
        given = self.noisy_inputs(suffix[:, :-1], model.vocab.codebook_size)
        given = torch.cat([bos, model.vocab.codes_to_ids(given)], dim=1)
        targets = model.vocab.codes_to_ids(suffix)
        positions = rows * width + torch.arange(given.shape[1], device=codes.device)
        loss = model.decoder_loss(given, positions, memory, memory_mask, targets, self.logits)
        return {f'loss_{self.name}': self.weight * loss}
