"""Nearest-neighbour vector quantisation with usage tracking and dead-code restarts.

Two ways to learn the codebook:

- ``'loss'`` (taming's VectorQuantizer2): the codebook is a parameter pulled towards the
  encoder outputs by the codebook loss ``mean((e - sg(z))^2)``;
- ``'ema'``: the codebook follows exponential moving averages of the encoder outputs assigned
  to each code (Laplace-smoothed counts) and gets no gradient.

Either way the encoder gets the commitment loss ``beta * mean((z - sg(e))^2)`` and the
straight-through gradient of the reconstruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from davinci_zoo.models.parts import ComponentArgumentError

CODEBOOK_UPDATES = ('loss', 'ema')


@dataclass
class Quantized:
    """What :meth:`VectorQuantizer.forward` returns for latents z of shape [B, D, h, w].

    Attributes:
        latents: [B, D, h, w] codebook vectors, with straight-through gradients to z.
        codes: [B, h, w] int64 index of the nearest codebook vector of each position.
        loss: scalar VQ loss (commitment, plus the codebook term in ``'loss'`` mode).
    """

    latents: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _sum_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` in place over the processes of a distributed run (no-op otherwise)."""
    if _distributed():
        dist.all_reduce(tensor)
    return tensor


def _same_as_first_process(tensor: torch.Tensor) -> torch.Tensor:
    """Overwrite ``tensor`` in place with rank 0's copy in a distributed run."""
    if _distributed():
        dist.broadcast(tensor, src=0)
    return tensor


