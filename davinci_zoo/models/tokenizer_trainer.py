"""Train and evaluate an image tokenizer with mmengine's Runner."""

from __future__ import annotations

import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from ..registry import IMAGE_TOKENIZERS, MODELS
from .parts import ComponentArgumentError

#: What the tokenizers take: RGB in [0, 1] (the pipeline's uint8 BGR / 255, flipped).
UNIT_RGB_PREPROCESSOR = dict(
    type='DaVinciDataPreprocessor', mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0)
)


@MODELS.register_module()
class ImageTokenizerTrainer(BaseModel):
    """Wraps an image tokenizer for ``tools/train.py`` / ``tools/test.py``.

    Args:
        image_tokenizer: config of an IMAGE_TOKENIZERS component that implements
            ``forward_train`` (VQGAN, DVAE, ...).
        reconstruction_losses: configs of reconstruction losses (``PixelL1Loss``,
            ``PixelMSELoss``, ``PerceptualLoss``, ...), each logged under its own name.

    Batches are packed image items (``PackDaVinciInputs``); the default data preprocessor
    turns their uint8 images into ``inputs['images']`` [B, 3, H, W] RGB in [0, 1].
    ``mode='loss'`` returns the tokenizer's own losses, the reconstruction losses and its
    statistics (``perplexity``, ``dead_codes``, ...); ``mode='predict'`` returns one dict per
    image with ``images``, ``reconstruction``, ``codes`` and ``caption`` (the data sample's,
    or '').
    """

    def __init__(
        self,
        image_tokenizer: dict,
        reconstruction_losses: list[dict],
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            data_preprocessor=MODELS.build(data_preprocessor or UNIT_RGB_PREPROCESSOR),
            init_cfg=init_cfg,
        )
        self.tokenizer = IMAGE_TOKENIZERS.build(image_tokenizer)
        self.reconstruction_losses = torch.nn.ModuleList(
            MODELS.build(cfg) for cfg in reconstruction_losses
        )
        if not len(self.reconstruction_losses):
            raise ComponentArgumentError('reconstruction_losses needs at least one loss')

    def forward(self, inputs: dict, data_samples: list | None = None, mode: str = 'tensor'):
        images = inputs['images']
        if mode == 'loss':
            return self.loss(images)
        if mode == 'predict':
            captions = [sample.get('caption', '') for sample in data_samples or []]
            return self.predict(images, captions or None)
        return self.tokenizer.encode(images)

    def loss(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        step = MessageHub.get_current_instance().get_info('iter', 0)
        output = self.tokenizer.forward_train(images, step=step)
        losses = dict(output.losses)
        for loss in self.reconstruction_losses:
            losses[loss.name] = loss(output.reconstruction, images)
        for name, value in output.stats.items():
            losses[name] = torch.as_tensor(float(value))
        return losses

    @torch.no_grad()
    def predict(self, images: torch.Tensor, caption=None) -> list[dict]:
        codes = self.tokenizer.encode(images)
        reconstruction = self.tokenizer.decode(codes)
        captions = caption if caption is not None else [''] * len(images)
        return [
            dict(images=image, reconstruction=rec, codes=code, caption=text)
            for image, rec, code, text in zip(images, reconstruction, codes, captions)
        ]
