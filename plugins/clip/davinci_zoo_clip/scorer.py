"""``CLIPScorer``: how well images fit texts, by an open_clip CLIP (for re-ranking paintings).

Config (the sizes of OpenAI's ViT-B/32 are the defaults)::

    scorer = dict(
        type='CLIPScorer',
        weights='checkpoints/clip/vit_b32.safetensors',   # or a plain state-dict .pt
    )
    scores = SCORERS.build(scorer)(model, images, texts)   # [B]

open_clip (with its timm import) is loaded when a scorer is built, not when the plugin is.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from davinci_zoo.checkpoint import check_state_dict_matches, load_checkpoint_file, state_dict_of
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import SCORERS

#: Sizes OpenAI's files store beside the weights; checked against the config, then dropped.
OPENAI_META_KEYS = ('input_resolution', 'context_length', 'vocab_size')


@SCORERS.register_module()
class CLIPScorer(nn.Module):
    """``scorer(model, images, texts)``: CLIP's logit for each (image, text) pair.

    The score of pair i is ``exp(logit_scale) * cos(image_i, text_i)``, i.e. the diagonal of
    CLIP's ``logits_per_image``. The model, tokenizer and preprocessing are open_clip's: a
    ``CLIP``, its ``SimpleTokenizer`` and the resize (shorter side, bicubic, antialiased),
    centre crop and normalisation of its evaluation transform, run on the image tensors
    [B, 3, H, W] in [0, 1]. ``model`` is the DaVinci that asks (the scorer interface passes
    it; CLIP does not need it).

    Args:
        weights: local ``.safetensors`` or plain state-dict ``.pt`` in OpenAI's layout (see
            plugins/clip/README.md); read with davinci-zoo's safe loader, never pickle code.
            Every key must fit the model built from the sizes below.
        merges: local BPE merges file (``bpe_simple_vocab_16e6.txt.gz`` format); None: the
            copy of OpenAI's that open_clip ships. Its first 48894 merges are used.
        embed_dim ... transformer_layers: the model's sizes (``vision_heads`` default:
            ``vision_width / 64``, as OpenAI's).
        quick_gelu: QuickGELU activations, as OpenAI trained; False for GELU (most models
            trained by open_clip, e.g. LAION's: open_clip names those without ``-quickgelu``).
    """

    def __init__(
        self,
        weights: str,
        merges: str | None = None,
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
        quick_gelu: bool = True,
    ) -> None:
        super().__init__()
        from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

        self.tokenizer = build_tokenizer(merges, context_length)
        if self.tokenizer.vocab_size != vocab_size:
            raise ComponentArgumentError(
                f'CLIP merges file {merges or "(open_clip)"} gives '
                f'{self.tokenizer.vocab_size} token ids, but vocab_size is {vocab_size}'
            )
        vision_heads = vision_heads or max(1, vision_width // 64)
        for what, width, heads in (
            ('vision', vision_width, vision_heads),
            ('transformer', transformer_width, transformer_heads),
        ):
            if width % heads:
                raise ComponentArgumentError(
                    f'CLIP {what}_width {width} is not divisible by {heads} heads'
                )
        if image_resolution % vision_patch_size:
            raise ComponentArgumentError(
                f'CLIP image_resolution {image_resolution} is not a multiple of '
                f'vision_patch_size {vision_patch_size}'
            )
        vision = CLIPVisionCfg(
            layers=vision_layers,
            width=vision_width,
            head_width=vision_width // vision_heads,
            patch_size=vision_patch_size,
            image_size=image_resolution,
        )
        text = CLIPTextCfg(
            context_length=context_length,
            vocab_size=vocab_size,
            width=transformer_width,
            heads=transformer_heads,
            layers=transformer_layers,
        )
        self.clip = CLIP(embed_dim, vision, text, quick_gelu=quick_gelu)
        self.loaded_keys = load_openai_weights(self.clip, weights)
        self.resize, self.crop, self.normalize = evaluation_transform(image_resolution)
        self.eval().requires_grad_(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> normalised [B, 3, R, R] (resize, centre crop)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'images must be [B, 3, H, W] in [0, 1], got {tuple(images.shape)}')
        images = self.resize(images.float()).clamp(0, 1)
        return self.normalize(self.crop(images))

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in [0, 1] -> unit-length features [B, E]."""
        device = self.clip.logit_scale.device
        return self.clip.encode_image(self.preprocess(images.to(device)), normalize=True)

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """Texts -> unit-length features [B, E]. Each distinct text is encoded once: open_clip
        runs the text tower over all ``context_length`` positions (ViT-B/32, 1 CPU thread:
        0.6 s for 8 texts), and re-ranking repeats one caption."""
        distinct = {text: index for index, text in enumerate(dict.fromkeys(texts))}
        ids = self.tokenizer(list(distinct)).to(self.clip.logit_scale.device)
        features = self.clip.encode_text(ids, normalize=True)
        return features[[distinct[text] for text in texts]]

    @torch.no_grad()
    def forward(self, model, images: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """-> scores [B] (on the images' device) of images [B, 3, H, W] in [0, 1] against
        texts (B strings)."""
        if len(texts) != len(images):
            raise ValueError(f'CLIPScorer got {len(images)} images but {len(texts)} texts')
        image, text = self.image_features(images), self.text_features(texts)
        return (self.clip.logit_scale.exp() * (image * text).sum(-1)).to(images.device)


def build_tokenizer(merges: str | os.PathLike | None, context_length: int):
    """open_clip's BPE tokenizer over ``merges`` (None: the file open_clip ships)."""
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    if merges is not None and not os.path.isfile(merges):
        raise FileNotFoundError(
            f'CLIP BPE merges file {merges} does not exist (OpenAI: bpe_simple_vocab_16e6.txt.gz)'
        )
    return SimpleTokenizer(os.fspath(merges or default_bpe()), context_length=context_length)


def evaluation_transform(image_resolution: int) -> tuple:
    """(resize, centre crop, normalise) of open_clip's evaluation transform, for tensors."""
    from open_clip.transform import image_transform
    from torchvision import transforms

    steps = image_transform(image_resolution, is_train=False).transforms
    kinds = (transforms.Resize, transforms.CenterCrop, transforms.Normalize)
    return tuple(next(step for step in steps if isinstance(step, kind)) for kind in kinds)


def load_openai_weights(clip: nn.Module, path: str | os.PathLike) -> list[str]:
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


def check_stored_sizes(clip: nn.Module, state_dict: dict, path: str) -> None:
    """Pop OpenAI's size entries from ``state_dict``; raise if they differ from ``clip``'s."""
    expected = dict(
        input_resolution=clip.visual.image_size[0],
        context_length=clip.context_length,
        vocab_size=clip.vocab_size,
    )
    for key in OPENAI_META_KEYS:
        if key not in state_dict:
            continue
        stored = int(state_dict.pop(key))
        if stored != expected[key]:
            raise ValueError(
                f'CLIP weights {path} are for {key}={stored}, the config has {expected[key]}'
            )
