"""Write, paint and complete with the one decoding engine: tensors in, tensors out.

:mod:`davinci_zoo.apis` wraps these for PIL images, files and strings. Images are the
model's input (normalised by its data preprocessor); texts are strings or a
:class:`~davinci_zoo.text.TextBatch` from a data pipeline. The encoder and decoder inputs
mirror training (:mod:`.objectives`):

- writing: encoder = image + empty text (``[CLS]``), PrefixLM at split k = 0; the decoder
  starts with ``[CLS]`` and an optional text prompt (the original's ``a picture of``);
- painting: encoder = caption alone, PrefixImage at r = 0; decoder = image BOS + h*w codes;
- completion: encoder = caption + the kept top rows as pixels, PrefixImage at r > 0; the
  decoder starts with the image BOS at position r*w and writes the other (h - r)*w codes.
  ``prefix='decoder'`` instead feeds the kept codes to the decoder after the BOS (positions
  0 .. r*w), which is what a model trained with r = 0 only (static PrefixImage) has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...text import TextBatch, sequences
from .beam_search import beam_search
from .generation import GenerationConfig, Guidance, decoder_state, generate
from .objectives import allowed_prefix_rows
from .vocabulary import IMAGE, TEXT

#: Caption tokens the encoder sees when painting (PrefixImage's ``max_tokens``).
PAINT_TEXT_TOKENS = 30
#: New tokens written when ``max_length`` is not given (``write_texts``' default).
DEFAULT_CAPTION_TOKENS = 30
PREFIX_MODES = ('encoder', 'decoder')


@dataclass
class Decoded:
    """``ids`` [B, N, n] global ids (N samples or beams per input); beam ``scores`` [B, N]."""

    ids: torch.Tensor
    scores: torch.Tensor | None = None


def decode(
    model,
    memory: torch.Tensor,
    memory_mask: torch.Tensor,
    prompt: torch.Tensor,
    modality: str,
    config: GenerationConfig,
    max_new_tokens: int,
    min_new_tokens: int = 0,
    first_position: int = 0,
    eos_id: int | None = None,
    samples: int = 1,
    guidance: Guidance | None = None,
) -> Decoded:
    """Greedy, sampling or beam search after ``prompt`` [B, P], as ``config`` says.

    ``samples`` > 1 draws that many continuations per input (sampling: the encoder output
    is shared, not recomputed) or keeps that many best beams (needs ``num_beams >= samples``).
    ``guidance``: classifier-free guidance by the encoder output of empty captions.
    """
    check_samples(config, samples)
    if config.num_beams > 1:
        pool = beam_search(
            decoder_state(model, memory, memory_mask, prompt.shape[1] + max_new_tokens, guidance),
            prompt,
            modality,
            max_new_tokens,
            config.num_beams,
            first_position,
            eos_id,
            min_new_tokens,
            config.length_penalty,
            config.repetition_penalty,
            model.vocab.pad_id,
        )
        return Decoded(pool.ids[:, :samples], pool.scores[:, :samples])
    ids = generate(
        model,
        memory,
        memory_mask,
        prompt,
        modality,
        max_new_tokens,
        first_position,
        eos_id,
        min_new_tokens,
        config.sampling(),
        config.generator(prompt.device),
        samples,
        guidance,
    )
    return Decoded(ids.view(len(prompt), samples, -1))


def check_samples(config: GenerationConfig, samples: int) -> None:
    """Raise ValueError unless ``config`` can give ``samples`` different results per input."""
    if samples < 1:
        raise ValueError(f'samples must be at least 1, got {samples}')
    if config.num_beams > 1 and samples > config.num_beams:
        raise ValueError(f'{samples} samples from beam search need num_beams >= {samples}')
    if config.num_beams == 1 and samples > 1 and not config.do_sample:
        raise ValueError(f'{samples} samples per input need do_sample=True (or num_beams)')


def check_positions(model, last_position: int) -> None:
    """Raise ValueError if the decoder has no position embedding for ``last_position``."""
    available = model.decoder.embeddings.max_positions
    if last_position >= available:
        raise ValueError(
            f"decoding up to position {last_position} needs more than the decoder's "
            f'{available} positions; shorten the prompt or max_length'
        )


def text_prompt(model, prompt: str, batch: int) -> torch.Tensor:
    """``[CLS]`` + the WordPiece ids of ``prompt`` (no ``[SEP]``), repeated: [B, P]."""
    ids = [model.vocab.text_bos_id]
    if prompt.strip():
        ids += model.text_tokenizer.encode(prompt, add_special_tokens=False)
    return torch.tensor([ids] * batch, device=model.device)


def check_writing_config(config: GenerationConfig) -> None:
    """Captions are written without guidance (there is no image-free caption to guide by)."""
    if config.guidance_scale != 1.0:
        raise ValueError('guidance_scale applies to painting, not to writing captions')


@torch.no_grad()
def write_texts(
    model, images: torch.Tensor, config: GenerationConfig | None = None, prompt: str = ''
) -> list[str]:
    """Model-input images [B, 3, H, W] -> one caption each (the text after ``prompt``)."""
    config = config or GenerationConfig()
    check_writing_config(config)
    empty_ids, empty_mask = model.tokenize([''] * len(images))
    memory, memory_mask = model.encode(images, empty_ids, empty_mask)
    start = text_prompt(model, prompt, len(images))
    longest, shortest = config.new_token_limits(start.shape[1], DEFAULT_CAPTION_TOKENS)
    check_positions(model, start.shape[1] + longest - 1)
    out = decode(
        model,
        memory,
        memory_mask,
        start,
        TEXT,
        config,
        longest,
        shortest,
        eos_id=model.vocab.text_eos_id,
    )
    return [model.text_tokenizer.decode(row) for row in out.ids[:, 0].tolist()]


def check_painting_config(config: GenerationConfig) -> None:
    """Paintings have exactly h*w codes: length limits do not apply."""
    if config.max_length is not None or config.min_length:
        raise ValueError('a painting always has the h*w codes of the code grid; drop max_length')


def caption_ids(model, texts: list[str] | TextBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] caption [SEP]`` as the painter reads it (PAINT_TEXT_TOKENS): ids, mask [B, T]."""
    if isinstance(texts, TextBatch):
        ids, mask = sequences(texts, max_tokens=PAINT_TEXT_TOKENS)
        return ids.to(model.device), mask.to(model.device)
    return model.tokenize(list(texts), PAINT_TEXT_TOKENS)