class VectorQuantizer(nn.Module):
    """A codebook of ``codebook_size`` vectors of ``embed_dim`` entries.

    Args:
        codebook_size: number of codes K.
        embed_dim: dimension D of a code vector.
        beta: weight of the commitment loss.
        codebook_update: ``'loss'`` or ``'ema'``.
        ema_decay: decay of the EMA statistics (``'ema'`` mode).
        usage_decay: decay of the running per-code usage.
        dead_code_threshold: a code whose running usage (an EMA of how many positions of a
            training batch it was assigned) is below this is dead.
        ema_epsilon: Laplace smoothing of the EMA cluster sizes.

    State: ``embedding.weight`` [K, D] (taming's name); in ``'ema'`` mode also the buffers
    ``ema_cluster_size`` [K] and ``ema_embed_sum`` [K, D]. The running ``usage`` [K] is a
    training statistic and not saved (so taming checkpoints match the ``'loss'`` layout).
    """

    def __init__(
        self,
        codebook_size: int,
        embed_dim: int,
        beta: float = 0.25,
        codebook_update: str = 'loss',
        ema_decay: float = 0.99,
        usage_decay: float = 0.99,
        dead_code_threshold: float = 1.0,
        ema_epsilon: float = 1e-5,
    ):
        super().__init__()
        if codebook_update not in CODEBOOK_UPDATES:
            raise ComponentArgumentError(
                f'codebook_update must be one of {CODEBOOK_UPDATES}, got {codebook_update!r}'
            )
        self.codebook_size = codebook_size
        self.embed_dim = embed_dim
        self.beta = beta
        self.codebook_update = codebook_update
        self.ema_decay = ema_decay
        self.usage_decay = usage_decay
        self.dead_code_threshold = dead_code_threshold
        self.ema_epsilon = ema_epsilon
        self.embedding = nn.Embedding(codebook_size, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        self.register_buffer(
            'usage', torch.full((codebook_size,), float(dead_code_threshold)), persistent=False
        )
        if codebook_update == 'ema':
            self.embedding.weight.requires_grad_(False)
            # Start as if every code had been assigned once, at its initial position, so that
            # an unused code keeps its place instead of drifting.
            self.register_buffer('ema_cluster_size', torch.ones(codebook_size))
            self.register_buffer('ema_embed_sum', self.embedding.weight.detach().clone())

    @property
    def codebook(self) -> torch.Tensor:
        """[K, D] the code vectors."""
        return self.embedding.weight

    # -- pure computation ------------------------------------------------------------------
    def nearest_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, D, h, w] latents -> [B, h, w] index of the nearest code (squared L2)."""
        batch, _, height, width = latents.shape
        flat = latents.permute(0, 2, 3, 1).reshape(-1, self.embed_dim)
        codebook = self.codebook
        distances = (
            flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.t()
        )
        return distances.argmin(1).reshape(batch, height, width)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, h, w] codes -> [B, D, h, w] code vectors."""
        return self.embedding(codes).permute(0, 3, 1, 2)

    def forward(self, latents: torch.Tensor) -> Quantized:
        """Quantise [B, D, h, w] latents; gradients pass straight through to them."""
        codes = self.nearest_codes(latents.detach())
        chosen = self.lookup(codes)
        loss = self.beta * F.mse_loss(latents, chosen.detach())
        if self.codebook_update == 'loss':
            loss = loss + F.mse_loss(chosen, latents.detach())
        straight_through = latents + (chosen - latents).detach()
        return Quantized(straight_through, codes, loss)

    def dead_codes(self) -> torch.Tensor:
        """[K] bool: codes whose running usage is below the threshold."""
        return self.usage < self.dead_code_threshold

    @staticmethod
    def perplexity(codes: torch.Tensor, codebook_size: int) -> float:
        """exp(entropy) of the histogram of ``codes``: 1 if one code is used, K if all equally."""
        counts = torch.bincount(codes.flatten(), minlength=codebook_size).float()
        probabilities = counts / counts.sum()
        entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum()
        return float(entropy.exp())

    # -- training-step updates -------------------------------------------------------------
    @torch.no_grad()
    def update(self, latents: torch.Tensor, codes: torch.Tensor, restart: bool) -> None:
        """The side effects of one training step on [B, D, h, w] latents and their codes.

        Updates the EMA codebook (``'ema'`` mode), the running usage, and, when ``restart``,
        re-initialises the dead codes from these latents.
        """
        flat = latents.detach().permute(0, 2, 3, 1).reshape(-1, self.embed_dim)
        assignments = F.one_hot(codes.flatten(), self.codebook_size).to(flat.dtype)  # [N, K]
        counts = _sum_over_processes(assignments.sum(0))
        if self.codebook_update == 'ema':
            self._update_ema(counts, _sum_over_processes(assignments.t() @ flat))
        self.usage.mul_(self.usage_decay).add_(counts, alpha=1 - self.usage_decay)
        if restart:
            errors = (flat - self.codebook[codes.flatten()]).pow(2).sum(1)
            self.restart_dead_codes(flat, errors)

    def _update_ema(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        """Move each code to the smoothed mean of the latents assigned to it."""
        self.ema_cluster_size.mul_(self.ema_decay).add_(counts, alpha=1 - self.ema_decay)
        self.ema_embed_sum.mul_(self.ema_decay).add_(sums, alpha=1 - self.ema_decay)
        total = self.ema_cluster_size.sum()
        smoothed = (
            (self.ema_cluster_size + self.ema_epsilon)
            / (total + self.codebook_size * self.ema_epsilon)
            * total
        )
        self.embedding.weight.copy_(self.ema_embed_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(
        self, flat_latents: torch.Tensor, errors: torch.Tensor | None = None
    ) -> int:
        """Move every dead code to a row of ``flat_latents`` [N, D] (plus tiny noise).

        Rows are drawn with probability proportional to ``errors`` [N] (each row's squared
        distance to its code; uniform when None), without replacement while rows last: revived
        codes go where the codebook represents the data worst, not where data is merely
        frequent (a frequent, well-served latent such as a plain background would otherwise
        collect many interchangeable codes). The revived codes' usage is reset to the
        threshold. Random choices come from torch's global generator, so they repeat under
        ``torch.manual_seed``. Returns the number of codes restarted.
        """
        dead = self.dead_codes().nonzero().flatten()
        if dead.numel() == 0 or flat_latents.shape[0] == 0:
            return 0
        weights = torch.ones(len(flat_latents), device=flat_latents.device)
        if errors is not None and float(errors.sum()) > 0:
            weights = errors.float()
        enough = dead.numel() <= int((weights > 0).sum())
        picks = torch.multinomial(weights, dead.numel(), replacement=not enough)
        chosen = flat_latents[picks]
        noise_scale = 1e-2 * flat_latents.std().clamp_min(1e-6)
        chosen = _same_as_first_process(chosen + noise_scale * torch.randn_like(chosen))
        self.embedding.weight[dead] = chosen.to(self.embedding.weight.dtype)
        self.usage[dead] = self.dead_code_threshold
        if self.codebook_update == 'ema':
            self.ema_cluster_size[dead] = 1.0
            self.ema_embed_sum[dead] = chosen.to(self.ema_embed_sum.dtype)
        return int(dead.numel())
