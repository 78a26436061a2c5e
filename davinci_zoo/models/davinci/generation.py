"""Cached autoregressive decoding restricted to one modality (greedy or sampling).

The encoder runs once per input; the decoder's cross-attention keys/values are computed
once; each step feeds only the newest token and appends its self-attention keys/values to a
cache (DESIGN.md 4). Beam search builds on the same step function.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SamplingConfig:
    """How the next token is chosen: greedy when ``do_sample`` is False.

    ``temperature`` divides the logits; ``top_k`` keeps the k best; ``top_p`` keeps the
    smallest set whose probability reaches p.
    """

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0


def filter_logits(logits: torch.Tensor, config: SamplingConfig) -> torch.Tensor:
    """Apply temperature, top-k and top-p to logits [N, V] (returns a new tensor)."""
    logits = logits / max(config.temperature, 1e-6)
    if config.top_k and config.top_k < logits.shape[-1]:
        kth = torch.topk(logits, config.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float('-inf'))
    if config.top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative - ordered.softmax(-1) >= config.top_p  # keep the first token always
        logits = logits.scatter(-1, order, ordered.masked_fill(drop, float('-inf')))
    return logits


def choose(
    logits: torch.Tensor, config: SamplingConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """Next local ids [N] from logits [N, V]."""
    if not config.do_sample:
        return logits.argmax(-1)
    probabilities = filter_logits(logits, config).softmax(-1)
    return torch.multinomial(probabilities, 1, generator=generator)[:, 0]


class DecoderState:
    """The decoder's cache for a batch: memory keys/values and the self-attention past."""

    def __init__(self, model, memory: torch.Tensor, memory_mask: torch.Tensor) -> None:
        self.model = model
        self.memory_kv = model.decoder.memory_keys_values(memory)
        self.memory_mask = memory_mask
        self.past = None

    def step(self, ids: torch.Tensor, positions: torch.Tensor, modality: str) -> torch.Tensor:
        """Feed ids [N, L] at positions [L]; return the last position's logits [N, V_m]."""
        hidden, self.past = self.model.decoder(
            ids, positions, self.memory_kv, self.memory_mask, past=self.past
        )
        return self.model.decoder.head(hidden[:, -1], self.model.vocab.id_range(modality))

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows ``index`` [N'] of every cache (beam search, finished rows)."""
        self.memory_kv = [(k[index], v[index]) for k, v in self.memory_kv]
        self.memory_mask = self.memory_mask[index]
        self.past = [(k[index], v[index]) for k, v in self.past]


@torch.no_grad()
def generate(
    model,
    memory: torch.Tensor,
    memory_mask: torch.Tensor,
    prompt: torch.Tensor,
    modality: str,
    max_new_tokens: int,
    first_position: int = 0,
    eos_id: int | None = None,
    min_new_tokens: int = 0,
    sampling: SamplingConfig | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Continue ``prompt`` [N, P] (global ids) by up to ``max_new_tokens`` ids of ``modality``.

    Returns the new ids [N, n] (global ids; rows that ended early are padded with
    ``model.vocab.pad_id`` after their EOS). ``first_position`` is the decoder position of
    the prompt's first token; ``min_new_tokens`` forbids EOS before that many new tokens.
    """
    sampling = sampling or SamplingConfig()
    start = model.vocab.id_range(modality)[0]
    state = DecoderState(model, memory, memory_mask)
    positions = first_position + torch.arange(prompt.shape[1], device=prompt.device)
    logits = state.step(prompt, positions, modality)
    finished = torch.zeros(len(prompt), dtype=torch.bool, device=prompt.device)
    produced = []
    for step in range(max_new_tokens):
        if eos_id is not None and step < min_new_tokens:
            logits[:, eos_id - start] = float('-inf')
        token = choose(logits, sampling, generator) + start
        token = token.masked_fill(finished, model.vocab.pad_id)
        produced.append(token)
        if eos_id is not None:
            finished |= token == eos_id
            if finished.all():
                break
        if step + 1 < max_new_tokens:
            position = positions[-1:] + step + 1
            logits = state.step(token[:, None], position, modality)
    return torch.stack(produced, dim=1)
