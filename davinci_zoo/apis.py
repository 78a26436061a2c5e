"""Write and paint from Python: load a trained DaVinci, caption images, paint and complete.

Example:
    >>> from davinci_zoo.apis import caption, complete, init_model, paint
    >>> model = init_model('configs/davinci_tiny_scenes32.py', 'work_dirs/x/iter_450.pth')
    >>> caption(model, ['scene.png'], num_beams=2)
    ['a small red circle in the top left']
    >>> best = paint(model, ['a small red circle in the top left'], num_samples=8,
    ...              rerank=True, do_sample=True, top_k=50, seed=0)      # [PIL.Image]
    >>> done = complete(model, ['scene.png'], 4, ['a small red circle in the top left'])

The generation keywords (``**gen``) are the fields of
:class:`~davinci_zoo.models.davinci.generation.GenerationConfig`: ``max_length``,
``min_length``, ``count_prompt``, ``num_beams``, ``length_penalty``, ``do_sample``,
``temperature``, ``top_k``, ``top_p``, ``repetition_penalty``, ``seed``, and for painting
``guidance_scale`` (classifier-free guidance).

Image files and PIL images are read as the shipped data pipelines read them (mmcv's
``LoadImageFromFile`` with pillow, the short side resized bicubically to the model's
``image_size``, a centre crop), then normalised by the model's data preprocessor. Importing
this module imports torch; ``import davinci_zoo`` alone does not.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from PIL import Image

from .checkpoint import fitting_state_dict, load_checkpoint_file, state_dict_of
from .models.davinci import inference, reranking
from .models.davinci.generation import GenerationConfig

_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class InputError(ValueError):
    """An input the API cannot use (unreadable image, empty text, wrong tensor shape)."""


# -- the model ----------------------------------------------------------------------------
def init_model(config, checkpoint: str | os.PathLike | None = None, device='cpu'):
    """Build the DaVinci of ``config`` (a path, an mmengine Config or a dict), in eval mode.

    ``checkpoint`` (``.pth`` or ``.safetensors``, read safely) must fit the model exactly:
    otherwise :class:`~davinci_zoo.checkpoint.CheckpointMismatchError` names the missing,
    unexpected and mis-shaped keys. The checkpoint holds the image tokenizer too, so a
    tokenizer ``checkpoint`` path in the config is not read then.
    """
    from mmengine.config import Config

    from .cli import check_input_paths, load_config, skip_start_weights
    from .engine.runtime import setup_runtime
    from .models.davinci.model import DaVinci
    from .registry import MODELS

    setup_runtime()
    if isinstance(config, (str, os.PathLike)):
        cfg = load_config(os.fspath(config))
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        cfg = Config(copy.deepcopy(dict(config)))
    if 'model' not in cfg:
        raise InputError('the config has no "model" section')
    if checkpoint is not None:
        skip_start_weights(cfg)
    check_input_paths(cfg, ('model',))
    model = MODELS.build(cfg.model)
    if not isinstance(model, DaVinci):
        raise InputError(f'the config builds a {type(model).__name__}, not a DaVinci model')
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model.to(device).eval()


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a checkpoint that fits ``model`` exactly, less the weights of pretraining
    objectives the model does not run; else an error naming the keys."""
    state_dict = state_dict_of(load_checkpoint_file(path))
    state_dict, _ = fitting_state_dict(model, state_dict, source=f'checkpoint {os.fspath(path)}')
    model.load_state_dict(state_dict)


# -- inputs -------------------------------------------------------------------------------
def image_steps(size: int) -> list[dict]:
    """The shipped pipelines' resize and crop to ``size`` (after loading the image)."""
    return [
        dict(
            type='ResizeEdge', scale=size, edge='short', backend='pillow', interpolation='bicubic'
        ),
        dict(type='CenterCrop', crop_size=size),
    ]


def read_image(source, size: int) -> torch.Tensor:
    """A path or PIL image -> [3, size, size] RGB in [0, 1], as the data pipelines read it."""
    from .datasets.transforms import build_pipeline

    if isinstance(source, Image.Image):
        loaded = dict(img=np.asarray(source.convert('RGB'))[..., ::-1].copy())  # mmcv's BGR
    else:
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'image {path} does not exist')
        load = build_pipeline([dict(type='LoadImageFromFile', imdecode_backend='pillow')])
        try:
            loaded = load(dict(img_path=path))
        except _IMAGE_ERRORS as error:
            raise InputError(f'image {path} cannot be read ({error})') from None
    image = build_pipeline(image_steps(size))(loaded)['img']
    return torch.from_numpy(image[..., ::-1].transpose(2, 0, 1).copy()).float() / 255


