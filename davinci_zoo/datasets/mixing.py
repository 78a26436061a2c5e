"""Several sources in one training step, and the collate function of every DaVinci batch.

mmengine builds one train_dataloader, so the mixing happens in the item stream:
:class:`MultiSourceDataset` interleaves its sources, and :func:`mixed_collate` (config:
``collate_fn=dict(type='davinci_zoo.mixed_collate')``) turns a list of packed items (see
:class:`~.transforms.PackDaVinciInputs`), from one source or several, into one batch, e.g.
``dict(inputs=dict(images=[B1, 3, H, W], caption=TextBatch of B1, text=TextBatch of B2),
data_samples=[B1 + B2], bad_rows=int, seen_rows=int)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np
import torch
from mmengine.dist import get_dist_info
from torch.utils.data import Dataset, IterableDataset

from ..models.parts import ComponentArgumentError
from ..registry import DATASETS, FUNCTIONS
from ..text import TokenizedText, pad_texts
from .bad_rows import BAD_ROWS, SEEN_ROWS, DataFileError
from .streaming import ENDLESS, consumer_slot


def map_style_stream(dataset: Dataset, seed: int, rank: int, world_size: int) -> Iterator[dict]:
    """Endless items of a map-style dataset: each pass a new permutation (``seed + pass``),
    of which this consumer reads every n-th index, so each index once per pass overall."""
    slot, num_slots = consumer_slot(rank, world_size)
    if len(dataset) <= slot:
        raise DataFileError(
            f'{type(dataset).__name__} has {len(dataset)} items, too few for '
            f'{num_slots} data consumers (ranks x workers)'
        )
    epoch = 0
    while True:
        order = np.random.default_rng(seed + epoch).permutation(len(dataset))
        for index in order[slot::num_slots]:
            yield dataset[int(index)]
        epoch += 1


def restarting_stream(dataset: IterableDataset) -> Iterator[dict]:
    """Endless items of an iterable dataset: a new pass (``set_epoch`` + 1) when one ends."""
    epoch = getattr(dataset, 'epoch', 0)
    while True:
        empty = True
        for item in dataset:
            empty = False
            yield item
        if empty:
            raise DataFileError(f'{type(dataset).__name__} gave no items in a whole pass')
        epoch += 1
        if hasattr(dataset, 'set_epoch'):
            dataset.set_epoch(epoch)


@DATASETS.register_module()
class MultiSourceDataset(IterableDataset):
    """An endless stream interleaving named sources so that each batch mixes them.

    Args:
        sources: name -> dataset config (or dataset). Iterable sources split themselves
            over ranks and workers and are restarted when they end; map-style ones are read
            in a new permutation each pass, split the same way.
        mode: ``'fixed'``: ``counts[name]`` items of each source in turn, in the order of
            ``counts``; with ``batch_size = sum(counts)`` (see :attr:`batch_size`) every batch
            holds exactly those counts. ``'sample'``: each item's source is drawn with
            ``probs`` (from a generator seeded with ``seed`` and the consumer number).
        counts: items per batch of each source (fixed mode).
        probs: relative probability of each source (sample mode).
        seed, rank, world_size: as for :class:`~.streaming.RowStream`.

    Items are the sources' items plus ``source`` (the name); batch them with
    :func:`mixed_collate`.

    Example::

        dataset = dict(type='MultiSourceDataset', mode='fixed',
                       counts=dict(pairs=64, text=64),
                       sources=dict(pairs=dict(type='WebDatasetShards', shards=...),
                                    text=dict(type='TextCorpus', files=...)))
    """

    def __init__(
        self,
        sources: dict,
        mode: str = 'fixed',
        counts: dict | None = None,
        probs: dict | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if mode not in ('fixed', 'sample'):
            raise ComponentArgumentError(f"mode must be 'fixed' or 'sample', got {mode!r}")
        weights = counts if mode == 'fixed' else probs
        if not weights or any(name not in sources for name in weights):
            raise ComponentArgumentError(
                f'{mode} mode needs {"counts" if mode == "fixed" else "probs"} '
                f'for some of the sources {sorted(sources)}, got {weights}'
            )
        if any(value < 0 for value in weights.values()) or sum(weights.values()) <= 0:
            raise ComponentArgumentError(f'{weights} must be non-negative with a positive sum')
        self.sources = {
            name: DATASETS.build(source) if isinstance(source, dict) else source
            for name, source in sources.items()
            if weights.get(name, 0) > 0
        }
        self.mode, self.weights, self.seed = mode, dict(weights), seed
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None else world_size

    @property
    def batch_size(self) -> int | None:
        """The batch size that gives every batch the fixed counts (None in sample mode)."""
        return int(sum(self.weights.values())) if self.mode == 'fixed' else None

    def __len__(self) -> int:
        return ENDLESS  # endless; mmengine's LoggerHook asks for a length

    def stream_of(self, source) -> Iterator[dict]:
        if isinstance(source, IterableDataset):
            return restarting_stream(source)
        return map_style_stream(source, self.seed, self.rank, self.world_size)

    def __iter__(self) -> Iterator[dict]:
        streams = {name: self.stream_of(source) for name, source in self.sources.items()}
        if self.mode == 'fixed':
            while True:
                for name, count in self.weights.items():
                    for _ in range(count):
                        yield dict(next(streams[name]), source=name)
        names = list(self.sources)
        probs = np.array([self.weights[name] for name in names], dtype=float)
        slot, _ = consumer_slot(self.rank, self.world_size)
        rng = np.random.default_rng([self.seed, slot])
        while True:
            name = names[rng.choice(len(names), p=probs / probs.sum())]
            yield dict(next(streams[name]), source=name)


@FUNCTIONS.register_module()
def mixed_collate(items: list[dict], counts: dict | None = None) -> dict:
    """Packed items (``dict(inputs=..., data_samples=...)``) of one or several sources ->
    one batch.

    ``inputs`` has every key any item provides, collated over the items that provide it, in
    order: tensors of one shape are stacked (images [B, 3, H, W], image pairs
    [B, 2, 3, H, W], codes [B, h, w]); tokenised texts are padded into a
    :class:`~davinci_zoo.text.TextBatch`; lists of tokenised texts (a row's VQA answers)
    become one TextBatch whose ``owner`` names each text's row. Keys that the same items
    provide share their rows (an image's caption); keys provided by overlapping but different
    sets of items cannot be lined up and are an error. So a batch of pairs and documents gives
    ``images`` and ``caption`` for the B1 pairs and ``text`` for the B2 documents, and an
    objective whose keys are absent has no data in this step.

    ``data_samples`` lists every item's data sample; ``bad_rows`` and ``seen_rows`` are the
    sums over the batch. With ``counts`` (source name -> items) every batch must hold exactly
    those numbers of items of each ``source``.
    """
    if counts is not None:
        found = Counter(item.get('source') for item in items)
        expected = Counter({name: count for name, count in counts.items() if count})
        if found != expected:
            raise ComponentArgumentError(
                f'a batch holds {dict(found)} items per source, expected '
                f'{dict(expected)}: set train_dataloader.batch_size to '
                f'{sum(expected.values())}, the sum of the counts'
            )
    for item in items:
        if not isinstance(item, dict) or 'inputs' not in item:
            raise ComponentArgumentError(
                'mixed_collate takes packed items, dict(inputs=..., data_samples=...): end '
                "the dataset's pipeline with dict(type='PackDaVinciInputs')"
            )
    providers: dict[str, list[int]] = {}
    for row, item in enumerate(items):
        for key in item['inputs']:
            providers.setdefault(key, []).append(row)
    check_rows_line_up(providers)
    inputs = {
        key: collate_values(key, [items[row]['inputs'][key] for row in rows])
        for key, rows in providers.items()
    }
    return {
        'inputs': inputs,
        'data_samples': [item.get('data_samples') for item in items],
        BAD_ROWS: sum(int(item.get(BAD_ROWS, 0)) for item in items),
        SEEN_ROWS: sum(int(item.get(SEEN_ROWS, 0)) for item in items),
    }


def check_rows_line_up(providers: dict[str, list[int]]) -> None:
    """Raise ComponentArgumentError when two keys come from overlapping but different sets
    of items."""
    sets = {key: set(rows) for key, rows in providers.items()}
    keys = list(sets)
    for index, key in enumerate(keys):
        for other in keys[index + 1 :]:
            if sets[key] != sets[other] and sets[key] & sets[other]:
                raise ComponentArgumentError(
                    f'inputs {key!r} and {other!r} come from different but overlapping items '
                    'of the batch, so their rows cannot be lined up; give every item of a '
                    'source the same input keys'
                )


def collate_values(key: str, values: list):
    """One input key's values over the items that have it -> one batch value."""
    first = values[0]
    if isinstance(first, torch.Tensor):
        shapes = {tuple(value.shape) for value in values}
        if len(shapes) > 1:
            raise ComponentArgumentError(
                f'input {key!r} has several shapes in one batch ({sorted(shapes)}); '
                'resize or crop the images of every source to one size'
            )
        return torch.stack(values)
    if isinstance(first, TokenizedText):
        return pad_texts(values)
    if isinstance(first, (list, tuple)) and all(
        isinstance(text, TokenizedText) for value in values for text in value
    ):
        flat = [text for value in values for text in value]
        owner = [row for row, value in enumerate(values) for _ in value]
        return pad_texts(flat, owner)
    return list(values)
