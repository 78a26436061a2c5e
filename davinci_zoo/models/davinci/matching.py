"""Image-text matching (ITM): a binary match head on the fused encoder state, with negatives
drawn in the batch (hard ones, by ITC's similarities, when ITC ran before it in the step).

:func:`negative_candidates` and :func:`draw_negatives` are the sampling, tested alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import OBJECTIVES
from ...text import TextBatch, sequences
from ..objective import Objective, check_log_prefix
from .contrastive import SIMILARITY_KEY, caption_groups, same_pairs


def negative_candidates(
    caption_group: torch.Tensor, image_id: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """[N, N] bool: pair j may serve as a negative of pair i (both valid, neither the same
    caption text nor the same image; so never j = i)."""
    return ~same_pairs(caption_group, image_id) & valid[:, None] & valid[None, :]


def draw_negatives(
    allowed: torch.Tensor, logits: torch.Tensor | None = None, generator=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One negative per row among its allowed columns.

    Args:
        allowed: [N, M] bool.
        logits: [N, M] or None; a row's column j is drawn with probability
            softmax(logits[row] over its allowed columns), or uniformly when None.
        generator: a torch.Generator (default: the global one).

    Returns:
        (rows [K]: the rows with at least one allowed column, columns [K]: their draws).
    """
    rows = allowed.any(1).nonzero()[:, 0]
    if not len(rows):
        return rows, rows
    allowed = allowed[rows]
    if logits is None:
        weights = allowed.float()
    else:
        scores = logits[rows].float().masked_fill(~allowed, float('-inf'))
        weights = torch.softmax(scores, dim=1)
        weights = torch.where(weights.isfinite(), weights, 0.0)
        # a row whose allowed logits all underflow falls back to uniform
        weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, allowed.float())
    columns = torch.multinomial(weights, 1, generator=generator)[:, 0]
    return rows, columns


@OBJECTIVES.register_module()
class ImageTextMatching(Objective):
    """ITM: does this caption describe this image? A head owned by the objective,
    ``head`` = Linear(D, 2) (logit 1 = match), reads the fused encoder CLS (memory position 0
    of the encoder over image + caption).

    Per step, for each captioned pair i of the local batch: the pair itself (label 1), image i
    with the caption of a pair j (label 0) and caption i with the image of a pair k (label 0):
    3B pairs, one third positive (ALBEF's and BLIP's recipe). j and k are drawn among the
    pairs with another caption text and another image (a pair with the same caption or the
    same image is a false negative, never drawn), the positive included.

    When ``inputs['itc_similarity']`` is there (:class:`~.contrastive.ImageTextContrastive`
    ran earlier in the same step; [N, N] image->text logits), j is drawn with probability
    softmax(similarity[i, :]) and k with softmax(similarity[:, i]) over the allowed pairs:
    hard negatives. Otherwise uniformly. A pair with no allowed negative (all captions alike)
    is left out with its negatives; a step with none left gives no loss. Empty captions are
    left out. Randomness: torch's global generator.

    Each image is embedded once per step (``model.embed_image``) and its tokens reused for
    its 3 rows; the encoder then runs on the 3B rows with the 2-D relative bias of a full
    image, as ``model.encode`` does. Logs ``<name>_accuracy`` (share of the 3B pairs the head
    gets right).

    Args:
        weight: loss weight.
        max_tokens: caption tokens kept, ``[CLS]``/``[SEP]`` included.
        name, must_fire_within: see :class:`~davinci_zoo.models.objective.Objective`.
    """

    inputs = ('images', 'caption')

    def __init__(
        self,
        weight: float = 1.0,
        max_tokens: int = 30,
        name: str | None = None,
        must_fire_within: int | None = 100,
    ) -> None:
        super().__init__(weight, name, must_fire_within)
        check_log_prefix(self.name)
        self.max_tokens = max_tokens

    def attach(self, model: nn.Module) -> None:
        """The match head, Linear(``model.hidden_size``, 2)."""
        self.head = nn.Linear(model.hidden_size, 2)

    def pairs(
        self, captions: TextBatch, ids: torch.Tensor, similarity: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The step's pairs: (image rows, caption rows, labels), each [3K]: K positives, then
        their K images with a drawn caption, then their K captions with a drawn image.

        ``ids`` [N, L] are the captions as the encoder reads them (identical rows = the same
        caption); ``similarity`` [N, N] image->text logits or None.
        """
        allowed = negative_candidates(caption_groups(ids), captions.owner, captions.num_words > 0)
        # allowed is symmetric: a pair has both negatives or none (then it is left out)
        rows, other_text = draw_negatives(allowed, similarity)
        rows_t, other_image = draw_negatives(
            allowed.t(), None if similarity is None else similarity.t()
        )
        assert torch.equal(rows, rows_t)
        owner = captions.owner
        image_rows = torch.cat([owner[rows], owner[rows], owner[other_image]])
        text_rows = torch.cat([rows, other_text, rows])
        labels = torch.cat([torch.ones_like(rows), torch.zeros_like(rows), torch.zeros_like(rows)])
        return image_rows, text_rows, labels

    def match_logits(
        self,
        model,
        images: torch.Tensor,
        text_ids: torch.Tensor,
        text_mask: torch.Tensor,
        image_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [N, 2] (index 1: match) of images[image_rows] (default: images [N, 3, H, W]
        row by row) with the captions ids/mask [N, L]; each image embedded once."""
        if image_rows is None:
            image_rows = torch.arange(len(images), device=images.device)
        used, index = torch.unique(image_rows, return_inverse=True)
        tokens = model.embed_image(images[used])[index]
        grid = model.image_embedder.token_grid(images.shape[-2], images.shape[-1])
        memory, _ = model.encoder(text_ids, text_mask, tokens, grid)
        return self.head(memory[:, 0])

    def forward(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        images, captions = inputs['images'], inputs['caption']
        similarity = inputs.get(SIMILARITY_KEY)
        if similarity is not None and similarity.shape != (captions.num_texts,) * 2:
            raise ValueError(
                f'{SIMILARITY_KEY} has shape {tuple(similarity.shape)} but the batch has '
                f'{captions.num_texts} captions: it must come from ImageTextContrastive on the '
                'same batch, earlier in the objectives list'
            )
        ids, mask = sequences(captions, max_tokens=self.max_tokens)
        image_rows, text_rows, labels = self.pairs(captions, ids, similarity)
        if not len(labels):
            return {}
        logits = self.match_logits(model, images, ids[text_rows], mask[text_rows], image_rows)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()
        return {f'loss_{self.name}': self.weight * loss, f'{self.name}_accuracy': accuracy}
