"""The ``clip`` entry point of ``davinci_zoo.plugins``: importing it registers ``CLIPScorer``."""

from . import scorer  # noqa: F401  (registers CLIPScorer in SCORERS)
