"""Task heads (HEADS): a task is a head on the shared DaVinci parts (docs/heads.md)."""

from .base import Head, samples_for
from .sequence_classification import SequenceClassificationHead
from .write_paint import WritePaintHead

__all__ = ['Head', 'SequenceClassificationHead', 'WritePaintHead', 'samples_for']
