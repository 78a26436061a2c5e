"""Where probe features come from: a checkpoint's DaVinci, or a baseline.

A source turns a batch of stored images (uint8 [B, 3, H, W], the pipeline's channel order)
into features [B, F]. Its :meth:`FeatureSource.identity` is what the feature cache keys on,
and it builds its network only when features are computed (a warm cache never builds it).

- :class:`DaVinciSource`: :func:`~davinci_zoo.models.davinci.features.image_features`
  ([B, 3 * D]) of a checkpoint, or of a seeded random initialisation of the same config;
- :class:`TokenizerSource`: the image tokenizer alone: the code vectors of an image's codes
  on its code grid, area-averaged to at most ``max_grid`` cells a side ([B, C * h * w]);
- :class:`PixelSource`: the RGB pixels in [0, 1], averaged down to at most ``max_side``
  pixels a side ([B, 3 * s * s]).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os

import torch
from torch.nn import functional as F

from ..checkpoint import (
    CheckpointError,
    check_state_dict_matches,
    load_checkpoint_file,
    state_dict_of,
)
from .config_text import UnsafeConfigText, config_value

_SHA_CACHE: dict[tuple, str] = {}
TOKENIZER_PREFIX = 'image_tokenizer.'


def file_sha256(path: str) -> str:
    """The sha256 of a file (remembered per path, size and modification time)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, 'rb') as stream:
            for block in iter(lambda: stream.read(1 << 20), b''):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def config_sha256(config: dict) -> str:
    """The sha256 of a config dict's canonical JSON text."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def checkpoint_model_config(path: str) -> dict:
    """The ``model`` of the config an mmengine checkpoint was trained with (``meta['cfg']``),
    read without executing the config text; CheckpointError when it has none."""
    checkpoint = load_checkpoint_file(path)
    text = (checkpoint.get('meta') or {}).get('cfg')
    if not isinstance(text, str):
        raise CheckpointError(
            f"checkpoint {path} keeps no config text (meta['cfg']); pass the config it was "
            'trained with as --model-config CONFIG'
        )
    try:
        model = config_value(text, 'model')
    except KeyError:
        raise CheckpointError(
            f'the config kept in checkpoint {path} has no model; pass --model-config CONFIG'
        ) from None
    except UnsafeConfigText as error:
        raise CheckpointError(
            f'the config kept in checkpoint {path} cannot be read safely ({error}); pass '
            '--model-config CONFIG'
        ) from None
    return model


def feature_model_config(model: dict) -> dict:
    """A DaVinci config reduced to the feature path: no objectives, no head, no start
    weights, normal embedding start (so the image tokenizer is neither built nor read)."""
    from ..models.davinci.model import DaVinci
    from ..registry import MODELS

    model = copy.deepcopy(dict(model))
    found = MODELS.find(model.get('type', '')) if isinstance(model.get('type'), str) else None
    if not (isinstance(found, type) and issubclass(found, DaVinci)):
        raise CheckpointError(
            f'the model is a {model.get("type")!r}, not a DaVinci; probes read DaVinci features'
        )
    model.update(objectives=[], head=None, pretrained=None, image_embedding_init='normal')
    return model


def _default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


class FeatureSource:
    """Stored images uint8 [B, 3, H, W] -> features [B, F]; built lazily.

    Attributes:
        label: the row name in the results (a checkpoint path or a baseline name).
        resolution: the side images are resized to before they reach the source.
    """

    label: str
    resolution: int

    def identity(self) -> dict:
        """What the cached features of this source depend on (JSON-able)."""
        raise NotImplementedError

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class DaVinciSource(FeatureSource):
    """The DaVinci feature of a checkpoint, or (``checkpoint=None``) of the config's model
    initialised at random under ``torch.manual_seed(seed)``.

    Args:
        label: row name.
        model: the model config (from the checkpoint or ``--model-config``).
        checkpoint: weights loaded strictly (heads and tokenizer keys dropped); None: random.
        seed: the random initialisation's seed.
    """

    def __init__(
        self, label: str, model: dict, checkpoint: str | None = None, seed: int = 0, device=None
    ):
        self.label, self.checkpoint, self.seed = label, checkpoint, seed
        self.model_cfg = feature_model_config(model)
        self.resolution = int(self.model_cfg.get('image_size', 256))
        self.device = device or _default_device()
        self._model = None

    def identity(self) -> dict:
        from ..models.davinci.features import FEATURE_PARTS, PROMPT

        weights = (
            dict(checkpoint_sha256=file_sha256(self.checkpoint))
            if self.checkpoint
            else dict(random_seed=self.seed, model_sha256=config_sha256(self.model_cfg))
        )
        return dict(kind='davinci', parts=list(FEATURE_PARTS), prompt=PROMPT, **weights)

    @property
    def model(self):
        if self._model is None:
            from ..models.davinci.pretrained import load_pretrained
            from ..registry import MODELS

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = MODELS.build(self.model_cfg)
            if self.checkpoint:
                load_pretrained(model, self.checkpoint)
            self._model = model.to(self.device).eval().requires_grad_(False)
        return self._model

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        from ..models.davinci.features import image_features

        model = self.model
        inputs = model.data_preprocessor.model_input(images.to(self.device))
        return image_features(model, inputs).float().cpu()


class TokenizerSource(FeatureSource):
    """The image tokenizer alone: code vectors [B, C, h, w] of the image's codes (its
    quantised latent), area-averaged to at most ``max_grid`` cells a side and flattened ->
    [B, C * h' * w'].

    Its weights are the checkpoint's ``image_tokenizer.*`` tensors, or else the file the
    model config's ``image_tokenizer.checkpoint`` names.
    """

    def __init__(self, label: str, model: dict, checkpoint: str, max_grid: int = 8, device=None):
        self.label, self.checkpoint, self.max_grid = label, checkpoint, int(max_grid)
        self.tokenizer_cfg = dict(model.get('image_tokenizer') or {})
        if not self.tokenizer_cfg:
            raise CheckpointError('the model config has no image_tokenizer')
        self.weights_file = self.tokenizer_cfg.pop('checkpoint', None)
        self.preprocessor_cfg = model.get('data_preprocessor')
        self.resolution = int(model.get('image_size', 256))
        self.device = device or _default_device()
        self._parts, self._weights_source = None, None

    def _weights(self) -> tuple[str, dict | None]:
        """(file the weights come from, its tokenizer state dict or None to load the file)."""
        state = state_dict_of(load_checkpoint_file(self.checkpoint))
        inside = {
            key[len(TOKENIZER_PREFIX) :]: value
            for key, value in state.items()
            if key.startswith(TOKENIZER_PREFIX)
        }
        if inside:
            return self.checkpoint, inside
        if self.weights_file and os.path.isfile(self.weights_file):
            return self.weights_file, None
        raise CheckpointError(
            f'checkpoint {self.checkpoint} holds no image_tokenizer weights and its config names '
            f'no tokenizer file that exists ({self.weights_file})'
        )

    def identity(self) -> dict:
        if self._weights_source is None:
            self._weights_source = self._weights()[0]
        return dict(
            kind='tokenizer',
            max_grid=self.max_grid,
            weights_sha256=file_sha256(self._weights_source),
            tokenizer_sha256=config_sha256(self.tokenizer_cfg),
        )

    def _build(self):
        if self._parts is None:
            from ..registry import IMAGE_TOKENIZERS, MODELS

            source, state = self._weights()
            tokenizer = IMAGE_TOKENIZERS.build(self.tokenizer_cfg)
            if state is None:
                tokenizer.load_weights(source)
            else:
                check_state_dict_matches(tokenizer, state, source=f'tokenizer of {source}')
                tokenizer.load_state_dict(state)
            preprocessor = MODELS.build(
                self.preprocessor_cfg or dict(type='DaVinciDataPreprocessor')
            )
            tokenizer = tokenizer.to(self.device).eval().requires_grad_(False)
            self._parts = tokenizer, preprocessor.to(self.device)
        return self._parts

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        tokenizer, preprocessor = self._build()
        codes = tokenizer.encode(preprocessor.unit_rgb(images.to(self.device)))  # [B, h, w]
        vectors = tokenizer.code_vectors()[codes].permute(0, 3, 1, 2).float()  # [B, C, h, w]
        return _shrink(vectors, self.max_grid).flatten(1).cpu()


class PixelSource(FeatureSource):
    """RGB pixels in [0, 1] [B, 3, H, W], area-averaged to at most ``max_side`` a side and
    flattened -> [B, 3 * s * s]."""

    def __init__(self, label: str, resolution: int, max_side: int = 32, to_rgb: bool = True):
        self.label, self.resolution = label, int(resolution)
        self.max_side, self.to_rgb = int(max_side), to_rgb

    def identity(self) -> dict:
        return dict(kind='pixels', max_side=self.max_side, to_rgb=self.to_rgb)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images.float() / 255
        if self.to_rgb:
            pixels = pixels.flip(1)
        return _shrink(pixels, self.max_side).flatten(1)


def _shrink(maps: torch.Tensor, max_side: int) -> torch.Tensor:
    """[B, C, H, W] area-averaged so that its longer side is at most ``max_side``."""
    height, width = maps.shape[-2:]
    if max(height, width) <= max_side:
        return maps
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.adaptive_avg_pool2d(maps, size)
