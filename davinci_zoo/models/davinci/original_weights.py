"""Map a state dict of the original DaVinci onto this model (docs/original.md section 5).

Every original key is either renamed onto one of ours, or dropped for a stated reason
(derivable buffers, tied duplicates, tables the original never used, the VQGAN's training
losses). :func:`convert_original_state_dict` returns the converted dict and the dropped keys
with their reasons, so a caller can show that nothing was silently lost.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

# (pattern on the original key, replacement) -- first match wins.
RENAMES = [
    (r'^visual_encoder\.', 'image_embedder.'),
    (r'^vision_proj\.', 'image_embedder.proj.'),
    (
        r'^encoder\.encoder\.layer\.(\d+)\.attention\.self\.relative_bias_table$',
        r'encoder.layers.\1.attention.self.relative.relative_bias_table',
    ),
    (r'^encoder\.encoder\.layer\.', 'encoder.layers.'),
    (r'^encoder\.embeddings\.', 'encoder.embeddings.'),
    (r'^text_decoder\.bert\.embeddings\.', 'decoder.embeddings.'),
    (r'^text_decoder\.bert\.encoder\.layer\.', 'decoder.layers.'),
    (r'^text_decoder\.cls\.predictions\.transform\.', 'decoder.head.transform.'),
    (r'^text_decoder\.cls\.predictions\.bias$', 'decoder.head.bias'),
    (
        r'^d_vae\.model\.(encoder|decoder|quant_conv|post_quant_conv|quantize)\.',
        r'image_tokenizer.\1.',
    ),
]

DROPS = [
    (r'\.relative_index$', 'derivable index buffer'),
    (r'\.position_ids$', 'derivable position buffer'),
    (
        r'^text_decoder\.bert\.embeddings\.word_embeddings\.weight$',
        'tied to encoder.embeddings.word_embeddings.weight',
    ),
    (
        r'^text_decoder\.cls\.predictions\.decoder\.weight$',
        'tied to encoder.embeddings.word_embeddings.weight',
    ),
    (
        r'^text_decoder\.cls\.predictions\.decoder\.bias$',
        'same tensor as text_decoder.cls.predictions.bias',
    ),
    (
        r'^text_decoder\.bert\.encoder\.layer\.\d+\.(attention|crossattention)\.self\.'
        r'relative_bias_table$',
        'never used by the original decoder',
    ),
    (r'^d_vae\.model\.loss\.', "the VQGAN's training losses (LPIPS, discriminator)"),
]


def convert_original_state_dict(
    original: dict[str, torch.Tensor], pos_embed_grid: tuple[int, int] | None = None
):
    """-> (our state dict, {dropped original key: reason}).

    Raises:
        KeyError: for an original key that is neither renamed nor dropped on purpose.
    """
    converted, dropped = {}, {}
    for key, tensor in original.items():
        key = key.removeprefix('module.')
        reason = next((why for pattern, why in DROPS if re.search(pattern, key)), None)
        if reason is not None:
            dropped[key] = reason
            continue
        for pattern, replacement in RENAMES:
            if re.search(pattern, key):
                converted[re.sub(pattern, replacement, key)] = tensor
                break
        else:
            raise KeyError(f"original key {key!r} has no place in davinci-zoo's DaVinci")
    if pos_embed_grid is not None and 'image_embedder.pos_embed' in converted:
        converted['image_embedder.pos_embed'] = resize_pos_embed(
            converted['image_embedder.pos_embed'], pos_embed_grid
        )
    return converted, dropped


def resize_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """[1, 1 + n*n, C] (cls first, square grid) -> [1, 1 + rows*cols, C], bicubic.

    As the original does when loading at another resolution (docs/original.md section 1.2).
    """
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    side = int(round(patches.shape[1] ** 0.5))
    if (side, side) == tuple(grid):
        return pos_embed
    image = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    resized = F.interpolate(image, size=tuple(grid), mode='bicubic', align_corners=False)
    resized = resized.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
    return torch.cat([cls, resized.to(pos_embed.dtype)], dim=1)
