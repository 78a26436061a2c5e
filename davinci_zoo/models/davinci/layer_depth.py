"""The "layer" of each DaVinci parameter, for layer-wise learning-rate decay.

A parameter of layer ``i`` of ``n`` trains at ``lr * rate ** (n - 1 - i)`` (mmpretrain's and
BEiT's rule): the head at the full rate, each layer below it at ``rate`` times the one above.
DaVinci's layers, in the order an image feature flows through them:

==========================  =====================================================================
layer                       parameters
==========================  =====================================================================
0                           the inputs' embeddings: ``image_embedder.*`` (ResNet stages, image
                            ``[CLS]``, positions), ``encoder.embeddings.*`` (the word table,
                            shared with the decoder), ``decoder.embeddings.*``,
                            ``decoder.image_grid_embeddings.*``
1 .. E                      ``encoder.layers.{0 .. E-1}.*``
E + 1 .. E + D              ``decoder.layers.{0 .. D-1}.*`` and the painting bias table of that
                            decoder layer (``decoder.painting_bias.tables.{j}``)
E + D                       ``decoder.head.*`` (the word prediction head, on the last layer)
E + D + 1                   the task head (``head.*``) and any other parameter
==========================  =====================================================================

so ``n = E + D + 2``. The decoder comes after the whole encoder because it reads the encoder's
last states.
"""

from __future__ import annotations

import re

_LAYER = re.compile(r'^(encoder\.layers|decoder\.layers|decoder\.painting_bias\.tables)\.(\d+)\.')
_EMBEDDINGS = (
    'image_embedder.',
    'encoder.embeddings.',
    'decoder.embeddings.',
    'decoder.image_grid_embeddings.',
)


def layer_depth(param_name: str, encoder_layers: int, decoder_layers: int) -> tuple[int, int]:
    """(layer id, number of layers) of a DaVinci parameter name (``named_parameters``' form,
    e.g. ``'encoder.layers.2.attention.self.query.weight'``)."""
    count = encoder_layers + decoder_layers + 2
    if param_name.startswith(_EMBEDDINGS):
        return 0, count
    found = _LAYER.match(param_name)
    if found:
        index = int(found.group(2))
        in_encoder = found.group(1) == 'encoder.layers'
        if index >= (encoder_layers if in_encoder else decoder_layers):
            raise ValueError(f'{param_name}: the model has no such layer')
        return (1 + index if in_encoder else 1 + encoder_layers + index), count
    if param_name.startswith('decoder.head.'):
        return encoder_layers + decoder_layers, count
    return count - 1, count


__all__ = ['layer_depth']
