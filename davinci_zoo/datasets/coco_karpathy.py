"""COCO captions in Karpathy's split file (``dataset_coco.json``), for captioning and painting.

The file the captioning literature shares: ``{"images": [{"filepath": "val2014", "filename":
"COCO_val2014_000000391895.jpg", "imgid": 0, "split": "test", "sentences": [{"raw": "A man
...", "tokens": [...], "imgid": 0, "sentid": 770337}, ...], "sentids": [...], "cocoid":
391895}, ...], "dataset": "coco"}``. ``split`` is one of train (82,783 images), restval
(30,504), val (5,000) and test (5,000); an image lives at ``data_root/filepath/filename``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence

from torch.utils.data import Dataset

from ..models.parts import ComponentArgumentError
from ..registry import DATASETS
from .bad_rows import BadDataError, BadRow, BadRowTally, DataFileError
from .transforms import build_pipeline, run_pipeline

#: The splits of Karpathy's file; training uses train + restval (113,287 images).
KARPATHY_SPLITS = ('train', 'restval', 'val', 'test')
ITEM_KINDS = ('captions', 'images')


def read_karpathy_images(path: str) -> list:
    """The ``images`` list of a Karpathy split file; a one-line error naming the file when it
    is missing or not of that layout."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'Karpathy split file {path} does not exist; see docs/tasks/caption_coco.md'
        )
    with open(path, encoding='utf-8') as stream:
        try:
            content = json.load(stream)
        except json.JSONDecodeError as error:
            raise DataFileError(f'{path} is not valid JSON ({error})') from None
    if not isinstance(content, dict) or not isinstance(content.get('images'), list):
        raise DataFileError(f'{path} must hold {{"images": [...]}} (Karpathy\'s dataset_coco.json)')
    return content['images']


def row_split(row) -> str | None:
    """The split a row names, or None when the row has no readable split."""
    split = row.get('split') if isinstance(row, dict) else None
    return split if split in KARPATHY_SPLITS else None


def raw_text(sentence) -> str:
    """A sentence's ``raw`` text; BadRow when it has none."""
    raw = sentence.get('raw') if isinstance(sentence, dict) else None
    if not isinstance(raw, str) or not raw.strip():
        raise BadRow(f'a sentence without a raw text: {sentence!r:.60}')
    return raw


def row_sentences(row: dict) -> list:
    """A row's ``sentences`` list; BadRow when it is missing or empty."""
    sentences = row.get('sentences')
    if not isinstance(sentences, list) or not sentences:
        raise BadRow('no sentences list')
    return sentences


