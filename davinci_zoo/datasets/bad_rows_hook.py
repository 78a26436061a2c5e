"""Bad-row totals over workers and ranks in the training log, and a stop when they are too many."""

from __future__ import annotations

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

from ..registry import HOOKS
from .bad_rows import BAD_ROWS, SEEN_ROWS, BadDataError


def counts_in_batch(batch) -> torch.Tensor:
    """``[bad rows, seen rows]`` (int64) a batch reports: its ``bad_rows``/``seen_rows`` summed
    (ints, or per-item tensors/lists as default_collate and pseudo_collate leave them)."""
    if not isinstance(batch, dict):
        return torch.zeros(2, dtype=torch.long)
    return torch.stack(
        [
            torch.as_tensor(batch.get(key, 0), dtype=torch.long).sum()
            for key in (BAD_ROWS, SEEN_ROWS)
        ]
    )


@HOOKS.register_module()
class BadRowsHook(Hook):
    """Adds up the bad rows the training batches report and stops a run that has too many.

    Every item carries the rows its dataset worker skipped before it (see
    :mod:`davinci_zoo.datasets.bad_rows`), so the batch sums over a run are the totals over
    all workers of a rank. Every ``interval`` iterations the rank totals are all-reduced
    over ranks and the run totals go to the message hub as ``train/bad_rows`` and
    ``train/seen_rows`` (shown by LoggerHook). Once ``min_rows`` rows were seen, a share of
    bad rows above ``max_bad_fraction`` raises BadDataError on every rank at the same
    iteration. The all-reduced totals are kept in checkpoints.

    Args:
        max_bad_fraction: largest tolerated share of bad rows over the run.
        min_rows: rows (all ranks together) to see before judging.
        interval: iterations between all-reduces.
    """

    priority = 'NORMAL'  # before LoggerHook, so a logged iteration shows fresh totals

    def __init__(
        self, max_bad_fraction: float = 0.01, min_rows: int = 1000, interval: int = 10
    ) -> None:
        self.max_bad_fraction, self.min_rows, self.interval = max_bad_fraction, min_rows, interval
        self.pending = torch.zeros(2, dtype=torch.long)
        self.totals = torch.zeros(2, dtype=torch.long)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.pending += counts_in_batch(data_batch)
        if self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner):
            self.sync(runner)

    def sync(self, runner) -> None:
        """All-reduce the counts since the last sync, log the totals, check the share."""
        counts = self.pending.clone()
        all_reduce(counts)
        self.pending.zero_()
        self.totals += counts
        bad, seen = (int(value) for value in self.totals)
        runner.message_hub.update_scalar(f'train/{BAD_ROWS}', bad)
        runner.message_hub.update_scalar(f'train/{SEEN_ROWS}', seen)
        if seen >= self.min_rows and bad > self.max_bad_fraction * seen:
            raise BadDataError(
                f'{bad} of {seen} training rows so far (all ranks and workers) were bad, more '
                f'than max_bad_fraction={self.max_bad_fraction} of BadRowsHook; the dataset '
                'warnings name the files. See docs/data.md'
            )

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['bad_rows'] = dict(bad=int(self.totals[0]), seen=int(self.totals[1]))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('bad_rows')
        if saved:
            self.totals = torch.tensor([saved['bad'], saved['seen']], dtype=torch.long)
