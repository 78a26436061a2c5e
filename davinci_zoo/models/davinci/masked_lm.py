"""Masked language modelling (BERT's MLM) of the caption, read by the encoder beside the image.

Not an objective of the original DaVinci (its objectives: docs/original.md sections 2.3-2.6);
a baseline of the paper's objective comparison.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import OBJECTIVES
from ...text import TextBatch, sequences
from ...text.batch import CLS_ID, SEP_ID
from ...text.wordpiece import WordPieceTokenizer
from ..objective import Objective
from ..parts import ComponentArgumentError
from .vocabulary import TEXT

MASK_ID = WordPieceTokenizer.mask_id


def choose_masked(maskable: torch.Tensor, prob: float) -> torch.Tensor:
    """[N, L] bool of the positions to predict: each maskable one with probability ``prob``,
    and one drawn uniformly among a row's maskable ones when the draw chose none (rows with
    nothing maskable stay empty). Torch's global generator."""
    chosen = maskable & (torch.rand(maskable.shape, device=maskable.device) < prob)
    missing = maskable.any(1) & ~chosen.any(1)
    if missing.any():
        scores = torch.rand(maskable.shape, device=maskable.device).masked_fill(~maskable, -1)
        pick = F.one_hot(scores.argmax(1), maskable.shape[1]).bool()
        chosen = chosen | (pick & missing[:, None])
    return chosen


def corrupt(
    ids: torch.Tensor,
    chosen: torch.Tensor,
    random_ids: tuple[int, int],
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
) -> torch.Tensor:
    """BERT's corruption of ids [N, L] at ``chosen`` [N, L]: ``mask_prob`` of them become
    ``[MASK]``, ``random_prob`` a uniform id in ``random_ids`` = [start, end), the rest stay.
    Torch's global generator."""
    draw = torch.rand(ids.shape, device=ids.device)
    random = torch.randint(*random_ids, ids.shape, device=ids.device)
    out = torch.where(chosen & (draw < mask_prob), MASK_ID, ids)
    replace = chosen & (draw >= mask_prob) & (draw < mask_prob + random_prob)
    return torch.where(replace, random, out)


@OBJECTIVES.register_module()
class MaskedLM(Objective):
    """BERT-style masked language modelling of the caption, given the full image.

    Per caption, each WordPiece token (not ``[CLS]``, ``[SEP]`` or padding) is chosen with
    probability ``mask_prob`` (at least one per caption); a chosen token becomes ``[MASK]``
    (80%), a random text id (10%) or stays (10%). The encoder reads the image and the
    corrupted ``[CLS] caption [SEP]`` (memory [B, 1 + N + L, D], the text last); the
    objective's head predicts the original ids at the chosen positions: mean cross-entropy
    over the chosen tokens (with the model's label smoothing), logits over the text ids only.

    Owns (``attach``) the head: ``transform`` (Linear D -> D, GELU, LayerNorm) and ``bias``
    [text ids]; its output weights are the model's word embeddings of the text ids (tied,
    read at each call, as BERT ties them), so the head adds D*D + 3D + |text ids| numbers.
    The decoder is not used, so MLM alone teaches neither writing nor painting.

    Choices: random ids are drawn uniformly from the ids after BERT's special tokens
    (``[MASK]`` + 1 .. end of the text vocabulary), so ``[CLS]``/``[SEP]``/``[PAD]`` never
    appear inside a caption; draws use torch's global generator; empty captions are left out
    of the step (a step with none gives no loss).

    Args:
        weight: loss weight.
        mask_prob: share of caption tokens predicted (BERT: 0.15).
        max_tokens: caption tokens kept, ``[CLS]``/``[SEP]`` included (as PrefixLM: 30).
        name, must_fire_within: see :class:`~davinci_zoo.models.objective.Objective`.

    Reads ``inputs['images']`` [B, 3, H, W] and ``inputs['caption']`` (a TextBatch).
    """

    inputs = ('images', 'caption')
    teaches = ()

    def __init__(
        self,
        weight: float = 1.0,
        mask_prob: float = 0.15,
        max_tokens: int = 30,
        name: str | None = None,
        must_fire_within: int | None = 100,
    ) -> None:
        super().__init__(weight, name, must_fire_within)
        if not 0.0 < mask_prob <= 1.0:
            raise ComponentArgumentError(f'mask_prob must lie in (0, 1], got {mask_prob}')
        if max_tokens < 3:
            raise ComponentArgumentError(
                f'max_tokens must be >= 3 ([CLS], a token, [SEP]), got {max_tokens}'
            )
        self.mask_prob, self.max_tokens = mask_prob, max_tokens

    def attach(self, model: nn.Module) -> None:
        """The head: transform (dense, LayerNorm) and a bias over the text ids."""
        hidden = model.hidden_size
        start, end = model.vocab.id_range(TEXT)
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(hidden, hidden)
        eps = model.decoder.head.transform.LayerNorm.eps  # the model's layer_norm_eps
        self.transform.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(end - start))
        nn.init.normal_(self.transform.dense.weight, std=0.02)
        nn.init.zeros_(self.transform.dense.bias)
        self.random_ids = (MASK_ID + 1, end)

    def logits(self, model: nn.Module, states: torch.Tensor) -> torch.Tensor:
        """Encoder states [M, D] -> logits [M, |text ids|]."""
        start, end = model.vocab.id_range(TEXT)
        x = self.transform.LayerNorm(F.gelu(self.transform.dense(states)))
        weight = model.encoder.embeddings.word_embeddings.weight[start:end]
        return F.linear(x, weight, self.bias)

    def forward(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        captions: TextBatch = inputs['caption']
        keep = (captions.num_words > 0).nonzero()[:, 0]
        if not len(keep):
            return {}
        captions = captions.select(keep)
        ids, mask = sequences(captions, max_tokens=self.max_tokens)
        maskable = (mask == 1) & (ids != CLS_ID) & (ids != SEP_ID)
        chosen = choose_masked(maskable, self.mask_prob)
        corrupted = corrupt(ids, chosen, self.random_ids)
        memory, _ = model.encode(inputs['images'][captions.owner], corrupted, mask)
        states = memory[:, -ids.shape[1] :][chosen]  # the text comes last in the memory
        targets = ids[chosen]
        loss = model.sequence_loss(self.logits(model, states)[None], targets[None], TEXT)
        return {f'loss_{self.name}': self.weight * loss}
