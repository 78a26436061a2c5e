"""Metrics, and :func:`caption_scores` (light to import: pycocoevalcap loads when it runs)."""

from .captioning import caption_scores

__all__ = ['caption_scores']
