"""Image-caption pairs streamed from webdataset tar shards, read with the webdataset library."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

from ..registry import DATASETS
from .bad_rows import BadRow
from .image_text import first_present
from .streaming import RowStream

IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png', 'webp')


class ShardReading:
    """What one webdataset pipeline needs from us: the shards to read and its errors as rows.

    ``split`` is the pipeline's node splitter: it passes shards ``first, first + step, ...``
    of the list (every shard for ``(0, 1)``) and remembers the one being read, which the
    pipeline opens and reads to its end before asking for the next. ``handler`` gets each
    error webdataset meets (a truncated or corrupt tar, a member name twice in one sample, a
    ``pipe:`` command or URL failing) and returns True, so reading goes on; :meth:`rows` then
    yields it as one BadRow of that shard. A truncated member is reported twice (its data,
    then the next header) with no sample in between: that counts once.
    """

    def __init__(self, first: int, step: int) -> None:
        self.first, self.step = first, step
        self.current = '?'  # the shard being read
        self.errors: list[tuple[str, str]] = []  # (shard, why), not yet yielded
        self.last_error: str | None = None  # shard of the latest error, until a sample comes

    def split(self, sources: Iterator[dict]) -> Iterator[dict]:
        for index, source in enumerate(sources):
            if index % self.step == self.first:
                self.current = source['url']
                yield source

    def handler(self, error: Exception) -> bool:
        if self.last_error != self.current:
            why = str(error.args[0]).split(' @ ')[0] if error.args else ''  # less its stream
            self.errors.append((self.current, f'{type(error).__name__}: {why}'))
            self.last_error = self.current
        return True

    def rows(self, samples: Iterator[dict]) -> Iterator[tuple[str, str, object]]:
        """``(shard, row name, sample)``, the sample with ``__offset__`` (its number in the
        shard, from 0), and ``(shard, row name, BadRow)`` for each error, in reading order."""
        offsets: Counter[str] = Counter()
        for sample in samples:
            yield from self.error_rows(offsets)
            self.last_error = None
            shard = sample['__url__']
            sample['__offset__'] = offsets[shard]
            offsets[shard] += 1
            yield shard, f'{shard}/{sample["__key__"]}', sample
        yield from self.error_rows(offsets)

    def error_rows(self, offsets: Counter) -> Iterator[tuple[str, str, BadRow]]:
        while self.errors:
            shard, why = self.errors.pop(0)
            yield shard, f'{shard} after {offsets[shard]} samples', BadRow(f'webdataset: {why}')


@DATASETS.register_module()
class WebDatasetShards(RowStream):
    """Image-caption samples from webdataset tar shards, read with the webdataset library.

    A sample is the members sharing a key: an image ``<key>.jpg|jpeg|png|webp`` and a
    caption ``<key>.txt`` (the caption) or ``<key>.json`` (an object; the caption under
    ``caption_key``, a string or a list).

    Args:
        shards: ``.tar`` files, directories of them, globs or brace patterns
            (``data/cc3m/shards/cc3m-{000000..000331}.tar``), URLs or ``pipe:`` commands
            (``pipe:aws s3 cp s3://bucket/cc3m-{000000..000331}.tar -``); see
            :class:`.RowStream` for the pipeline, the split over ranks and workers, passes and
            the bad-row limit.
        caption_key: key of the caption in ``.json`` members.
        **stream_args: pipeline, seed, shuffle, infinite, rank, world_size,
            max_bad_fraction, min_rows, length.

    The pipeline starts from ``dict(img_bytes=image member, caption=raw caption,
    key='shard/key', shard=shard, offset=number of the sample in its shard)``: begin it with
    :class:`~.transforms.LoadImageFromBytes`. Items also carry ``shard`` and ``offset``.
    """

    suffixes = ('.tar',)
    remote_files = True

    def __init__(self, shards, caption_key: str = 'caption', **stream_args) -> None:
        super().__init__(shards, **stream_args)
        self.caption_key = caption_key

    def read_files(self, files: list[str], first: int, step: int):
        """``(shard, row name, sample)`` of shards ``files[first::step]`` from one webdataset
        pipeline, and ``(shard, row name, BadRow)`` for each error it reports."""
        import webdataset

        reading = ShardReading(first, step)
        samples = webdataset.WebDataset(
            files,
            handler=reading.handler,  # its default re-raises: count a BadRow instead
            nodesplitter=reading.split,  # ours covers ranks and workers; its default raises
            workersplitter=None,  # under DDP and splits workers a different way
            shardshuffle=False,  # the pass order is already shuffled (seed + epoch)
            empty_check=False,  # a consumer without rows is RowStream's to judge
            seed=0,  # unused without a shuffle; given, so it draws none from `random`
        )
        yield from reading.rows(iter(samples))

    def decode(self, raw: dict, row: str) -> dict:
        item = super().decode(raw, row)
        item.update(shard=raw['__url__'], offset=raw['__offset__'])
        return item

    def row_fields(self, sample: dict) -> dict:
        image = next((sample[ext] for ext in IMAGE_EXTENSIONS if ext in sample), None)
        if image is None:
            raise BadRow(f'no image member ({", ".join(IMAGE_EXTENSIONS)})')
        return dict(
            img_bytes=image,
            caption=self.caption(sample),
            shard=sample['__url__'],
            offset=sample['__offset__'],
        )

    def caption(self, sample: dict):
        """The raw caption of a sample: the ``.txt`` member's text or the ``.json``'s field."""
        if 'txt' in sample:
            return sample['txt'].decode('utf-8', errors='replace')
        if 'json' in sample:
            try:
                row = json.loads(sample['json'])
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise BadRow(f'json member is not JSON ({error})') from None
            if not isinstance(row, dict):
                raise BadRow('json member is not an object')
            return first_present(row, [self.caption_key], 'caption')
        raise BadRow('no caption member (.txt or .json)')