def image_batch(images, size: int, device) -> torch.Tensor:
    """Paths, PIL images, or a tensor [B, 3, S, S] / [3, S, S] in [0, 1] -> RGB [B, 3, S, S]
    in [0, 1]."""
    if isinstance(images, torch.Tensor):
        batch = images[None] if images.dim() == 3 else images
        if batch.dim() != 4 or tuple(batch.shape[1:]) != (3, size, size):
            raise InputError(f'expected images [B, 3, {size}, {size}], got {tuple(images.shape)}')
        if batch.numel() and (batch.min() < 0 or batch.max() > 1):
            raise InputError('image tensors must hold values in [0, 1]')
        return batch.to(device=device, dtype=torch.float32)
    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    tensors = [read_image(image, size) for image in images]
    if not tensors:
        raise InputError('no images given')
    return torch.stack(tensors).to(device)


def text_list(texts) -> list[str]:
    """One string or a list of strings -> a list; empty or blank texts are an InputError."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise InputError('no texts given')
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise InputError(f'texts must be non-empty strings, got {text!r}')
    return [text.strip() for text in texts]


def to_pil(image: torch.Tensor) -> Image.Image:
    """[3, H, W] in [0, 1] -> an RGB PIL image (values rounded to 8 bits)."""
    pixels = (image.detach().float().clamp(0, 1) * 255).round().byte()
    return Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy())


def _checked(check, *args) -> None:
    """Run one of the input checks of :mod:`.models.davinci.inference`; ValueError -> InputError."""
    try:
        check(*args)
    except ValueError as error:
        raise InputError(str(error)) from None


def generation_config(gen: dict) -> GenerationConfig:
    """The generation keywords as a GenerationConfig; unknown or bad ones are an InputError."""
    try:
        return GenerationConfig(**gen)
    except (TypeError, ValueError) as error:
        raise InputError(f'generation options: {error}') from None


def _check_caption_length(model, config: GenerationConfig, prompt: str) -> None:
    inference.check_writing_config(config)
    prompt_length = inference.text_prompt(model, prompt, 1).shape[1]
    longest, _ = config.new_token_limits(prompt_length, inference.DEFAULT_CAPTION_TOKENS)
    inference.check_positions(model, prompt_length + longest - 1)


def _check_painting(config: GenerationConfig, samples: int) -> None:
    inference.check_painting_config(config)
    inference.check_samples(config, samples)


# -- write --------------------------------------------------------------------------------
def caption(model, images, prompt: str = '', batch_size: int = 32, **gen) -> list[str]:
    """One caption per image (the text after ``prompt``, e.g. ``prompt='a picture of'``).

    ``images``: file paths, PIL images, or a tensor [B, 3, S, S] in [0, 1] at the model's
    ``image_size``. Greedy by default; ``num_beams=2, max_length=20, min_length=5,
    count_prompt=True`` is the original's captioning setting.
    """
    config = generation_config(gen)
    _checked(_check_caption_length, model, config, prompt)
    batch = image_batch(images, model.image_size, model.device)
    captions = []
    for chunk in batch.split(batch_size):
        pixels = model.data_preprocessor.normalize(chunk)
        captions += inference.write_texts(model, pixels, config, prompt)
    return captions


# -- answer -------------------------------------------------------------------------------
def answer(model, images, questions, batch_size: int = 32, top_k: int | None = None) -> list[str]:
    """One answer per image and question, by a model with a ``VQAHead`` (docs/tasks/vqa.md).

    ``images``: file paths, PIL images, or a tensor [B, 3, S, S] in [0, 1] at the model's
    ``image_size``; ``questions``: one string per image, cleaned as the VQA pipelines clean
    them. ``top_k``: candidates re-ranked by their whole likelihood (default: the head's).
    """
    from .datasets.captions import pre_caption
    from .models.heads.vqa import VQAHead
    from .text import TextBatch, tokenize_texts

    if not isinstance(model.head, VQAHead):
        has = 'no head' if model.head is None else type(model.head).__name__
        raise InputError(f'answering needs a model with a VQAHead; this one has {has}')
    cleaned = [pre_caption(question, max_words=50) for question in text_list(questions)]
    if not all(cleaned):
        raise InputError(f'a question is empty once cleaned: {questions!r:.80}')
    batch = image_batch(images, model.image_size, model.device)
    if len(cleaned) != len(batch):
        raise InputError(f'{len(batch)} images but {len(cleaned)} questions')
    answers = []
    for start in range(0, len(batch), batch_size):
        pixels = model.data_preprocessor.normalize(batch[start : start + batch_size])
        texts = tokenize_texts(model.text_tokenizer, cleaned[start : start + batch_size])
        texts = TextBatch(*(tensor.to(model.device) for tensor in texts))
        answers += model.head.answers(model, dict(images=pixels, question=texts), top_k)
    return answers


# -- paint --------------------------------------------------------------------------------
build_scorer = reranking.build_scorer


def paint_tensors(
    model, texts, num_samples: int = 1, rerank: bool = False, scorer=None, **gen
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Paintings [B, N, 3, H, W] in [0, 1] for B texts, and their scores [B, N] or None.

    With ``rerank`` the N samples of each text are scored by ``scorer`` (default: the
    model's caption likelihood) and sorted best first; with beam search (``num_beams``) they
    are the N best beams with their beam scores. Otherwise they come in drawing order.
    """
    if scorer is not None and not rerank:
        raise InputError('a scorer is only used with rerank=True')
    _checked(inference.image_tokenizer_of, model)
    texts = text_list(texts)
    config = generation_config(gen)
    _checked(_check_painting, config, num_samples)
    if rerank:
        return reranking.best_first(
            *reranking.paint_scored(model, texts, config, num_samples, scorer)
        )
    codes, scores = inference.paint_codes(model, texts, config, num_samples)
    return inference.codes_to_images(model, codes), scores


def paint(
    model,
    texts,
    num_samples: int = 1,
    rerank: bool = False,
    scorer=None,
    with_scores: bool = False,
    **gen,
):
    """Paint each text; returns a list with one entry per text.

    The entry is:

    - one PIL image when ``num_samples == 1`` or ``rerank`` (the best of the N samples);
    - a list of the N PIL images otherwise (sample ``do_sample=True``, or ``num_beams >= N``);
    - with ``with_scores=True``: a list of all N ``(PIL image, score)`` pairs, best first
      (needs ``rerank`` or beam search, the two sources of scores).

    ``scorer``: a SCORERS name, config dict or callable ``scorer(model, images, texts)``
    (used with ``rerank``; default ``CaptionLikelihoodScorer``).
    """
    images, scores = paint_tensors(model, texts, num_samples, rerank, scorer, **gen)
    if with_scores:
        if scores is None:
            raise InputError('with_scores needs rerank=True or beam search (num_beams > 1)')
        return [
            [(to_pil(image), float(score)) for image, score in zip(row, row_scores)]
            for row, row_scores in zip(images, scores)
        ]
    if num_samples == 1 or rerank:
        return [to_pil(row[0]) for row in images]
    return [[to_pil(image) for image in row] for row in images]


# -- complete -----------------------------------------------------------------------------
def complete(
    model,
    images,
    keep_rows: int | None,
    texts,
    keep_pixels: int | None = None,
    prefix: str = 'encoder',
    **gen,
) -> list[Image.Image]:
    """Keep the top of each image, paint the rest for its text: one PIL image per image.

    Give the kept strip as ``keep_rows`` code rows, or as ``keep_pixels`` (a multiple of the
    tokenizer's code cell; pass ``keep_rows=None``). The kept pixels are returned unchanged.
    ``prefix='encoder'`` (default) reads the strip as pixels in the encoder, as PrefixImage
    trains; ``'decoder'`` feeds its codes to the decoder instead (see
    :mod:`~davinci_zoo.models.davinci.inference`).
    """
    if (keep_rows is None) == (keep_pixels is None):
        raise InputError('give exactly one of keep_rows and keep_pixels')
    if keep_pixels is not None:
        try:
            keep_rows = inference.rows_for_pixels(model, keep_pixels)
        except ValueError as error:
            raise InputError(str(error)) from None
    config = generation_config(gen)
    _checked(inference.image_tokenizer_of, model)
    _checked(inference.check_keep_rows, model, keep_rows, prefix)
    _checked(inference.check_painting_config, config)
    batch = image_batch(images, model.image_size, model.device)
    texts = text_list(texts)
    if len(texts) != len(batch):
        raise InputError(f'{len(batch)} images but {len(texts)} texts')
    pixels = model.data_preprocessor.normalize(batch)
    codes = inference.complete_codes(model, pixels, keep_rows, texts, config, prefix)
    completed = inference.codes_to_images(model, codes).to(batch.dtype)
    strip = keep_rows * model.image_tokenizer.downsample_factor
    completed[:, :, :strip] = batch[:, :, :strip]  # the kept pixels, unchanged
    return [to_pil(image) for image in completed]


__all__ = [
    'InputError',
    'answer',
    'build_scorer',
    'generation_config',
    'caption',
    'complete',
    'image_batch',
    'init_model',
    'load_weights',
    'paint',
    'paint_tensors',
    'read_image',
    'to_pil',
]
