"""The ``vqgan`` entry point of ``davinci_zoo.plugins``: importing it registers ``VQGAN``."""

from . import vqgan  # noqa: F401  (registers VQGAN in IMAGE_TOKENIZERS)
