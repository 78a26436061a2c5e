"""Bad input rows: skipped, counted per dataset copy, reported with the items, and capped.

Every dataset copy (one per DataLoader worker per rank) keeps a :class:`BadRowTally`. Each
item it returns carries two ints: ``bad_rows`` (rows skipped since this copy's previous item)
and ``seen_rows`` (those plus the item's own row). Summing both fields over every item a run
receives gives the totals over all workers; :class:`~.bad_rows_hook.BadRowsHook` adds them
up per rank and all-reduces them over ranks. See docs/data.md.
"""

from __future__ import annotations

import logging
from collections import Counter

BAD_ROWS = 'bad_rows'
SEEN_ROWS = 'seen_rows'
logger = logging.getLogger(__name__)


class BadRow(ValueError):
    """A row that cannot become an item; the message says why."""


class BadDataError(RuntimeError):
    """The share of bad rows passed the configured limit."""


class DataFileError(ValueError):
    """A data file or folder cannot be used as a whole: it is not in the layout the dataset
    reads (not valid JSON, a missing column, a truncated binary file), or it yields no usable
    row. The message names the file; the tools print it as one line."""


class BadRowTally:
    """Counts what one dataset copy read and stops it when too much of it was bad.

    Args:
        source: the dataset's name, for messages.
        max_bad_fraction: largest tolerated share of bad rows (None: never stop).
        min_rows: rows to read before judging the share.
        log_first: bad rows logged one by one; later ones are only counted.
    """

    def __init__(
        self,
        source: str,
        max_bad_fraction: float | None = 0.01,
        min_rows: int = 1000,
        log_first: int = 10,
    ) -> None:
        self.source = source
        self.max_bad_fraction = max_bad_fraction
        self.min_rows = min_rows
        self.log_first = log_first
        self.bad_per_file: Counter[str] = Counter()
        self.seen = 0
        self.pending = 0
        self.last_reason = ''

    @property
    def bad(self) -> int:
        return sum(self.bad_per_file.values())

    def skip(self, file: str, row: str, reason: str) -> None:
        """Count a bad ``row`` of ``file``; raise BadDataError when the share is too high."""
        self.bad_per_file[file] += 1
        self.seen += 1
        self.pending += 1
        self.last_reason = f'{row}: {reason}'
        if self.bad <= self.log_first:
            logger.warning('%s: skipping %s (%s)', self.source, row, reason)
            if self.bad == self.log_first:
                logger.warning('%s: further bad rows are counted, not logged', self.source)
        self.check()

    def accept(self) -> dict[str, int]:
        """Count a good row; return the fields to attach to its item."""
        self.seen += 1
        counts = {BAD_ROWS: self.pending, SEEN_ROWS: self.pending + 1}
        self.pending = 0
        self.check()
        return counts

    def check(self) -> None:
        if self.max_bad_fraction is None or self.seen < self.min_rows:
            return
        if self.bad > self.max_bad_fraction * self.seen:
            worst, count = self.bad_per_file.most_common(1)[0]
            raise BadDataError(
                f'{self.source}: {self.bad} of {self.seen} rows read by this data worker are '
                f'bad, more than max_bad_fraction={self.max_bad_fraction}; most of them '
                f'({count}) in {worst}, the last one {self.last_reason}. Repair or leave out '
                'that file, or raise max_bad_fraction (see docs/data.md)'
            )
