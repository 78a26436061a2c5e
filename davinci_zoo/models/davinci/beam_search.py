"""Beam search over the cached decoder, as batched tensor operations.

The K beams of input b are rows b*K .. b*K + K - 1 of the :class:`~.generation.DecoderState`;
each step scores all K*V continuations of an input at once, keeps the best K and reorders the
cache rows with one index (no Python loop over hypotheses). A beam's parent is always a beam
of the same input, so the reorder moves only the self-attention cache: the input's memory,
stored once for its K beams, stays where it is. As in Hugging Face's beam search
(which the original used, docs/original.md section 4.4): of the 2K best continuations, one
ending in EOS is finished when it ranks among the first K, the others that do not end in EOS
continue.
Finished hypotheses go to a pool of the K best per input, scored by

    sum of log-probabilities / (new tokens, EOS included) ** length_penalty.

The search stops when every input's K-th pooled score beats the best score any live beam
could still reach (an exact bound: log-probabilities are <= 0), or after ``max_new_tokens``,
when the live beams join the pool. So with a beam as wide as the number of hypotheses the
result is the exhaustive optimum, and with one beam and ``length_penalty=0`` it is greedy
decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .generation import SamplingConfig, check_eos, process_logits, start_decoding

NEG_INF = float('-inf')


@dataclass
class BeamPool:
    """The best finished hypotheses per input, best first: ids [B, K, n], scores [B, K]."""

    ids: torch.Tensor
    scores: torch.Tensor

    @classmethod
    def empty(cls, batch: int, beams: int, length: int, pad_id: int, device) -> BeamPool:
        ids = torch.full((batch, beams, length), pad_id, dtype=torch.long, device=device)
        return cls(ids, torch.full((batch, beams), NEG_INF, device=device))

    def add(self, ids: torch.Tensor, scores: torch.Tensor) -> None:
        """Merge candidates ids [B, C, n], scores [B, C] (-inf = none); keep the best K."""
        all_scores = torch.cat([self.scores, scores.to(self.scores.dtype)], dim=1)
        best, index = all_scores.topk(self.scores.shape[1], dim=1)
        all_ids = torch.cat([self.ids, ids], dim=1)
        self.ids = all_ids.gather(1, index[..., None].expand(-1, -1, all_ids.shape[2]))
        self.scores = best


def best_reachable(live: torch.Tensor, written: int, longest: int, length_penalty: float):
    """Upper bound [B] on the final score of any continuation of live beams [B, K].

    ``live`` holds sums of log-probabilities (<= 0) after ``written`` tokens; a finished
    hypothesis has between ``written + 1`` and ``longest`` tokens and a sum no larger.
    """
    length = longest if length_penalty > 0 else min(written + 1, longest)
    return live.max(dim=1).values / length**length_penalty


def select_beams(scores: torch.Tensor, beams: int, eos_local: int | None):
    """Split the best continuations [B, K, V] into finished and live ones.

    Returns (finished scores [B, K, V] with -inf where the candidate does not finish,
    live scores [B, K], live flat indices [B, K] into K*V).
    """
    batch, _, vocab = scores.shape
    flat = scores.view(batch, -1)
    width = min(2 * beams, flat.shape[1])
    top, index = flat.topk(width, dim=1)
    finished = torch.full_like(flat, NEG_INF)
    if eos_local is not None:
        ends = index % vocab == eos_local
        ranked = torch.arange(width, device=flat.device) < beams
        finished.scatter_(1, index, torch.where(ends & ranked, top, NEG_INF))
        top = top.masked_fill(ends, NEG_INF)
    live, order = top.topk(beams, dim=1)
    return finished.view_as(scores), live, index.gather(1, order)


@torch.no_grad()
def beam_search(
    state,
    prompt: torch.Tensor,
    modality: str,
    max_new_tokens: int,
    num_beams: int,
    first_position: int = 0,
    eos_id: int | None = None,
    min_new_tokens: int = 0,
    length_penalty: float = 1.0,
    repetition_penalty: float = 1.0,
    pad_id: int = 0,
) -> BeamPool:
    """The ``num_beams`` best continuations of each prompt row, best first.

    Args:
        state: a fresh :class:`~.generation.DecoderState` over the B inputs (or anything
            with its ``step``, ``reorder`` and ``id_range``).
        prompt: [B, P] global ids, fed at positions ``first_position`` onwards.
        modality: which ids may be written (``'text'`` or ``'image'``).
        max_new_tokens, min_new_tokens, eos_id: as in :func:`~.generation.generate`.
        length_penalty: exponent of the length normalisation (0 = plain log-probability).
        repetition_penalty: CTRL's penalty over prompt + hypothesis (1.0 = off).
        pad_id: fills hypotheses after their EOS.

    Returns:
        A :class:`BeamPool`: ids [B, K, max_new_tokens] (global ids, padded after EOS) and
        scores [B, K] (-inf for slots no hypothesis reached).
    """
    if max_new_tokens < 1 or num_beams < 1:
        raise ValueError(f'need max_new_tokens, num_beams >= 1, got {max_new_tokens}, {num_beams}')
    batch, beams = len(prompt), num_beams
    check_eos(eos_id, state.id_range(modality))
    start = state.id_range(modality)[0]
    eos_local = None if eos_id is None else eos_id - start
    sampling = SamplingConfig(repetition_penalty=repetition_penalty)
    logits, sequence, positions = start_decoding(state, prompt, modality, first_position, beams)
    pool = BeamPool.empty(batch, beams, max_new_tokens, pad_id, prompt.device)
    written = torch.full((batch, beams, max_new_tokens), pad_id, device=prompt.device)
    live = torch.full((batch, beams), NEG_INF, device=prompt.device)
    live[:, 0] = 0.0  # the K copies of the prompt are one hypothesis
    base = torch.arange(batch, device=prompt.device)[:, None] * beams
    for step in range(max_new_tokens):
        logits = process_logits(logits, sequence, step, sampling, start, eos_id, min_new_tokens)
        scores = live[..., None] + logits.float().log_softmax(-1).view(batch, beams, -1)
        finished, live, chosen = select_beams(scores, beams, eos_local)
        if eos_local is not None:
            ended = written.clone()
            ended[:, :, step] = eos_id
            pool.add(ended, finished[..., eos_local] / (step + 1) ** length_penalty)
        rows = (base + chosen // scores.shape[-1]).view(-1)
        token = (chosen % scores.shape[-1] + start).view(-1)
        written = written.view(batch * beams, -1)[rows].view(batch, beams, -1)
        written[:, :, step] = token.view(batch, beams)
        sequence = torch.cat([sequence[rows], token[:, None]], dim=1)
        reachable = best_reachable(live, step + 1, max_new_tokens, length_penalty)
        if step + 1 == max_new_tokens or bool((reachable <= pool.scores[:, -1]).all()):
            break
        state.reorder(rows)
        logits = state.step(token[:, None], positions[-1:] + step + 1, modality)
    if step + 1 == max_new_tokens:
        pool.add(written, live / max_new_tokens**length_penalty)
    return pool
