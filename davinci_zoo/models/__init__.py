"""Model parts: image tokenizers, backbones, the DaVinci encoder-decoder, objectives, heads."""
