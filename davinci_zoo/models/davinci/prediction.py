"""What ``DaVinci(mode='predict')`` returns: a caption per image, a painting per caption."""

from __future__ import annotations

import torch

from . import inference
from .generation import GenerationConfig


@torch.no_grad()
def sampled_and_reranked(
    model, captions: list[str], num_samples: int = 8, scorer=None, **gen
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint ``num_samples`` per caption (plain sampling unless ``gen`` says otherwise) ->
    (the first sample, the sample ``scorer`` rates best), each [B, 3, H, W] in [0, 1].

    ``scorer``: as :func:`~.inference.build_scorer` takes it (default: the model's caption
    likelihood).
    """
    config = GenerationConfig(**{'do_sample': True, **gen})
    codes, _ = inference.paint_codes(model, captions, config, num_samples)
    images = inference.codes_to_images(model, codes)  # [B, N, 3, H, W]
    scorer = inference.build_scorer(scorer)
    scores = inference.score_samples(model, images, captions, scorer)
    best = scores.argmax(1)
    return images[:, 0], images[torch.arange(len(images)), best]


def predict(model, batch: dict) -> list[dict]:
    """Per sample: ``pred_caption`` (from the image), ``painting`` [3, H, W] (from the
    caption, as the model's ``painting_generation`` says: greedy by default); with its
    ``reranked_painting`` settings also ``painting_sampled`` (one plain sample) and
    ``painting_reranked`` (the best of N by the scorer)."""
    images, captions = batch['images'], list(batch['caption'])
    written = inference.write_texts(model, images)
    codes, _ = inference.paint_codes(model, captions, model.painting_generation)
    paintings = inference.codes_to_images(model, codes[:, 0])
    samples = [
        dict(caption=caption, pred_caption=text, painting=painting, images=image)
        for caption, text, painting, image in zip(captions, written, paintings, images)
    ]
    if model.reranked_painting is not None:
        sampled, reranked = sampled_and_reranked(model, captions, **model.reranked_painting)
        for sample, first, best in zip(samples, sampled, reranked):
            sample.update(painting_sampled=first, painting_reranked=best)
    return samples
