"""The image feature of the linear probes and image fine-tuning (docs/original.md 4.6, 4.7).

The encoder reads the image with an empty text (``[CLS]``); the decoder reads the prompt
``[CLS] a picture of [SEP]`` against it. The feature of an image is the concatenation of

- the encoder state of the image's ``[CLS]`` token (position 0),
- the mean of the encoder states of the image patches (positions 1 .. N; the text's
  ``[CLS]`` that follows them is left out),
- the decoder state at the prompt's ``[SEP]``,

so ``3 * hidden_size`` numbers per image (2304 for the base model).
"""

from __future__ import annotations

import torch

#: The decoder prompt of the original's feature.
PROMPT = 'a picture of '
#: The three parts, in the order they are concatenated.
FEATURE_PARTS = ('image_cls', 'patch_mean', 'prompt_sep')


def image_features(model, images: torch.Tensor, prompt: str = PROMPT) -> torch.Tensor:
    """Model-input images [B, 3, H, W] (normalised, as the data preprocessor gives them) ->
    features [B, 3 * D]: image-``[CLS]`` state, mean patch state, decoder state at ``[SEP]``.

    Runs with the model's current mode and gradients (frozen probes call it under
    ``torch.no_grad()``; fine-tuning trains through it).
    """
    batch = len(images)
    empty_ids, empty_mask = model.tokenize([''] * batch)
    memory, memory_mask = model.encode(images, empty_ids, empty_mask)
    patches = memory.shape[1] - 1 - empty_ids.shape[1]  # [image CLS, N patches, text [CLS]]
    image_cls = memory[:, 0]
    patch_mean = memory[:, 1 : 1 + patches].mean(dim=1)
    ids, mask = model.tokenize([prompt] * batch)
    prompt_sep = sep_states(model, ids, mask, memory, memory_mask)
    return torch.cat([image_cls, patch_mean, prompt_sep], dim=1)


def sep_states(model, ids, mask, memory, memory_mask) -> torch.Tensor:
    """The decoder's state [B, D] at each text's ``[SEP]`` (its last real token): the decoder
    reads ``ids`` [B, T] (``mask`` [B, T]) against the encoder's ``memory`` [B, S, D]."""
    positions = torch.arange(ids.shape[1], device=ids.device)
    hidden = model.decoder_hidden(ids, positions, memory, memory_mask, padding_mask=mask)
    return hidden[torch.arange(len(ids), device=ids.device), mask.sum(1) - 1]
