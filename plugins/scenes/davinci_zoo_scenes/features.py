"""A small scene classifier whose hidden features stand in for Inception's in a scene FID.

``SceneFeatures`` (MODELS) reads uint8 RGB images [N, 3, H, W] (H, W >= 32, resized to 32 px)
and gives 64 features per image; ``class_logits`` gives the first object's class (shape x
colour x size, 36 classes) for the Inception Score. It is trained on freshly rendered seeded
scenes (never a task's images) to name each scene's layout and objects, by
``python -m davinci_zoo_scenes.train_features`` (:mod:`.train_features`).

Its FID is a distance in this network's feature space, not Inception's: it compares runs scored
with the same weights file, never COCO FIDs.
"""

from __future__ import annotations

import itertools
import os

import torch
from torch import nn
from torch.nn import functional as F

from davinci_zoo.checkpoint import check_state_dict_matches, load_checkpoint_file
from davinci_zoo.registry import MODELS

from .vocabulary import COLOURS, POSITIONS, RELATIONS, SHAPES, SIZES

INPUT_SIZE = 32  # every image is read at this side
NUM_FEATURES = 64
LAYOUTS = (*POSITIONS, *RELATIONS)  # one object at a position, or two in a relation
OBJECT_CLASSES = tuple(itertools.product(SHAPES, COLOURS, SIZES))  # (shape, colour, size)
NO_OBJECT = len(OBJECT_CLASSES)  # the second object's class in one-object scenes
COMMAND = 'python -m davinci_zoo_scenes.train_features --out {path} --seed 0'


@MODELS.register_module()
class SceneFeatures(nn.Module):
    """Scene classifier: uint8 RGB [N, 3, H, W] (H, W >= 32) -> features [N, 64].

    A three-stage CNN at 32 px and one hidden layer (the features, after its ReLU) with three
    heads: ``layout`` [N, 6] (``LAYOUTS``), ``first`` [N, 36] and ``second`` [N, 37] (the
    objects' ``OBJECT_CLASSES`` in caption order, the second's last class meaning none).

    Args:
        weights: a ``.safetensors`` file written by :mod:`.train_features`; None: random
            initialisation (for training). A missing file is a FileNotFoundError naming the
            command that makes it. Loaded weights are frozen (eval mode, no gradients).
    """

    num_features = NUM_FEATURES

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            *_stage(3, 16),  # 32 -> 16 px
            *_stage(16, 32),  # 16 -> 8 px
            *_stage(32, 64),  # 8 -> 4 px
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, NUM_FEATURES),
            nn.ReLU(),
        )
        self.heads = nn.ModuleDict(
            dict(
                layout=nn.Linear(NUM_FEATURES, len(LAYOUTS)),
                first=nn.Linear(NUM_FEATURES, len(OBJECT_CLASSES)),
                second=nn.Linear(NUM_FEATURES, len(OBJECT_CLASSES) + 1),
            )
        )
        if weights is not None:
            self.load_weights(weights)

    def load_weights(self, path: str) -> None:
        """Load (strictly) and freeze the weights of ``path``."""
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'scene feature weights {path} do not exist; make them with: '
                + COMMAND.format(path=path)
            )
        state = load_checkpoint_file(path)['state_dict']
        check_state_dict_matches(self, state, source=f'scene feature weights {path}')
        self.load_state_dict(state)
        self.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [N, 3, H, W] -> features [N, 64]."""
        return self.trunk(unit_input(images))

    def logits(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """uint8 RGB [N, 3, H, W] -> {'layout': [N, 6], 'first': [N, 36], 'second': [N, 37]}."""
        features = self(images)
        return {name: head(features) for name, head in self.heads.items()}

    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [N, 3, H, W] -> the first object's class logits [N, 36] (for IS)."""
        return self.heads['first'](self(images))


def _stage(channels_in: int, channels_out: int) -> list[nn.Module]:
    return [nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]


def unit_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [N, 3, H, W] -> floats [N, 3, 32, 32] in [0, 1] (area-resized when larger)."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f'SceneFeatures reads uint8 RGB images [N, 3, H, W], got {images.dtype} '
            f'{tuple(images.shape)}'
        )
    if min(images.shape[-2:]) < INPUT_SIZE:
        raise ValueError(
            f'SceneFeatures reads images of at least {INPUT_SIZE} px, got {tuple(images.shape)}'
        )
    pixels = images.float() / 255
    if tuple(images.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        pixels = F.interpolate(pixels, size=(INPUT_SIZE, INPUT_SIZE), mode='area')
    return pixels


def object_class(obj) -> int:
    """Index of an ObjectDesc in ``OBJECT_CLASSES``."""
    return OBJECT_CLASSES.index((obj.shape, obj.colour, obj.size))


def labels_of(description) -> tuple[int, int, int]:
    """(layout, first object, second object) class indices of a SceneDescription."""
    objects = description.objects
    layout = LAYOUTS.index(description.position or description.relation)
    second = object_class(objects[1]) if len(objects) == 2 else NO_OBJECT
    return layout, object_class(objects[0]), second
