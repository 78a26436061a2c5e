"""davinci-zoo-vqgan: the taming-transformers VQGAN as a davinci-zoo image tokenizer.

Installing the distribution registers ``VQGAN`` in ``davinci_zoo.registry.IMAGE_TOKENIZERS``
through the ``davinci_zoo.plugins`` entry point ``vqgan`` (module :mod:`.plugin`).
"""

__version__ = '0.1.0'
