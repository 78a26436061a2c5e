"""Cached autoregressive decoding restricted to one modality (greedy or sampling).

The encoder runs once per input; the decoder's cross-attention keys/values are computed
once and stored once per input; each step feeds only the newest token and writes its
self-attention keys/values into preallocated buffers. Many samples (or beams)
of one input share its encoder output and its cross-attention keys/values: only the
self-attention cache has a row per hypothesis (copied after the prompt step, gathered when
beams are reordered); nothing is encoded twice. Beam search (:mod:`.beam_search`) builds on
the same step function and logit processing.

Classifier-free guidance (painting): :class:`GuidedDecoderState` steps a second state whose
encoder saw an empty caption and mixes the two next-token distributions.

Lengths: the engine counts *new* tokens (EOS included); :class:`GenerationConfig` turns a
user's ``max_length``/``min_length`` into new-token counts, with or without the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .attention import KeyValueCache


@dataclass
class SamplingConfig:
    """How the next token is chosen: greedy when ``do_sample`` is False.

    ``temperature`` divides the logits; ``top_k`` keeps the k best; ``top_p`` keeps the
    smallest set whose probability reaches p. ``repetition_penalty`` (CTRL, also applied
    when greedy) divides positive and multiplies negative logits of every id already in the
    sequence, prompt included; 1.0 turns it off.
    """

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0


@dataclass
class GenerationConfig:
    """Every option of one generation call (the keyword arguments of :mod:`davinci_zoo.apis`).

    Args:
        max_length: most tokens to write; None = the caller's default. Paintings always
            have the h*w codes of the code grid and take no length limits.
        min_length: EOS is forbidden until this many tokens are written.
        count_prompt: False (default): both limits count new tokens only (EOS included).
            True: they also count the decoder prompt ([CLS] and a text prompt), as the
            original's Hugging Face ``generate`` did (its captioning ``max_length=20``,
            ``min_length=5`` include the 4 tokens of ``[CLS] a picture of``).
        num_beams: beam search when > 1 (see :func:`.beam_search.beam_search`).
        length_penalty: beam scores are sum log-prob / (new tokens) ** length_penalty.
        do_sample, temperature, top_k, top_p, repetition_penalty: see
            :class:`SamplingConfig`.
        seed: seeds a ``torch.Generator`` for sampling, so a call repeats exactly; None
            draws from torch's global generator.
        guidance_scale: classifier-free guidance when painting (1.0 = off): next-token
            log-probabilities are log p(.|empty) + s * (log p(.|caption) - log p(.|empty)).
            Needs a model trained with caption dropout (PrefixImage ``caption_dropout``).
    """

    max_length: int | None = None
    min_length: int = 0
    count_prompt: bool = False
    num_beams: int = 1
    length_penalty: float = 1.0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    guidance_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise ValueError(f'num_beams must be at least 1, got {self.num_beams}')
        if self.num_beams > 1 and self.do_sample:
            raise ValueError('beam search is deterministic: use num_beams > 1 or do_sample')
        if self.temperature <= 0 or self.repetition_penalty <= 0:
            raise ValueError('temperature and repetition_penalty must be positive')
        if self.guidance_scale < 0:
            raise ValueError(f'guidance_scale must be >= 0 (1.0 = off), got {self.guidance_scale}')
        if not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError(f'need 0 < top_p <= 1 and top_k >= 0, got {self.top_p}, {self.top_k}')

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(
            self.do_sample, self.temperature, self.top_k, self.top_p, self.repetition_penalty
        )

    def generator(self, device) -> torch.Generator | None:
        """A generator seeded with :attr:`seed` on ``device`` (None without a seed)."""
        if self.seed is None:
            return None
        return torch.Generator(device=device).manual_seed(self.seed)

    def new_token_limits(self, prompt_length: int, default_max: int) -> tuple[int, int]:
        """(max new tokens, min new tokens) after a decoder prompt of ``prompt_length`` tokens.

        ``default_max`` (new tokens) applies when :attr:`max_length` is None.
        """
        counted = prompt_length if self.count_prompt else 0
        longest = default_max if self.max_length is None else self.max_length - counted
        shortest = self.min_length - counted
        if longest < 1:
            note = f' (it counts the {prompt_length} prompt tokens)' if counted else ''
            raise ValueError(f'max_length {self.max_length} leaves no room for new tokens{note}')
        return longest, max(0, min(shortest, longest))


def penalize_repetition(
    logits: torch.Tensor, seen: torch.Tensor, penalty: float, start: int
) -> torch.Tensor:
    """CTRL's repetition penalty on logits [N, V] over the ids start..start+V-1.

    ``seen`` [N, L] holds the global ids already in each row's sequence (prompt included);
    ids outside the logits' range are ignored. A seen id's logit is divided by ``penalty``
    when positive and multiplied by it when negative. Returns a new tensor.
    """
    if penalty == 1.0 or seen.shape[1] == 0:
        return logits
    local = seen - start
    inside = (local >= 0) & (local < logits.shape[-1])
    counts = torch.zeros_like(logits).scatter_add_(
        1, local.clamp(0, logits.shape[-1] - 1), inside.to(logits.dtype)
    )
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(counts > 0, penalized, logits)


def check_eos(eos_id: int | None, id_range: tuple[int, int]) -> None:
    """Raise ValueError unless ``eos_id`` is None or one of the ids [start, end) being written."""
    if eos_id is not None and not id_range[0] <= eos_id < id_range[1]:
        raise ValueError(
            f'eos_id {eos_id} cannot be written: ids run from {id_range[0]} to {id_range[1] - 1}'
        )


def process_logits(
    logits: torch.Tensor,
    seen: torch.Tensor,
    step: int,
    sampling: SamplingConfig,
    start: int,
    eos_id: int | None,
    min_new_tokens: int,
) -> torch.Tensor:
    """Repetition penalty, then EOS forbidden before ``min_new_tokens`` (logits [N, V])."""
    logits = penalize_repetition(logits, seen, sampling.repetition_penalty, start)
    if eos_id is not None and step < min_new_tokens:
        logits = logits.clone()
        logits[:, eos_id - start] = float('-inf')
    return logits


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
    """The decoder's caches for N hypotheses (rows): memory keys/values and the past.

    The memory is stored once per input, not per row: ``memory_kv`` per layer [M, H, S, d]
    and ``memory_mask`` [M, S], where rows r*g .. r*g + g - 1 (g = N / M) all read memory
    row r (an input's samples or beams; cross-attention groups their queries). ``cache``
    holds the self-attention keys/values of the fed positions in preallocated buffers
    (:class:`~.attention.KeyValueCache`); ``max_length`` (prompt + new tokens, if known)
    sizes them once, else they grow by doubling.
    """

    def __init__(
        self,
        model,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        max_length: int | None = None,
    ) -> None:
        self.model = model
        self.memory_kv = model.decoder.memory_keys_values(memory)
        self.memory_mask = memory_mask
        self.rows = len(memory)
        self.cache = KeyValueCache(len(model.decoder.layers), max_length or 0)

    @property
    def past(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Per layer self-attention (keys, values) [N, H, t, d] after t fed positions (views)."""
        if self.cache.length == 0:
            return None
        return [self.cache.layer(index) for index in range(self.cache.num_layers)]

    def id_range(self, modality: str) -> tuple[int, int]:
        """[start, end) of the global ids ``modality`` may produce."""
        return self.model.vocab.id_range(modality)

    def step(self, ids: torch.Tensor, positions: torch.Tensor, modality: str) -> torch.Tensor:
        """Feed ids [N, L] at positions [L]; return the last position's logits [N, V_m]."""
        hidden, _ = self.model.decoder(
            ids, positions, self.memory_kv, self.memory_mask, past=self.cache
        )
        return self.model.decoder.head(hidden[:, -1], self.id_range(modality))

    def reorder(self, index: torch.Tensor) -> None:
        """Keep (or repeat) rows ``index`` [N'] of every cache (beams, many samples per input).

        Only the self-attention cache is gathered when every input's new rows still follow
        one another in equal numbers (copies of an input's row, beams chosen among the beams
        of the same input): the shared memory stays as it is. Any other order (rows dropped
        or moved between inputs) gives every row its own copy of its memory.
        """
        owner = index // (self.rows // len(self.memory_mask))  # the memory row of each row
        if not keeps_groups(owner, len(self.memory_mask)):
            self.memory_kv = [(k[owner], v[owner]) for k, v in self.memory_kv]
            self.memory_mask = self.memory_mask[owner]
        self.cache.reorder(index)
        self.rows = len(index)


def keeps_groups(owner: torch.Tensor, groups: int) -> bool:
    """Whether ``owner`` [N'] is 0 .. groups-1, each repeated N' / groups times in a row."""
    if not len(owner) or len(owner) % groups:
        return False
    expected = torch.arange(groups, device=owner.device).repeat_interleave(len(owner) // groups)
    return torch.equal(owner, expected)


class GuidedDecoderState:
    """Classifier-free guidance over two states with the same rows: ``conditional`` (the
    encoder read the caption) and ``unconditional`` (it read an empty caption).

    ``step`` returns log p_u + scale * (log p_c - log p_u) [N, V_m] (log-softmax of each
    state's logits over the modality's ids); ``reorder`` applies to both states.
    """

    def __init__(self, conditional: DecoderState, unconditional: DecoderState, scale: float):
        if conditional.rows != unconditional.rows:
            raise ValueError('guided decoding needs as many unconditional rows as conditional')
        self.conditional, self.unconditional, self.scale = conditional, unconditional, scale

    @property
    def rows(self) -> int:
        return self.conditional.rows

    def id_range(self, modality: str) -> tuple[int, int]:
        return self.conditional.id_range(modality)

    def step(self, ids: torch.Tensor, positions: torch.Tensor, modality: str) -> torch.Tensor:
        """Feed ids [N, L] at positions [L] to both states; guided log-probabilities [N, V_m]."""
        conditional = self.conditional.step(ids, positions, modality).log_softmax(-1)
        unconditional = self.unconditional.step(ids, positions, modality).log_softmax(-1)
        return unconditional + self.scale * (conditional - unconditional)

    def reorder(self, index: torch.Tensor) -> None:
        self.conditional.reorder(index)
        self.unconditional.reorder(index)


@dataclass
class Guidance:
    """The unconditional encoder output for classifier-free guidance: ``memory`` [B, S', D],
    ``memory_mask`` [B, S'] (an empty caption per input) and the guidance ``scale``."""

    memory: torch.Tensor
    memory_mask: torch.Tensor
    scale: float


def decoder_state(
    model,
    memory: torch.Tensor,
    memory_mask: torch.Tensor,
    max_length: int | None = None,
    guidance: Guidance | None = None,
) -> DecoderState | GuidedDecoderState:
    """A fresh state over ``memory`` [B, S, D]; guided by ``guidance`` when it is given."""
    state = DecoderState(model, memory, memory_mask, max_length)
    if guidance is None:
        return state
    unconditional = DecoderState(model, guidance.memory, guidance.memory_mask, max_length)
    return GuidedDecoderState(state, unconditional, guidance.scale)


def start_decoding(
    state, prompt: torch.Tensor, modality: str, first_position: int, copies: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Feed prompt [B, P] once, then repeat every row ``copies`` times (row b*copies + j).

    Returns (logits [B*copies, V_m] for the first new token, the repeated prompt
    [B*copies, P], the prompt's positions [P]).
    """
    positions = first_position + torch.arange(prompt.shape[1], device=prompt.device)
    logits = state.step(prompt, positions, modality)
    if copies > 1:
        rows = torch.arange(len(prompt), device=prompt.device).repeat_interleave(copies)
        state.reorder(rows)
        logits, prompt = logits[rows], prompt[rows]
    return logits, prompt, positions


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
    samples_per_row: int = 1,
    guidance: Guidance | None = None,
) -> torch.Tensor:
    """Continue ``prompt`` [B, P] (global ids) by up to ``max_new_tokens`` ids of ``modality``.

    Returns the new ids [B * samples_per_row, n] (global ids; row b * samples_per_row + j is
    sample j of input b; rows that ended early are padded with ``model.vocab.pad_id`` after
    their EOS). ``memory`` [B, S, D] and ``memory_mask`` [B, S] are the encoder's output,
    ``first_position`` is the decoder position of the prompt's first token and
    ``min_new_tokens`` forbids EOS before that many new tokens; ``guidance`` turns on
    classifier-free guidance.
    """
    sampling = sampling or SamplingConfig()
    check_eos(eos_id, model.vocab.id_range(modality))
    start = model.vocab.id_range(modality)[0]
    state = decoder_state(model, memory, memory_mask, prompt.shape[1] + max_new_tokens, guidance)
    logits, sequence, positions = start_decoding(
        state, prompt, modality, first_position, samples_per_row
    )
    finished = torch.zeros(len(sequence), dtype=torch.bool, device=prompt.device)
    produced = []
    for step in range(max_new_tokens):
        logits = process_logits(logits, sequence, step, sampling, start, eos_id, min_new_tokens)
        token = choose(logits, sampling, generator) + start
        token = token.masked_fill(finished, model.vocab.pad_id)
        produced.append(token)
        sequence = torch.cat([sequence, token[:, None]], dim=1)
        if eos_id is not None:
            finished |= token == eos_id
            if finished.all():
                break
        if step + 1 < max_new_tokens:
            position = positions[-1:] + step + 1
            logits = state.step(token[:, None], position, modality)
    return torch.stack(produced, dim=1)
