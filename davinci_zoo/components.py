"""The core's plugin module: importing it registers every component of davinci-zoo.

It is the ``core`` entry point of the ``davinci_zoo.plugins`` group and is always loaded
first (see :mod:`davinci_zoo.plugins`).
"""

from .datasets import (  # noqa: F401
    bad_rows_hook,
    caption_references,
    image_folder,
    image_text,
    mixing,
    shards,
    text_corpus,
    transforms,
)
from .engine import hooks, optim, sample_hooks  # noqa: F401
from .evaluation import reconstruction_metric, write_paint_metric  # noqa: F401
from .models import data_preprocessor, davinci, heads, losses, tokenizer_trainer  # noqa: F401
from .models.davinci import reranking  # noqa: F401  (SCORERS: CaptionLikelihoodScorer)
