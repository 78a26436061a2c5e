"""The ``dvae`` entry point of the ``davinci_zoo.plugins`` group: registers ``DVAE``."""

from .dvae import DVAE  # noqa: F401  (importing registers it in IMAGE_TOKENIZERS)