@DATASETS.register_module()
class CocoKarpathyCaptions(Dataset):
    """COCO (or any data in the same layout) from Karpathy's ``dataset_coco.json``.

    Args:
        ann_file: the split file.
        data_root: the folder ``filepath/filename`` start from (COCO: the one holding
            ``train2014/`` and ``val2014/``).
        split: one split name or a list of them (see :data:`KARPATHY_SPLITS`); training on
            the Karpathy split is ``['train', 'restval']``.
        items: ``'captions'``: one item per sentence, ``caption`` = its raw text (training);
            ``'images'``: one item per image, ``caption`` = all its raw texts (a list, e.g. for
            :class:`~.caption_references.KeepCaptionReferences`; evaluation).
        caption_seed: with ``items='images'``, give every image one of its captions, drawn
            with this seed (the text-to-image protocol: a fixed caption per image); None: all.
        max_images: keep this many images of the split (a seeded draw, ``subset_seed``), in
            file order; None: all.
        subset_seed: the seed of that draw.
        pipeline: transforms from ``dict(img_path, caption, sample_idx, cocoid, imgid,
            sentid)`` (``sentid`` for caption items) to a packed item (see :mod:`.transforms`).
        max_bad_fraction, min_rows: the bad-row limit (see :mod:`.bad_rows`).

    A row of the file that is not an object with a known ``split`` stops the dataset with a
    one-line error naming the file and row (its split, so whether it belongs here, is
    unknown). An item whose row has no sentences, whose sentence (a caption item) or any of
    whose sentences (an image item) has no ``raw`` text, whose row lacks a ``filename``, or
    whose image is missing or does not decode is bad: skipped for the next item and counted
    (``bad_rows`` / ``seen_rows`` on the items).
    """

    def __init__(
        self,
        ann_file: str,
        data_root: str = '',
        split: str | Sequence[str] = 'test',
        items: str = 'images',
        caption_seed: int | None = None,
        max_images: int | None = None,
        subset_seed: int = 0,
        pipeline: Sequence = (),
        max_bad_fraction: float | None = 0.01,
        min_rows: int = 1000,
    ) -> None:
        splits = [split] if isinstance(split, str) else list(split)
        unknown = sorted(set(splits) - set(KARPATHY_SPLITS))
        if unknown or not splits:
            raise ComponentArgumentError(f'split must be among {KARPATHY_SPLITS}, got {split!r}')
        if items not in ITEM_KINDS:
            raise ComponentArgumentError(f'items must be one of {ITEM_KINDS}, got {items!r}')
        if caption_seed is not None and items != 'images':
            raise ComponentArgumentError(
                "caption_seed picks one caption per image: use items='images'"
            )
        self.ann_file, self.data_root, self.items = ann_file, data_root, items
        self.caption_seed = caption_seed
        self.rows = self.chosen_rows(read_karpathy_images(ann_file), splits)
        if max_images is not None and max_images < len(self.rows):
            keep = sorted(random.Random(subset_seed).sample(range(len(self.rows)), max_images))
            self.rows = [self.rows[index] for index in keep]
        self.index = self.item_index()
        if not self.index:
            raise DataFileError(f'{ann_file} has no image in the split(s) {splits}')
        self.pipeline = build_pipeline(pipeline)
        self.tally = BadRowTally(type(self).__name__, max_bad_fraction, min_rows)

    def chosen_rows(self, rows: list, splits: list[str]) -> list[tuple[int, dict]]:
        """(row number, row) of the chosen splits; DataFileError for a row without a split."""
        chosen = []
        for number, row in enumerate(rows):
            split = row_split(row)
            if split is None:
                raise DataFileError(
                    f'{self.ann_file} images[{number}]: not an object with a split in '
                    f'{KARPATHY_SPLITS}: {row!r:.80}'
                )
            if split in splits:
                chosen.append((number, row))
        return chosen

    def item_index(self) -> list[tuple[int, int | None]]:
        """(position in :attr:`rows`, sentence number or None) of every item. A row whose
        sentences are unreadable still gets one item, which is then skipped and counted."""
        index = []
        for position, (_, row) in enumerate(self.rows):
            sentences = row.get('sentences')
            count = len(sentences) if isinstance(sentences, list) and sentences else 1
            if self.items == 'images':
                index.append((position, None))
            else:
                index.extend((position, sentence) for sentence in range(count))
        return index

    def __len__(self) -> int:
        return len(self.index)

    def image_path(self, row: dict) -> str:
        parts = [row.get('filepath', ''), row.get('filename')]
        if not all(isinstance(part, str) for part in parts) or not parts[1]:
            raise BadRow(f'no filepath/filename strings: {parts!r:.60}')
        return os.path.join(self.data_root, *[part for part in parts if part])

    def item_fields(self, item: int) -> dict:
        """The pipeline's input for item ``item``; BadRow when its row cannot give one."""
        position, sentence = self.index[item]
        row = self.rows[position][1]
        sentences = row_sentences(row)
        fields = dict(
            img_path=self.image_path(row),
            sample_idx=item,
            cocoid=row.get('cocoid'),
            imgid=row.get('imgid'),
        )
        if sentence is not None:  # a caption item: only its own sentence must be readable
            fields['caption'] = raw_text(sentences[sentence])
            fields['sentid'] = sentences[sentence].get('sentid')
            return fields
        texts = [raw_text(one) for one in sentences]  # an image item: every reference
        if self.caption_seed is None:
            fields['caption'] = texts
        else:
            draw = random.Random(f'{self.caption_seed}-{row.get("imgid", position)}')
            fields['caption'] = draw.choice(texts)
        return fields

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.index)):
            item = (index + offset) % len(self.index)
            number = self.rows[self.index[item][0]][0]
            try:
                packed = run_pipeline(self.pipeline, self.item_fields(item))
            except BadRow as error:
                self.tally.skip(self.ann_file, f'{self.ann_file} images[{number}]', str(error))
                continue
            return dict(packed, **self.tally.accept())
        raise BadDataError(f'{type(self).__name__}: no usable item in {len(self.index)} items')
