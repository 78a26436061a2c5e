"""davinci-zoo-dvae: OpenAI's DALL-E discrete VAE as a davinci-zoo image tokenizer.

Installing the distribution adds ``DVAE`` to ``IMAGE_TOKENIZERS`` through the entry point
``dvae`` of the ``davinci_zoo.plugins`` group; configs then build it with ``type='DVAE'``.
"""

__version__ = '0.1.0'
