"""Image-caption pairs streamed from webdataset tar shards (read with :mod:`tarfile`)."""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator

from ..registry import DATASETS
from .bad_rows import BadRow
from .image_text import first_present
from .streaming import RowStream

IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png', 'webp')


def split_member_name(name: str) -> tuple[str, str]:
    """``'dir/000001.seg.png'`` -> (``'dir/000001'``, ``'seg.png'``): webdataset's key rule."""
    folder, base = os.path.split(name)
    key, _, extension = base.partition('.')
    return os.path.join(folder, key), extension.lower()


def read_tar_samples(path: str) -> Iterator[tuple[str, dict[str, bytes] | BadRow]]:
    """``(key, {extension: bytes})`` for consecutive members sharing a key.

    A shard that breaks off (truncated, corrupt) ends with one ``(key, BadRow)``.
    """
    key, sample = None, {}
    try:
        with tarfile.open(path, mode='r|*') as tar:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, extension = split_member_name(member.name)
                if member_key != key and sample:
                    yield key, sample
                    sample = {}
                key = member_key
                sample[extension] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        yield key or 'start', BadRow(f'shard unreadable from here on ({error})')
        return
    if sample:
        yield key, sample


@DATASETS.register_module()
class WebDatasetShards(RowStream):
    """Image-caption samples from webdataset tar shards on this machine.

    A sample is the members sharing a key: an image ``<key>.jpg|jpeg|png|webp`` and a
    caption ``<key>.txt`` (the caption) or ``<key>.json`` (an object; the caption under
    ``caption_key``, a string or a list).

    Args:
        shards: ``.tar`` files, directories of them, globs or brace patterns
            (``data/cc3m/shards/cc3m-{000000..000331}.tar``); see :class:`.RowStream` for the
            pipeline, the split over ranks and workers, passes and the bad-row limit.
        caption_key: key of the caption in ``.json`` members.
        **stream_args: pipeline, seed, shuffle, infinite, rank, world_size,
            max_bad_fraction, min_rows, length.

    The pipeline starts from ``dict(img_bytes=image member, caption=raw caption,
    key='shard.tar/key')``: begin it with :class:`~.transforms.LoadImageFromBytes`.
    """

    suffixes = ('.tar',)

    def __init__(self, shards, caption_key: str = 'caption', **stream_args) -> None:
        super().__init__(shards, **stream_args)
        self.caption_key = caption_key

    def read_rows(self, path: str) -> Iterator[tuple[str, object]]:
        for key, sample in read_tar_samples(path):
            yield f'{path}/{key}', sample

    def row_fields(self, sample: dict[str, bytes]) -> dict:
        image = next((sample[ext] for ext in IMAGE_EXTENSIONS if ext in sample), None)
        if image is None:
            raise BadRow(f'no image member ({", ".join(IMAGE_EXTENSIONS)})')
        return dict(img_bytes=image, caption=self.caption(sample))

    def caption(self, sample: dict[str, bytes]):
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
