"""The DaVinci prefix-LM encoder-decoder: writes (image -> text) and paints (text -> codes)."""

from . import (  # noqa: F401  (registers the components)
    contrastive,  # ImageTextContrastive
    image_embedder,
    masked_image,  # MaskedImageModeling
    masked_lm,  # MaskedLM
    matching,  # ImageTextMatching
    model,
    objectives,  # PrefixLM, TextPrefixLM, PrefixImage, Captioning
)
