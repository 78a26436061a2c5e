"""Streaming datasets over many files: which files exist, who reads what, one pass after another.

A *consumer* is one DataLoader worker of one rank: consumer ``rank * num_workers + worker``
of ``world_size * num_workers``. Each pass shuffles the file list with ``seed + epoch`` (the
same order everywhere), then

- with at least as many files as consumers, consumer c reads files c, c + n, c + 2n, ...;
- with fewer files, every consumer reads every file and keeps rows c, c + n, ... of the pass.

Either way each row is read by exactly one consumer per pass.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np
from mmengine.dist import get_dist_info
from torch.utils.data import IterableDataset, get_worker_info

from ..models.parts import ComponentArgumentError
from .bad_rows import BadDataError, BadRow, BadRowTally
from .transforms import build_pipeline, run_pipeline

#: len() of an endless stream: mmengine's LoggerHook needs a length, and this one never ends.
ENDLESS = 2**62
_RANGE = re.compile(r'\{(\d+)\.\.(\d+)\}')


def expand_braces(pattern: str) -> list[str]:
    """``'a-{00..02}.tar'`` -> ``['a-00.tar', 'a-01.tar', 'a-02.tar']`` (numeric ranges only)."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    first, last = match.group(1), match.group(2)
    width = len(first) if first.startswith('0') else 0
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [
        name
        for number in range(int(first), int(last) + 1)
        for name in expand_braces(f'{head}{number:0{width}d}{tail}')
    ]


def is_remote(name: str) -> bool:
    """A URL (``scheme://...``) or a ``pipe:`` command rather than a local path."""
    return '://' in name or name.startswith('pipe:')


def resolve_files(
    files: str | list[str], suffixes: tuple[str, ...], what: str, remote: bool = False
) -> list[str]:
    """Files named by paths, directories (their files with ``suffixes``), globs or braces.

    With ``remote``, URLs and ``pipe:`` commands are kept as named (braces expanded); without,
    they are a ValueError. Raises FileNotFoundError naming the first path that does not exist.
    """
    entries = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    found: list[str] = []
    for entry in map(str, entries):
        if is_remote(entry):
            if not remote:
                raise ComponentArgumentError(
                    f'{what}: {entry} is not a local path; copy the files to this '
                    'machine first (see docs/data.md)'
                )
            found.extend(expand_braces(entry))
            continue
        if any(char in entry for char in '*?['):
            found.extend(sorted(glob.glob(entry)))
            continue
        for path in expand_braces(entry):
            if os.path.isdir(path):
                found.extend(
                    sorted(
                        os.path.join(path, name)
                        for name in os.listdir(path)
                        if name.endswith(suffixes) and name != '_SUCCESS'
                    )
                )
            elif os.path.isfile(path):
                found.append(path)
            else:
                raise FileNotFoundError(f'{what}: {path} does not exist; see docs/data.md')
    if not found:
        raise FileNotFoundError(
            f'{what}: no {"/".join(suffixes)} files in {files}; see docs/data.md'
        )
    return found


def open_text(path: str):
    """Open a text file for reading, gunzipping ``*.gz``."""
    if path.endswith('.gz'):
        return gzip.open(path, 'rt', encoding='utf-8', errors='replace')
    return open(path, encoding='utf-8', errors='replace')


def consumer_slot(rank: int, world_size: int) -> tuple[int, int]:
    """(this consumer's number, number of consumers) for the calling DataLoader worker."""
    info = get_worker_info()
    worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * num_workers + worker, world_size * num_workers