def caption_memory(model, texts: list[str] | TextBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder output for painting ``texts`` (caption alone): memory [B, S, D], mask [B, S]."""
    return model.encode(None, *caption_ids(model, texts))


@torch.no_grad()
def paint_codes(
    model, texts: list[str] | TextBatch, config: GenerationConfig | None = None, samples: int = 1
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Texts (B) -> (codes [B, N, h, w], beam scores [B, N] or None when not beam search)."""
    config = config or GenerationConfig()
    check_painting_config(config)
    memory, memory_mask = caption_memory(model, texts)
    count = len(memory)
    guidance = None
    if config.guidance_scale != 1.0:
        guidance = Guidance(*caption_memory(model, [''] * count), config.guidance_scale)
    prompt = torch.full((count, 1), model.vocab.image_bos_id, device=memory.device)
    height, width = model.vocab.code_grid
    out = decode(
        model,
        memory,
        memory_mask,
        prompt,
        IMAGE,
        config,
        height * width,
        samples=samples,
        guidance=guidance,
    )
    codes = model.vocab.ids_to_codes(out.ids).view(count, samples, height, width)
    return codes, out.scores


def image_tokenizer_of(model):
    """The model's image tokenizer; ValueError when it was built without one."""
    if model.image_tokenizer is None:
        raise ValueError(
            'this model was built without an image tokenizer (none of its objectives or its '
            'head needs image codes); painting and completion need one: use a config whose '
            'objectives or head paint (e.g. PrefixImage, WritePaintHead)'
        )
    return model.image_tokenizer


@torch.no_grad()
def codes_to_images(model, codes: torch.Tensor) -> torch.Tensor:
    """Codes [..., h, w] -> RGB images [..., 3, H, W] in [0, 1] (the tokenizer's decoder)."""
    decoder = image_tokenizer_of(model).decode
    images = decoder(codes.reshape(-1, *codes.shape[-2:])).clamp(0, 1)
    return images.view(*codes.shape[:-2], *images.shape[1:])


def rows_for_pixels(model, pixels: int) -> int:
    """A top strip height in pixels -> code rows; it must be a multiple of the code cell."""
    cell = image_tokenizer_of(model).downsample_factor
    if pixels < 0 or pixels % cell:
        raise ValueError(f'a kept strip of {pixels} px is no multiple of the {cell} px code cell')
    return pixels // cell


def check_keep_rows(model, rows: int, prefix: str) -> None:
    """Raise ValueError unless ``rows`` code rows can be kept with this ``prefix`` mode."""
    if prefix not in PREFIX_MODES:
        raise ValueError(f'prefix must be one of {PREFIX_MODES}, got {prefix!r}')
    height = model.vocab.code_grid[0]
    if not 0 <= rows < height:
        raise ValueError(f'keep_rows must be in [0, {height - 1}] (code rows), got {rows}')
    cell, stride = image_tokenizer_of(model).downsample_factor, model.image_embedder.stride
    allowed = allowed_prefix_rows(height, cell, stride)
    if prefix == 'encoder' and rows not in allowed:
        raise ValueError(
            f'the image embedder (stride {stride} px) can read a top strip of {allowed} code '
            f'rows, not {rows}; use one of those or prefix="decoder"'
        )


def completion_inputs(model, images, codes, rows: int, texts: list[str], prefix: str):
    """-> (memory [B, S, D], memory mask [B, S], decoder prompt [B, P], its first position)."""
    width = codes.shape[-1]
    text_ids, text_mask = model.tokenize(list(texts), PAINT_TEXT_TOKENS)
    bos = torch.full((len(codes), 1), model.vocab.image_bos_id, device=codes.device)
    if prefix == 'encoder':
        strip = images[:, :, : rows * model.image_tokenizer.downsample_factor]
        memory, memory_mask = model.encode(strip, text_ids, text_mask, full_image=False)
        return memory, memory_mask, bos, rows * width
    memory, memory_mask = model.encode(None, text_ids, text_mask)
    kept = model.vocab.codes_to_ids(codes[:, :rows].flatten(1))
    return memory, memory_mask, torch.cat([bos, kept], dim=1), 0


@torch.no_grad()
def complete_codes(
    model,
    images: torch.Tensor,
    rows: int,
    texts: list[str],
    config: GenerationConfig | None = None,
    prefix: str = 'encoder',
) -> torch.Tensor:
    """Keep the top ``rows`` code rows of model-input images [B, 3, H, W]; paint the rest:
    codes [B, h, w]."""
    config = config or GenerationConfig()
    check_painting_config(config)
    check_keep_rows(model, rows, prefix)
    codes = model.image_codes(images)
    height, width = codes.shape[1:]
    memory, memory_mask, prompt, first = completion_inputs(
        model, images, codes, rows, texts, prefix
    )
    guidance = None
    if config.guidance_scale != 1.0:
        empty = [''] * len(images)
        memory_u, mask_u, _, _ = completion_inputs(model, images, codes, rows, empty, prefix)
        guidance = Guidance(memory_u, mask_u, config.guidance_scale)
    out = decode(
        model,
        memory,
        memory_mask,
        prompt,
        IMAGE,
        config,
        (height - rows) * width,
        first_position=first,
        guidance=guidance,
    )
    painted = model.vocab.ids_to_codes(out.ids[:, 0]).view(len(images), height - rows, width)
    return torch.cat([codes[:, :rows], painted], dim=1)
