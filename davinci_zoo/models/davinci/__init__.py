"""The DaVinci prefix-LM encoder-decoder: writes (image -> text) and paints (text -> codes)."""

from . import image_embedder, model, objectives  # noqa: F401  (registers the components)
