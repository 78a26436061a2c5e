"""The zoo's data transforms: caption cleaning, tokenisation, image bytes, packing.

A DaVinci pipeline reads an image (mmcv's ``LoadImageFromFile`` or :class:`LoadImageFromBytes`),
resizes and crops it (mmpretrain's ``ResizeEdge`` / ``CenterCrop``), cleans its texts
(:class:`PreCaption`), tokenises them once (:class:`TokenizeText`), and ends in
:class:`PackDaVinciInputs`::

    pipeline = [
        dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
        dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
             interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=256),
        dict(type='PreCaption', max_words=30),
        dict(type='TokenizeText', keys=['caption']),
        dict(type='PackDaVinciInputs'),
    ]

Images stay uint8 in the channel order they were loaded in (mmcv's: BGR) until
:class:`~davinci_zoo.models.data_preprocessor.DaVinciDataPreprocessor` normalises them on the
model's device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from PIL import Image

from ..registry import TRANSFORMS
from ..text.wordpiece import TokenizedText, shared_tokenizer
from .bad_rows import BadRow
from .captions import choose_caption, pre_caption

DEFAULT_META_KEYS = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'key')


def _as_keys(keys) -> tuple[str, ...]:
    return (keys,) if isinstance(keys, str) else tuple(keys)


@TRANSFORMS.register_module()
class PreCaption(BaseTransform):
    """Clean texts as the original did (:func:`~.captions.pre_caption`): lower-case, delete
    ``,.'!?"()*#:;~``, ``-`` and ``/`` to spaces, collapse whitespace, keep ``max_words``.

    Not mmpretrain's ``CleanCaption``, which deletes every punctuation mark and keeps no word
    limit. A field holding a list of texts gives one of them, drawn with numpy's global RNG.
    A text that is not a string, or is empty after cleaning, raises
    :class:`~.bad_rows.BadRow` (the dataset skips and counts the row).

    Args:
        keys: the fields to clean.
        max_words: words kept (None: all).
    """

    def __init__(self, keys: str | Sequence[str] = ('caption',), max_words: int | None = 30):
        self.keys, self.max_words = _as_keys(keys), max_words

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key not in results:
                raise BadRow(f'no {key!r} field')
            try:
                text = pre_caption(choose_caption(results[key]), self.max_words)
            except ValueError as error:
                raise BadRow(f'{key}: {error}') from None
            if not text:
                raise BadRow(f'empty {key}')
            results[key] = text
        return results


@TRANSFORMS.register_module()
class TokenizeText(BaseTransform):
    """Tokenise texts once, in the data workers: ``results[key + '_tokens']`` =
    :class:`~davinci_zoo.text.TokenizedText` (ids and the word of each id), or a list of them
    for a field that holds a list of texts (e.g. VQA answers).

    Args:
        keys: the text fields.
        vocab_file: WordPiece vocabulary (default: the shipped bert-base-uncased file).
    """

    def __init__(self, keys: str | Sequence[str] = ('caption',), vocab_file: str | None = None):
        self.keys = _as_keys(keys)
        self.tokenizer = shared_tokenizer(vocab_file)

    def transform(self, results: dict) -> dict:
        for key in self.keys:
            if key not in results:
                raise KeyError(f'TokenizeText: the sample has no {key!r} field')
            value = results[key]
            if isinstance(value, str):
                results[f'{key}_tokens'] = self.tokenizer.encode_words(value)
            elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                results[f'{key}_tokens'] = [self.tokenizer.encode_words(v) for v in value]
            else:
                raise BadRow(f'{key} is neither a string nor a list of strings: {value!r:.60}')
        return results


@TRANSFORMS.register_module()
class LoadImageFromBytes(BaseTransform):
    """Decode encoded image bytes (base64-decoded jsonl rows, tar members) like mmcv's
    ``LoadImageFromFile`` decodes a file: ``img`` (H, W, 3) uint8, mmcv's BGR order.

    Bytes that do not decode raise :class:`~.bad_rows.BadRow` (skipped and counted).

    Args:
        key: the field holding the bytes (removed once decoded).
        imdecode_backend: ``'pillow'`` or ``'cv2'`` (mmcv's ``imfrombytes``).
    """

    def __init__(self, key: str = 'img_bytes', imdecode_backend: str = 'pillow'):
        self.key, self.imdecode_backend = key, imdecode_backend

    def transform(self, results: dict) -> dict:
        import mmcv

        data = results.pop(self.key)
        try:
            image = mmcv.imfrombytes(data, flag='color', backend=self.imdecode_backend)
        except Exception as error:  # each backend raises its own kinds
            raise BadRow(f'image does not decode ({type(error).__name__}: {error})') from None
        if image is None:
            raise BadRow('image does not decode')
        results['img'] = image
        results['img_shape'] = results['ori_shape'] = image.shape[:2]
        return results


def image_tensor(image) -> torch.Tensor:
    """(H, W, C) or (H, W) array -> [C, H, W] tensor; a list of images -> [n, C, H, W]."""
    if isinstance(image, (list, tuple)):
        return torch.stack([image_tensor(item) for item in image])
    if isinstance(image, torch.Tensor):
        return image
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class BlankImage(BaseTransform):
    """Replace ``img`` (or each image of a list, e.g. an NLVR2 pair) by zeros of its shape:
    the text-only baseline of a task, which shows how much of it the texts alone answer."""

    def transform(self, results: dict) -> dict:
        image = results['img']
        if isinstance(image, list):
            results['img'] = [np.zeros_like(one) for one in image]
        else:
            results['img'] = np.zeros_like(image)
        return results


@TRANSFORMS.register_module()
class PackDaVinciInputs(BaseTransform):
    """The last transform: ``dict(inputs=..., data_samples=DataSample)``.

    ``inputs`` (what the model computes on):

    - ``images``: ``img`` as a uint8 tensor [3, H, W]; a list of images (an NLVR2 pair) as
      [n, 3, H, W];
    - each text of ``text_keys`` the sample has, as its tokens from :class:`TokenizeText`;
    - ``codes``: precomputed image codes [h, w], if the sample has them (the image tokenizer
      then never runs on this sample).

    ``data_samples`` (an mmpretrain ``DataSample``, for heads and metrics): each text of
    ``text_keys`` as given (field of the same name, e.g. ``caption``), ``gt_label`` /
    ``gt_score`` if present, the ``algorithm_keys`` and, as metainfo, the ``meta_keys``.

    Args:
        text_keys: text fields to pack (those the sample lacks are skipped).
        algorithm_keys: other fields for the data sample (e.g. ``gt_answer_weight``).
        meta_keys: fields for the data sample's metainfo.
    """

    def __init__(
        self,
        text_keys: Sequence[str] = ('caption', 'text'),
        algorithm_keys: Sequence[str] = (),
        meta_keys: Sequence[str] = DEFAULT_META_KEYS,
    ) -> None:
        self.text_keys = _as_keys(text_keys)
        self.algorithm_keys, self.meta_keys = _as_keys(algorithm_keys), _as_keys(meta_keys)

    def transform(self, results: dict) -> dict:
        from mmpretrain.structures import DataSample

        inputs, sample = {}, DataSample()
        if 'img' in results:
            inputs['images'] = image_tensor(results['img'])
        for key in self.text_keys:
            if key not in results:
                continue
            tokens = results.get(f'{key}_tokens')
            if tokens is None:
                raise KeyError(
                    f'PackDaVinciInputs: {key!r} is not tokenised; put '
                    f"dict(type='TokenizeText', keys=[{key!r}]) before it in the pipeline"
                )
            inputs[key] = tokens
            sample.set_field(results[key], key)
        if 'codes' in results:
            inputs['codes'] = torch.as_tensor(results['codes'], dtype=torch.long)
        if 'gt_label' in results:
            sample.set_gt_label(results['gt_label'])
        if 'gt_score' in results:
            sample.set_gt_score(results['gt_score'])
        for key in self.algorithm_keys:
            if key in results:
                sample.set_field(results[key], key)
        for key in self.meta_keys:
            if key in results:
                sample.set_field(results[key], key, field_type='metainfo')
        return dict(inputs=inputs, data_samples=sample)


def run_pipeline(pipeline, info: dict) -> dict:
    """A row's fields -> the packed item; :class:`~.bad_rows.BadRow` when the row cannot
    become one: a transform raised BadRow, an image file is missing or does not decode, or
    the pipeline dropped the sample (a transform returned None, as mmcv's
    ``LoadImageFromFile(ignore_empty=True)`` does for a missing or undecodable image)."""
    where = f' {info["img_path"]}' if 'img_path' in info else ''
    try:
        item = pipeline(info)
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise BadRow(f'image{where} does not load ({type(error).__name__}: {error})') from None
    if item is None:
        raise BadRow(f'the pipeline dropped the sample (image{where} missing or undecodable)')
    return item


def build_pipeline(pipeline: Sequence | None):
    """Transform configs (or callables) -> an mmengine ``Compose``, built from the zoo's
    TRANSFORMS (which reaches mmpretrain's and mmcv's too) in any default scope."""
    from mmengine.dataset import Compose

    return Compose(
        [TRANSFORMS.build(step) if isinstance(step, dict) else step for step in pipeline or []]
    )


__all__ = [
    'LoadImageFromBytes',
    'PackDaVinciInputs',
    'PreCaption',
    'TokenizeText',
    'TokenizedText',
    'build_pipeline',
    'image_tensor',
    'run_pipeline',
]
