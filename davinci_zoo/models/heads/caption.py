"""Captioning: write the caption of an image after a fixed text prompt (docs/original.md 4.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...registry import HEADS
from ...text import TextBatch, sequences
from ..davinci import inference
from ..davinci.vocabulary import TEXT
from .base import Head, check_label_smoothing, generation_argument, samples_for

#: The original's decoding: 2 beams, 20 tokens at most and 5 at least, both counting the
#: decoder prompt ``[CLS] a picture of`` (Hugging Face ``generate``'s rule).
ORIGINAL_GENERATION = dict(num_beams=2, max_length=20, min_length=5, count_prompt=True)


@HEADS.register_module()
class CaptionHead(Head):
    """Fine-tunes and evaluates writing: the encoder reads the image and an empty text
    (``[CLS]``), the decoder reads ``[CLS] prompt caption [SEP]``.

    Args:
        prompt: the text the decoder starts from (the original's ``'a picture of '``); its
            tokens are fed but never scored, and ``pred_caption`` leaves it out.
        label_smoothing: of the cross-entropy over the text ids (the original: 0.1).
        max_tokens: longest decoder sequence, ``[CLS]``, prompt and ``[SEP]`` included (the
            original: 25); longer captions keep their first words.
        generation: :class:`~..davinci.generation.GenerationConfig` keywords for ``predict``
            (default: the original's, :data:`ORIGINAL_GENERATION`).
        loss_weight: multiplies the loss.

    ``loss``: mean cross-entropy over the caption's tokens and its ``[SEP]`` (every scored
    token of the batch weighs the same). Reads ``inputs['images']`` [B, 3, H, W] and
    ``inputs['caption']`` (one per image; empty ones are left out). ``predict`` sets
    ``pred_caption`` (the text written after the prompt) on each data sample.
    """

    inputs = ('images', 'caption')

    def __init__(
        self,
        prompt: str = 'a picture of ',
        label_smoothing: float = 0.1,
        max_tokens: int = 25,
        generation: dict | None = None,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        check_label_smoothing(label_smoothing)
        self.prompt, self.label_smoothing = prompt, label_smoothing
        self.max_tokens, self.loss_weight = max_tokens, loss_weight
        generation = ORIGINAL_GENERATION if generation is None else generation
        self.generation = generation_argument(
            self, 'generation', generation, inference.check_writing_config
        )

    def decoder_sequences(self, model, captions: TextBatch):
        """``[CLS] prompt caption [SEP]`` -> (ids [N, L], mask [N, L], prompt length P)
        where P counts ``[CLS]`` and the prompt's tokens."""
        prompt = inference.text_prompt(model, self.prompt, captions.num_texts)
        length = prompt.shape[1]
        if self.max_tokens - length < 2:
            raise ValueError(
                f'max_tokens={self.max_tokens} leaves no room for a caption after the '
                f'{length} tokens of [CLS] and the prompt {self.prompt!r}'
            )
        ids, mask = sequences(captions, max_tokens=self.max_tokens - length + 1)
        ids, mask = ids.to(prompt.device), mask.to(prompt.device)
        ids = torch.cat([prompt, ids[:, 1:]], dim=1)
        mask = torch.cat([torch.ones_like(prompt), mask[:, 1:]], dim=1)
        return ids, mask, length

    def loss(self, model, inputs: dict, data_samples) -> dict[str, torch.Tensor]:
        captions: TextBatch = inputs['caption']
        keep = (captions.num_words > 0).nonzero()[:, 0]
        if not len(keep):
            return {}
        captions = captions.select(keep)
        images = inputs['images'][captions.owner]
        empty_ids, empty_mask = model.tokenize([''] * len(images))
        memory, memory_mask = model.encode(images, empty_ids, empty_mask)
        ids, mask, prompt_length = self.decoder_sequences(model, captions)
        targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        targets[:, : prompt_length - 1] = -100  # the prompt's tokens are read, not scored
        positions = torch.arange(ids.shape[1] - 1, device=ids.device)
        logits = model.decoder_logits(
            ids[:, :-1], positions, memory, memory_mask, TEXT, padding_mask=mask[:, :-1]
        )
        start = model.vocab.id_range(TEXT)[0]
        local = torch.where(targets >= 0, targets - start, targets)
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(),
            local.flatten(),
            ignore_index=-100,
            label_smoothing=self.label_smoothing,
        )
        return {'loss_caption': self.loss_weight * loss}

    @torch.no_grad()
    def predict(self, model, inputs: dict, data_samples) -> list:
        images = inputs['images']
        samples = samples_for(data_samples, len(images))
        written = inference.write_texts(model, images, self.generation, self.prompt)
        for sample, text in zip(samples, written):
            sample.set_field(text, 'pred_caption')
        return samples