class RowStream(IterableDataset):
    """Base class: rows of files, split over consumers, run through a pipeline, bad rows
    skipped.

    Subclasses set ``suffixes`` and implement ``read_rows(path)`` (yield ``(row name, raw)``;
    a raw value that is a :class:`BadRow` reports a file that could not be read further) or
    ``read_files`` (the same for a run of files), and ``row_fields(raw)`` (the row's fields as
    a dict, or raise BadRow). ``remote_files`` lets URLs and ``pipe:`` commands through.

    Args:
        files: files, directories, globs or brace patterns (``shard-{0000..0099}.tar``).
        pipeline: transforms from a row's fields (plus ``key``, its row name) to an item (see
            :mod:`.transforms`); a transform raising BadRow or dropping the sample skips it.
        seed: file order of pass e is shuffled with ``seed + e``.
        shuffle: shuffle the file order each pass.
        infinite: start the next pass when one ends (for IterBasedTrainLoop).
        rank, world_size: this process's place; default: mmengine's dist values.
        max_bad_fraction, min_rows: when a consumer stops with BadDataError.
        length: what ``len()`` says (rows per pass of one rank, an estimate is fine); by
            default :data:`ENDLESS` when infinite, else counted by reading every file once.

    Every item gets ``bad_rows`` and ``seen_rows`` (see :mod:`.bad_rows`).
    """

    suffixes: tuple[str, ...] = ()
    remote_files = False

    def __init__(
        self,
        files,
        pipeline: Sequence = (),
        seed: int = 0,
        shuffle: bool = True,
        infinite: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        max_bad_fraction: float | None = 0.01,
        min_rows: int = 1000,
        length: int | None = None,
    ) -> None:
        self.files = resolve_files(files, self.suffixes, type(self).__name__, self.remote_files)
        self.pipeline = build_pipeline(pipeline)
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ComponentArgumentError(
                f'rank {self.rank} is outside world_size {self.world_size}'
            )
        self.seed, self.shuffle, self.infinite = seed, shuffle, infinite
        self.max_bad_fraction, self.min_rows = max_bad_fraction, min_rows
        self.length = length
        self.epoch = 0

    def __len__(self) -> int:
        """Rows per pass of this rank (mmengine's LoggerHook and epoch loops ask for it)."""
        if self.length is None:
            if self.infinite:
                return ENDLESS
            rows = sum(1 for _ in self.read_files(self.files, 0, 1))
            self.length = -(-rows // self.world_size)
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Pass number of the next iteration (it sets the file order)."""
        self.epoch = epoch

    def read_rows(self, path: str) -> Iterator[tuple[str, object]]:
        raise NotImplementedError

    def row_fields(self, raw) -> dict:
        raise NotImplementedError

    def decode(self, raw, row: str) -> dict:
        """A raw row -> its item (BadRow if it cannot become one)."""
        return run_pipeline(self.pipeline, dict(self.row_fields(raw), key=row))

    def files_in_order(self, epoch: int) -> list[str]:
        if not self.shuffle:
            return list(self.files)
        order = np.random.default_rng(self.seed + epoch).permutation(len(self.files))
        return [self.files[i] for i in order]

    def read_files(self, files: list[str], first: int, step: int):
        """Yield ``(file, row name, raw)`` for every row of ``files[first::step]``, in order."""
        for path in files[first::step]:
            for row, raw in self.read_rows(path):
                yield path, row, raw

    def rows_for_consumer(self, epoch: int, slot: int, num_slots: int):
        """Yield ``(file, row name, raw)`` for the rows consumer ``slot`` reads in one pass."""
        files = self.files_in_order(epoch)
        if len(files) >= num_slots:
            yield from self.read_files(files, slot, num_slots)
            return
        for position, found in enumerate(self.read_files(files, 0, 1)):
            if position % num_slots == slot:
                yield found

    def __iter__(self) -> Iterator[dict]:
        slot, num_slots = consumer_slot(self.rank, self.world_size)
        tally = BadRowTally(type(self).__name__, self.max_bad_fraction, self.min_rows)
        epoch = self.epoch
        while True:
            yielded = False
            for path, row, raw in self.rows_for_consumer(epoch, slot, num_slots):
                try:
                    if isinstance(raw, BadRow):
                        raise raw
                    item = self.decode(raw, row)
                except BadRow as error:
                    tally.skip(path, row, str(error))
                    continue
                item.update(tally.accept())
                yielded = True
                yield item
            if not self.infinite:
                return
            if not yielded:
                raise BadDataError(
                    f'{type(self).__name__}: a whole pass gave data consumer '
                    f'{slot} of {num_slots} no usable row (files: {self.files})'
                )
            epoch += 1
