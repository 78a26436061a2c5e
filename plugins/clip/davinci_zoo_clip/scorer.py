"""``CLIPScorer``: how well images fit texts, by CLIP (for re-ranking paintings).

Config (the sizes of OpenAI's ViT-B/32 are the defaults)::

    scorer = dict(
        type='CLIPScorer',
        weights='checkpoints/clip/vit_b32.safetensors',   # or a plain state-dict .pt
        merges='checkpoints/clip/bpe_simple_vocab_16e6.txt.gz',
    )
    scores = SCORERS.build(scorer)(model, images, texts)   # [B]
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from davinci_zoo.checkpoint import check_state_dict_matches, load_checkpoint_file, state_dict_of
from davinci_zoo.registry import SCORERS

from .model import CLIP
from .tokenizer import OPENAI_MERGES, CLIPTokenizer

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: Sizes OpenAI's files store beside the weights; checked against the config, then dropped.
OPENAI_META_KEYS = ('input_resolution', 'context_length', 'vocab_size')


@SCORERS.register_module()
class CLIPScorer(nn.Module):
    """``scorer(model, images, texts)``: CLIP's logit for each (image, text) pair.

    The score of pair i is ``exp(logit_scale) * cos(image_i, text_i)``, i.e. the diagonal of
    CLIP's ``logits_per_image``. Images [B, 3, H, W] in [0, 1] are resized (shorter side to
    ``image_resolution``, bicubic, antialiased), centre-cropped and normalised with CLIP's
    mean/std inside. ``model`` is the DaVinci that asks (the scorer interface passes it;
    CLIP does not need it).

    Args:
        weights: local ``.safetensors`` or plain state-dict ``.pt`` in OpenAI's layout (see
            :mod:`davinci_zoo_clip.model`); read with davinci-zoo's safe loader, never pickle
            code. Every key must fit the model built from the sizes below.
        merges: local BPE merges file (``bpe_simple_vocab_16e6.txt.gz`` format).
        num_merges: merges to use; the ids they give must equal ``vocab_size``.
        embed_dim ... transformer_layers: the sizes of :class:`~davinci_zoo_clip.model.CLIP`.
    """

    def __init__(
        self,
        weights: str,
        merges: str,
        embed_dim: int = 512,
        image_resolution: int = 224,
        vision_layers: int = 12,
        vision_width: int = 768,
        vision_patch_size: int = 32,
        vision_heads: int | None = None,
        context_length: int = 77,
        vocab_size: int = 49408,
        transformer_width: int = 512,
        transformer_heads: int = 8,
        transformer_layers: int = 12,
        num_merges: int | None = OPENAI_MERGES,
    ) -> None:
        super().__init__()
        self.tokenizer = CLIPTokenizer(merges, num_merges, context_length)
        if len(self.tokenizer) != vocab_size:
            raise ValueError(
                f'CLIP merges file {merges} gives {len(self.tokenizer)} token ids '
                f'(num_merges={num_merges}), but vocab_size is {vocab_size}'
            )
        self.clip = CLIP(
            embed_dim,
            image_resolution,
            vision_layers,
            vision_width,
            vision_patch_size,
            vision_heads,
            context_length,
            vocab_size,
            transformer_width,
            transformer_heads,
            transformer_layers,
        )
        self.loaded_keys = load_openai_weights(self.clip, weights)
        self.register_buffer('mean', torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(CLIP_STD).view(1, 3, 1, 1), False)
        self.eval().requires_grad_(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> normalised [B, 3, R, R] (resize, centre crop)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'images must be [B, 3, H, W] in [0, 1], got {tuple(images.shape)}')
        images = resize_shorter_side(images.to(self.mean), self.clip.input_resolution)
        images = centre_crop(images, self.clip.input_resolution)
        return (images - self.mean) / self.std

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in [0, 1] -> unit-length features [B, E]."""
        return F.normalize(self.clip.encode_image(self.preprocess(images)), dim=-1)

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """Texts -> unit-length features [B, E]."""
        ids, ends = self.tokenizer.tokenize(list(texts))
        device = self.mean.device
        return F.normalize(self.clip.encode_text(ids.to(device), ends.to(device)), dim=-1)

    @torch.no_grad()
    def forward(self, model, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """-> scores [B] (on the images' device) of images [B, 3, H, W] in [0, 1] against
        texts (B strings)."""
        if len(texts) != len(images):
            raise ValueError(f'CLIPScorer got {len(images)} images but {len(texts)} texts')
        image, text = self.image_features(images), self.text_features(texts)
        return (self.clip.logit_scale.exp() * (image * text).sum(-1)).to(images.device)


def load_openai_weights(clip: CLIP, path: str | os.PathLike) -> list[str]:
    """Load an OpenAI-layout state dict from ``path`` into ``clip``; -> every key it used.

    Raises FileNotFoundError naming a missing file, CheckpointMismatchError naming missing,
    unexpected or mis-shaped keys, ValueError when stored sizes contradict the config.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'CLIP weights file {path} does not exist')
    state_dict = dict(state_dict_of(load_checkpoint_file(path)))
    used = sorted(state_dict)
    check_stored_sizes(clip, state_dict, path)
    check_state_dict_matches(clip, state_dict, source=f'CLIP weights {path}')
    clip.load_state_dict(state_dict, strict=True)
    return used


def check_stored_sizes(clip: CLIP, state_dict: dict, path: str) -> None:
    """Pop OpenAI's size entries from ``state_dict``; raise if they differ from ``clip``'s."""
    for key in OPENAI_META_KEYS:
        if key not in state_dict:
            continue
        stored, expected = int(state_dict.pop(key)), getattr(clip, key)
        if stored != expected:
            raise ValueError(
                f'CLIP weights {path} are for {key}={stored}, the config has {expected}'
            )


def resize_shorter_side(images: torch.Tensor, size: int) -> torch.Tensor:
    """Scale [B, 3, H, W] so that min(H, W) == size (bicubic, antialiased, kept in [0, 1])."""
    height, width = images.shape[-2:]
    scale = size / min(height, width)
    target = (max(size, round(height * scale)), max(size, round(width * scale)))
    if target == (height, width):
        return images
    resized = F.interpolate(
        images, size=target, mode='bicubic', antialias=True, align_corners=False
    )
    return resized.clamp(0, 1)


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size window of [B, 3, H, W] (H, W >= size)."""
    height, width = images.shape[-2:]
    top, left = int(round((height - size) / 2)), int(round((width - size) / 2))
    return images[..., top : top + size, left : left + size]
