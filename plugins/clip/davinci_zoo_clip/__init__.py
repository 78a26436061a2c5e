"""davinci-zoo-clip: a CLIP image-text scorer (OpenAI weights layout) for davinci-zoo.

Installing the distribution registers ``CLIPScorer`` in ``davinci_zoo.registry.SCORERS``
through the ``davinci_zoo.plugins`` entry point ``clip`` (module :mod:`.plugin`).
"""

__version__ = '0.1.0'
