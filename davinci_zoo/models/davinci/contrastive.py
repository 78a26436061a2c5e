"""Image-text contrastive learning (ITC): symmetric InfoNCE between pooled embeddings of an
image-only and a text-only encoder pass, gathered over every rank under DDP.

The pieces are small functions tested alone: :func:`caption_groups` and :func:`same_pairs`
(which pairs are not negatives of each other), :func:`contrastive_loss` (the InfoNCE) and
:func:`gather_rows` (the all-gather that keeps the gradient).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmengine.dist import get_world_size
from torch import nn

from ...registry import OBJECTIVES
from ...text import TextBatch, sequences
from ..objective import Objective, check_log_prefix
from ..parts import ComponentArgumentError

#: The key under which ITC leaves its similarities in the shared ``inputs`` dict for ITM.
SIMILARITY_KEY = 'itc_similarity'


def caption_groups(ids: torch.Tensor) -> torch.Tensor:
    """Token sequences [N, L] (padded with 0) -> [N] group ids, equal for identical rows."""
    if not len(ids):
        return ids.new_zeros(0)
    return torch.unique(ids, dim=0, return_inverse=True)[1]


def same_pairs(caption_group: torch.Tensor, image_id: torch.Tensor) -> torch.Tensor:
    """[N, N] bool: pairs i, j that are no negatives of each other (the same caption or the
    same image; the diagonal included)."""
    same_caption = caption_group[:, None] == caption_group[None, :]
    return same_caption | (image_id[:, None] == image_id[None, :])


def contrastive_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    logit_scale: torch.Tensor,
    same: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE of L2-normalised pairs.

    Args:
        image_embeds, text_embeds: [N, E], row i of both is pair i.
        logit_scale: scalar multiplying the cosine similarities (1 / temperature).
        same: [N, N] bool; True off the diagonal drops that entry from both softmaxes (a false
            negative). None: every other pair is a negative.

    Returns:
        (loss: mean of the image->text and text->image cross-entropies, logits [N, N]: image
        i against text j, before dropping anything).
    """
    logits = logit_scale * image_embeds @ text_embeds.t()
    scored = logits
    if same is not None:
        eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
        scored = logits.masked_fill(same & ~eye, float('-inf'))
    targets = torch.arange(len(logits), device=logits.device)
    loss = (F.cross_entropy(scored, targets) + F.cross_entropy(scored.t(), targets)) / 2
    return loss, logits


# -- distributed -------------------------------------------------------------------------------
_GROUPS: dict[int, object] = {}


def contrastive_group():
    """A process group of its own for ITC's collectives, made on first use (every rank runs
    ITC in the same step, so every rank makes it at the same point). Its backward all-reduce
    then never interleaves with DDP's gradient buckets on the default group, whose order
    differs between ranks whose batches feed different objectives."""
    key = id(dist.group.WORLD)
    if key not in _GROUPS:
        _GROUPS[key] = dist.new_group(backend=dist.get_backend())
    return _GROUPS[key]


class _GatherWithGrad(torch.autograd.Function):
    """All-gather [n, ...] rows (same n on every rank) -> [W * n, ...], keeping the gradient.

    Backward sums the ranks' gradients of the whole gathered tensor and returns this rank's
    rows. Every rank computes the same global loss, so the sum is W times the true gradient
    of this rank's rows; DDP's mean over W ranks then gives exactly the gradient of the
    global loss.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        ctx.rank, ctx.rows = dist.get_rank(group), len(tensor)
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, tensor.contiguous(), group=group)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        start = ctx.rank * ctx.rows
        return grad[start : start + ctx.rows], None


def gather_rows(tensor: torch.Tensor, counts, group, with_grad: bool) -> torch.Tensor:
    """This rank's rows [counts[rank], ...] -> every rank's rows [sum(counts), ...] in rank
    order (rows are padded to max(counts) for the collective, then dropped)."""
    most = max(counts)
    padded = F.pad(tensor, (0, 0) * (tensor.dim() - 1) + (0, most - len(tensor)))
    if with_grad:
        gathered = _GatherWithGrad.apply(padded, group)
    else:
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded.contiguous(), group=group)
        gathered = torch.cat(parts)
    return torch.cat([chunk[:count] for chunk, count in zip(gathered.split(most), counts)])


# -- the objective -----------------------------------------------------------------------------
@OBJECTIVES.register_module()
class ImageTextContrastive(Objective):
    """ITC: pull each image's embedding towards its caption's and away from the others'.

    Two encoder passes: image only (``model.encode(images, None, None)``, pooled = the image
    CLS, memory position 0) and text only (``model.encode(None, ids, mask)``, pooled = the
    text's ``[CLS]``). Each pooled state [N, D] goes through a projection of its own owned by
    the objective (Linear D -> ``embed_dim``) and is L2-normalised; the logits [N, N] are the
    cosine similarities times a learned scale (init 1 / ``temperature``, kept at most
    ``max_logit_scale``); the loss is the mean of the image->text and text->image
    cross-entropies (CLIP's, ALBEF's ITC without its momentum encoder and queue).

    Choices:

    - False negatives: two pairs with the same caption text (the same token sequence as the
      text pass sees it) or the same image (one image with several captions) are not
      negatives of each other: those entries leave both softmaxes (the diagonal stays).
    - Empty captions are left out of the loss (their rows are still encoded, so every rank
      runs the same computation); a step with fewer than 2 captioned pairs over all ranks
      gives no loss.
    - Under DDP the embeddings of every rank are gathered with their gradient and every rank
      computes the whole global [N_total, N_total] loss: its value is the single-process loss
      on the concatenated batch and DDP's gradient averaging gives its exact gradient. The
      gather is a collective, so every rank's batch must hold images and captions in every
      step (a rank whose batch lacks them would leave the others waiting). BatchNorm in the
      image embedder still normalises per rank in training.

    Exempt ``logit_scale`` from weight decay in the optimiser config (CLIP does:
    ``paramwise_cfg=dict(custom_keys={'logit_scale': dict(decay_mult=0.0)})``), else the decay
    pulls the scale towards 1.

    Leaves ``inputs['itc_similarity']``: this rank's image->text logits [N_local, N_local]
    (before dropping false negatives, detached; -inf in the rows and columns of empty
    captions), which :class:`~.matching.ImageTextMatching` reads for hard negatives when it
    comes later in the objectives list. Logs the scale under ``<name>_logit_scale``.

    Args:
        weight: loss weight.
        embed_dim: width of the projections; None: min(hidden size, 256).
        temperature: the starting temperature (CLIP's and ALBEF's 0.07).
        max_logit_scale: the largest scale (CLIP's 100); the parameter is clamped before use.
        max_tokens: caption tokens kept, ``[CLS]``/``[SEP]`` included.
        name, must_fire_within: see :class:`~davinci_zoo.models.objective.Objective`.

    Owns ``image_projection``, ``text_projection`` (built by :meth:`attach`) and
    ``logit_scale`` (the log of the scale).
    """

    inputs = ('images', 'caption')

    def __init__(
        self,
        weight: float = 1.0,
        embed_dim: int | None = None,
        temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        max_tokens: int = 30,
        name: str | None = None,
        must_fire_within: int | None = 100,
    ) -> None:
        super().__init__(weight, name, must_fire_within)
        check_log_prefix(self.name)
        if not (temperature > 0 and 1 / temperature <= max_logit_scale):
            raise ComponentArgumentError(
                f'temperature must be > 0 with 1 / temperature <= max_logit_scale '
                f'({max_logit_scale}), got {temperature}'
            )
        self.embed_dim, self.max_tokens = embed_dim, max_tokens
        self.max_log_scale = math.log(max_logit_scale)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def attach(self, model: nn.Module) -> None:
        """The two projections, D = ``model.hidden_size`` -> ``embed_dim``."""
        hidden = model.hidden_size
        self.embed_dim = self.embed_dim or min(hidden, 256)
        self.image_projection = nn.Linear(hidden, self.embed_dim)
        self.text_projection = nn.Linear(hidden, self.embed_dim)

    def embed_images(self, model, images: torch.Tensor) -> torch.Tensor:
        """Model-input images [B, 3, H, W] -> unit embeddings [B, E] (image-only pass)."""
        memory, _ = model.encode(images, None, None)
        return F.normalize(self.image_projection(memory[:, 0]), dim=-1)

    def embed_texts(self, model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[CLS] ... [SEP]`` ids and mask [N, L] -> unit embeddings [N, E] (text-only pass)."""
        memory, _ = model.encode(None, ids, mask)
        return F.normalize(self.text_projection(memory[:, 0]), dim=-1)

    def scale(self) -> torch.Tensor:
        """The logit scale exp(logit_scale), after clamping the parameter to the maximum."""
        with torch.no_grad():
            self.logit_scale.clamp_(max=self.max_log_scale)
        return self.logit_scale.exp()

    def forward(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        images, captions = inputs['images'], inputs['caption']
        ids, mask = sequences(captions, max_tokens=self.max_tokens)
        embeds = torch.cat(
            [self.embed_images(model, images)[captions.owner], self.embed_texts(model, ids, mask)],
            dim=1,
        )  # [N, 2E]: one gather for both
        valid, image_id, offset = captions.num_words > 0, captions.owner, 0
        if get_world_size() > 1:
            embeds, valid, image_id, ids, offset = self._gather(
                embeds, valid, captions, ids, images
            )
        used = valid.nonzero()[:, 0]
        local = slice(offset, offset + captions.num_texts)
        image_embeds, text_embeds = embeds[used].split(self.embed_dim, dim=1)
        scale = self.scale()
        if len(used) < 2:
            logits = scale.detach() * image_embeds.detach() @ text_embeds.detach().t()
            inputs[SIMILARITY_KEY] = self._local_similarity(logits, used, local, len(embeds))
            return {}
        same = same_pairs(caption_groups(ids), image_id)[used][:, used]
        loss, logits = contrastive_loss(image_embeds, text_embeds, scale, same)
        inputs[SIMILARITY_KEY] = self._local_similarity(logits, used, local, len(embeds))
        return {
            f'loss_{self.name}': self.weight * loss,
            f'{self.name}_logit_scale': scale.detach(),
        }

    @staticmethod
    def _local_similarity(logits, used, local: slice, total: int) -> torch.Tensor:
        """This rank's block of the global logits, -inf where a caption was left out."""
        full = logits.new_full((total, total), float('-inf'))
        full[used[:, None], used[None, :]] = logits.detach()
        return full[local, local]

    def _gather(self, embeds, valid, captions: TextBatch, ids, images):
        """Every rank's rows, in rank order: (embeds [N_total, 2E] with gradient, valid [N_total],
        global image ids [N_total], caption ids [N_total, L_max], this rank's first row)."""
        group = contrastive_group()
        sizes = torch.tensor([len(embeds), ids.shape[1], len(images)], device=embeds.device)
        everyone = [torch.empty_like(sizes) for _ in range(dist.get_world_size(group))]
        dist.all_gather(everyone, sizes, group=group)
        counts, widths, num_images = zip(*torch.stack(everyone).cpu().tolist())
        rank = dist.get_rank(group)
        # Rows: valid, image id (unique over ranks), caption ids padded to the widest rank's.
        meta = torch.cat(
            [
                valid[:, None].long(),
                (captions.owner + sum(num_images[:rank]))[:, None],
                F.pad(ids, (0, max(widths) - ids.shape[1])),
            ],
            dim=1,
        )
        meta = gather_rows(meta, counts, group, with_grad=False)
        embeds = gather_rows(embeds, counts, group, with_grad=True)
        return embeds, meta[:, 0].bool(), meta[:, 1], meta[:, 2:], sum(counts[:rank])
