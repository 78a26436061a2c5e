"""Decoding speed of a DaVinci decoder: our engine, the same without caches, Hugging Face BERT.

Three decoders hold the same weights (a DaVinci built from a config, seeded random init):

- ``ours``: :mod:`davinci_zoo.models.davinci.generation` (and ``.beam_search``): encoder
  output and cross-attention keys/values computed and stored once per input (shared by its
  beams or samples), a preallocated incremental self-attention cache written in place,
  logits only over the active modality's ids, many samples of one input from one prompt step;
- ``ours_uncached``: the same model and search, but every step re-runs the decoder over the
  whole prefix and recomputes the cross-attention keys/values (no caches), timed over the
  first ``uncached_steps`` tokens;
- ``hf``: transformers' ``BertLMHeadModel`` (``is_decoder``, ``add_cross_attention``; the
  original's decoder class) via ``generate(use_cache=True)``, receiving the encoder output
  and its mask at every step, with a logits processor that masks ids outside the modality.

Both tasks start from the real encoder: captioning from random images (+ ``[CLS]``), painting
from one caption. Tokens/s counts new tokens of the returned sequences (batch x tokens for
captioning, whatever the beam count; samples x codes for painting). A short greedy run first
checks that ``ours`` and ``hf`` produce the same tokens and the same step logits.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass

import torch

from ..models.davinci.generation import (
    DecoderState,
    SamplingConfig,
    choose,
    generate,
    start_decoding,
)
from ..models.davinci.vocabulary import IMAGE, TEXT

PAINT_CAPTION = 'a small red circle above a large blue square'
CHECK_CAPTIONS = [PAINT_CAPTION, 'a large green triangle left of a small yellow square']
LOGIT_ATOL = 1e-4


@dataclass
class GenerationSettings:
    """What one benchmark run measures (the defaults are the issue's settings)."""

    caption_batch: int = 8
    caption_tokens: int = 20
    beams: int = 2
    paint_samples: int = 16
    paint_tokens: int | None = None  # None: the full code grid
    uncached_steps: int = 64
    check_batch: int = 2
    check_tokens: int = 8
    repeats: int = 1
    seed: int = 0


# -- inputs ----------------------------------------------------------------------------------
@torch.no_grad()
def caption_memory(model, batch: int, generator: torch.Generator):
    """Encoder output of random images + ``[CLS]``: memory [B, S, D], mask [B, S]."""
    size = model.image_size
    images = torch.rand(batch, 3, size, size, generator=generator)
    ids, mask = model.tokenize([''] * batch)
    return model.encode(model.data_preprocessor.normalize(images), ids, mask)


@torch.no_grad()
def paint_memory(model, captions: list[str]):
    """Encoder output of captions: memory [B, T, D], mask [B, T]."""
    ids, mask = model.tokenize(captions, 30)
    return model.encode(None, ids, mask)


def prompt_of(model, modality: str, rows: int) -> torch.Tensor:
    """The decoder prompt [rows, 1]: ``[CLS]`` for text, the image BOS for paintings."""
    first = model.vocab.text_bos_id if modality == TEXT else model.vocab.image_bos_id
    return torch.full((rows, 1), first, dtype=torch.long)


# -- our engine, with and without caches ------------------------------------------------------
class UncachedState:
    """:class:`DecoderState`'s interface with every cache switched off.

    Each :meth:`step` appends the new ids and re-runs the decoder over the whole prefix,
    recomputing the cross-attention keys/values of the memory, as the original's own
    generators did (docs/original.md section 6). Rows: ids [N, t], memory [N, S, D],
    memory mask [N, S].
    """

    def __init__(self, model, memory: torch.Tensor, memory_mask: torch.Tensor) -> None:
        self.model, self.memory, self.memory_mask = model, memory, memory_mask
        self.ids: torch.Tensor | None = None
        self.positions: torch.Tensor | None = None

    def id_range(self, modality: str) -> tuple[int, int]:
        return self.model.vocab.id_range(modality)

    def step(self, ids: torch.Tensor, positions: torch.Tensor, modality: str) -> torch.Tensor:
        """Feed ids [N, L] at positions [L]; -> the last position's logits [N, V_m]."""
        self.ids = ids if self.ids is None else torch.cat([self.ids, ids], dim=1)
        self.positions = (
            positions if self.positions is None else torch.cat([self.positions, positions])
        )
        decoder = self.model.decoder
        memory_kv = decoder.memory_keys_values(self.memory)
        hidden, _ = decoder(self.ids, self.positions, memory_kv, self.memory_mask)
        return decoder.head(hidden[:, -1], self.id_range(modality))

    def reorder(self, index: torch.Tensor) -> None:
        self.memory, self.memory_mask = self.memory[index], self.memory_mask[index]
        self.ids = self.ids[index]


@torch.no_grad()
def uncached_generate(model, memory, mask, prompt, modality, tokens, sampling, generator, copies):
    """:func:`generate` (no EOS) through :class:`UncachedState`: ids [B * copies, tokens]."""
    start = model.vocab.id_range(modality)[0]
    state = UncachedState(model, memory, mask)
    logits, _, positions = start_decoding(state, prompt, modality, 0, copies)
    produced = []
    for step in range(tokens):
        produced.append(choose(logits, sampling, generator) + start)
        if step + 1 < tokens:
            logits = state.step(produced[-1][:, None], positions[-1:] + step + 1, modality)
    return torch.stack(produced, dim=1)


@torch.no_grad()
def ours_caption(model, memory, mask, tokens: int, beams: int, cached: bool = True):
    """Caption ids [B, tokens] (beam search when beams > 1, else greedy; no EOS stop)."""
    prompt = prompt_of(model, TEXT, len(memory))
    if beams == 1:
        if cached:
            return generate(model, memory, mask, prompt, TEXT, tokens)
        greedy = SamplingConfig()
        return uncached_generate(model, memory, mask, prompt, TEXT, tokens, greedy, None, 1)
    from ..models.davinci.beam_search import beam_search

    if cached:
        state = DecoderState(model, memory, mask, prompt.shape[1] + tokens)
    else:
        state = UncachedState(model, memory, mask)
    pool = beam_search(state, prompt, TEXT, tokens, beams, pad_id=model.vocab.pad_id)
    return pool.ids[:, 0]


@torch.no_grad()
def ours_paint(model, memory, mask, tokens: int, samples: int, seed: int, cached: bool = True):
    """``samples`` sampled paintings of one memory [1, T, D]: ids [samples, tokens]."""
    prompt, sampling = prompt_of(model, IMAGE, 1), SamplingConfig(do_sample=True)
    generator = torch.Generator().manual_seed(seed)
    if not cached:
        return uncached_generate(
            model, memory, mask, prompt, IMAGE, tokens, sampling, generator, samples
        )
    return generate(
        model,
        memory,
        mask,
        prompt,
        IMAGE,
        tokens,
        sampling=sampling,
        generator=generator,
        samples_per_row=samples,
    )


# -- Hugging Face ------------------------------------------------------------------------------
@torch.no_grad()
def hf_generate(hf, model, memory, mask, prompt, modality: str, tokens: int, **options):
    """transformers ``generate`` restricted to ``modality``; -> its output (dict)."""
    from transformers import LogitsProcessorList

    from .hf_reference import AllowedIdRange

    return hf.generate(
        input_ids=prompt,
        encoder_hidden_states=memory,
        encoder_attention_mask=mask,
        max_new_tokens=tokens,
        logits_processor=LogitsProcessorList([AllowedIdRange(*model.vocab.id_range(modality))]),
        eos_token_id=None,
        pad_token_id=model.vocab.pad_id,
        use_cache=True,
        return_dict_in_generate=True,
        **options,
    )


def hf_caption(hf, model, memory, mask, tokens: int, beams: int):
    prompt = prompt_of(model, TEXT, len(memory))
    out = hf_generate(hf, model, memory, mask, prompt, TEXT, tokens, num_beams=beams)
    return out.sequences[:, 1:]


def hf_paint(hf, model, memory, mask, tokens: int, samples: int, seed: int):
    torch.manual_seed(seed)  # transformers samples from torch's global generator
    sampling = dict(do_sample=True, top_k=0, top_p=1.0, temperature=1.0)
    prompt = prompt_of(model, IMAGE, 1)
    out = hf_generate(
        hf, model, memory, mask, prompt, IMAGE, tokens, num_return_sequences=samples, **sampling
    )
    return out.sequences[:, 1:]


# -- equality ---------------------------------------------------------------------------------
@contextlib.contextmanager
def recorded(module, hook_kind: str, hook):
    """Register a forward (pre-)hook on ``module`` for the duration of the block."""
    if hook_kind == 'pre':
        handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    else:
        handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def compare_greedy(model, hf, memory, mask, modality: str, tokens: int) -> dict:
    """Greedy ``tokens`` steps of ours and of ``hf`` from the same memory [B, S, D].

    Returns the tokens' equality, the largest step-logit difference over the modality's ids,
    and whether every call of ``hf`` received the encoder output and its mask.
    """
    ours_logits, hf_calls = [], []
    prompt = prompt_of(model, modality, len(memory))
    with recorded(model.decoder.head, 'post', lambda m, i, out: ours_logits.append(out)):
        ours = generate(model, memory, mask, prompt, modality, tokens)

    def see_call(module, args, kwargs):
        states = kwargs.get('encoder_hidden_states')
        states_mask = kwargs.get('encoder_attention_mask')
        given = states is not None and states_mask is not None
        hf_calls.append(given and len(states) == len(states_mask) == len(kwargs['input_ids']))

    with recorded(hf, 'pre', see_call):
        out = hf_generate(hf, model, memory, mask, prompt, modality, tokens, output_logits=True)
    start, end = model.vocab.id_range(modality)
    theirs = torch.stack([step[:, start:end] for step in out.logits], dim=1)
    mine = torch.stack(ours_logits, dim=1)
    difference = float((mine - theirs).abs().max())
    tokens_equal = bool(torch.equal(ours, out.sequences[:, 1:]))
    return dict(
        modality=modality,
        batch=len(memory),
        steps=tokens,
        tokens_equal=tokens_equal,
        max_abs_logit_diff=difference,
        hf_calls=len(hf_calls),
        hf_got_encoder_states_every_call=bool(hf_calls) and all(hf_calls),
        passed=tokens_equal and difference <= LOGIT_ATOL and all(hf_calls),
    )


# -- timing -----------------------------------------------------------------------------------
def best_seconds(function, repeats: int, warm_up=None) -> float:
    """The fastest of ``repeats`` timed calls of ``function``, after one ``warm_up()`` call
    (default: one untimed call of ``function``)."""
    (warm_up or function)()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def tokens_per_s(count: int, seconds: float) -> float:
    return count / seconds


def time_captioning(model, hf, settings: GenerationSettings, memory, mask) -> dict:
    """Tokens/s of the three decoders writing ``caption_tokens`` per image."""
    n, beams, repeats = settings.caption_tokens, settings.beams, settings.repeats
    steps = min(settings.uncached_steps, n)
    seconds = dict(
        ours=best_seconds(
            lambda: ours_caption(model, memory, mask, n, beams),
            repeats,
            lambda: ours_caption(model, memory, mask, 2, beams),
        ),
        ours_uncached=best_seconds(
            lambda: ours_caption(model, memory, mask, steps, beams, cached=False),
            repeats,
            lambda: ours_caption(model, memory, mask, 2, beams, cached=False),
        ),
        hf=best_seconds(
            lambda: hf_caption(hf, model, memory, mask, n, beams),
            repeats,
            lambda: hf_caption(hf, model, memory, mask, 2, beams),
        ),
    )
    rows = len(memory)
    speed = dict(
        ours=tokens_per_s(rows * n, seconds['ours']),
        ours_uncached=tokens_per_s(rows * steps, seconds['ours_uncached']),
        hf=tokens_per_s(rows * n, seconds['hf']),
    )
    return dict(
        batch=rows,
        new_tokens=n,
        beams=beams,
        search='beam search' if beams > 1 else 'greedy',
        memory_tokens=memory.shape[1],
        uncached_steps=steps,
        seconds=seconds,
        tokens_per_s=speed,
        speedup_vs_hf=speed['ours'] / speed['hf'],
        speedup_vs_uncached=speed['ours'] / speed['ours_uncached'],
        target_speedup_vs_hf=1.2,
        meets_target=speed['ours'] / speed['hf'] >= 1.2,
    )


def time_painting(model, hf, settings: GenerationSettings, memory, mask) -> dict:
    """Tokens/s of the three decoders sampling ``paint_samples`` paintings of one caption."""
    grid = model.vocab.code_grid[0] * model.vocab.code_grid[1]
    n = min(settings.paint_tokens or grid, grid)
    samples, repeats, seed = settings.paint_samples, settings.repeats, settings.seed
    steps = min(settings.uncached_steps, n)
    seconds = dict(
        ours=best_seconds(
            lambda: ours_paint(model, memory, mask, n, samples, seed),
            repeats,
            lambda: ours_paint(model, memory, mask, 2, samples, seed),
        ),
        ours_uncached=best_seconds(
            lambda: ours_paint(model, memory, mask, steps, samples, seed, cached=False),
            repeats,
            lambda: ours_paint(model, memory, mask, 2, samples, seed, cached=False),
        ),
        hf=best_seconds(
            lambda: hf_paint(hf, model, memory, mask, n, samples, seed),
            repeats,
            lambda: hf_paint(hf, model, memory, mask, 2, samples, seed),
        ),
    )
    speed = dict(
        ours=tokens_per_s(samples * n, seconds['ours']),
        ours_uncached=tokens_per_s(samples * steps, seconds['ours_uncached']),
        hf=tokens_per_s(samples * n, seconds['hf']),
    )
    return dict(
        samples=samples,
        new_tokens=n,
        code_grid=list(model.vocab.code_grid),
        sampling=dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0),
        caption=PAINT_CAPTION,
        memory_tokens=memory.shape[1],
        uncached_steps=steps,
        seconds=seconds,
        tokens_per_s=speed,
        speedup_vs_hf=speed['ours'] / speed['hf'],
        speedup_vs_uncached=speed['ours'] / speed['ours_uncached'],
        target_speedup_vs_hf=1.5,
        meets_target=speed['ours'] / speed['hf'] >= 1.5,
    )


# -- the whole run ------------------------------------------------------------------------------
def model_summary(model) -> dict:
    layer = model.decoder.layers[0]
    return dict(
        hidden_size=layer.attention.self.query.in_features,
        num_heads=layer.attention.self.num_heads,
        intermediate_size=layer.intermediate.dense.out_features,
        decoder_layers=len(model.decoder.layers),
        vocab_size=model.vocab.size,
        text_vocab_size=model.vocab.text_size,
        visual_vocab_size=model.vocab.codebook_size,
        decoder_positions=model.decoder.embeddings.max_positions,
        decoder_parameters=sum(p.numel() for p in model.decoder.parameters()),
    )


def run_generation_benchmark(model, settings: GenerationSettings) -> dict:
    """Equality check, then captioning and painting timings; -> the JSON-ready result."""
    import transformers

    from .hf_reference import build_hf_decoder

    model = model.eval()
    hf = build_hf_decoder(model)
    generator = torch.Generator().manual_seed(settings.seed)
    check_memory, check_mask = caption_memory(model, settings.check_batch, generator)
    check_paint, check_paint_mask = paint_memory(model, CHECK_CAPTIONS)
    checks = [
        compare_greedy(model, hf, check_memory, check_mask, TEXT, settings.check_tokens),
        compare_greedy(model, hf, check_paint, check_paint_mask, IMAGE, settings.check_tokens),
    ]
    paint_mem, paint_mask = paint_memory(model, [PAINT_CAPTION])
    memory, mask = caption_memory(model, settings.caption_batch, generator)
    return dict(
        mode='generation',
        settings=dict(
            asdict(settings),
            threads=torch.get_num_threads(),
            torch=torch.__version__,
            transformers=transformers.__version__,
            dtype=str(next(model.parameters()).dtype).replace('torch.', ''),
            device='cpu',
            weights='random init (seeded)',
            eos='none: every sequence runs to its token count',
            tokens_per_s='new tokens of returned sequences / seconds (beams not multiplied)',
        ),
        model=model_summary(model),
        equality_check=dict(
            checks=checks, atol=LOGIT_ATOL, passed=all(c['passed'] for c in checks)
        ),
        captioning=time_captioning(model, hf, settings, memory, mask),
        painting=time_painting(model, hf, settings, paint_mem, paint_mask),
    )


def build_random_model(
    config_path: str,
    seed: int = 0,
    hidden_size: int | None = None,
    num_heads: int | None = None,
    intermediate_size: int | None = None,
    layers: int | None = None,
):
    """The config's DaVinci with seeded random weights (no checkpoint or pretrained trunk
    is read); the options shrink it (``layers`` sets encoder and decoder layers). Our 2-D
    decoder position options are switched off: the Hugging Face BERT holds the original's
    decoder, which has neither."""
    from ..cli import UserError, load_config
    from ..registry import MODELS

    cfg = load_config(config_path)
    if 'model' not in cfg:
        raise UserError(f'config {config_path} has no model')
    model_cfg = cfg.model
    for part, key in (('image_tokenizer', 'checkpoint'), ('image_embedder', 'pretrained')):
        if key in (model_cfg.get(part) or {}):
            model_cfg[part][key] = None
    overrides = dict(
        hidden_size=hidden_size,
        num_heads=num_heads,
        intermediate_size=intermediate_size,
        encoder_layers=layers,
        decoder_layers=layers,
    )
    model_cfg.update({key: value for key, value in overrides.items() if value is not None})
    model_cfg.update(image_grid_embeddings=False, painting_relative_bias=False)
    model_cfg.update(image_embedding_init='normal')  # the tokenizer's weights are not read
    torch.manual_seed(seed)
    return MODELS.build(model_cfg).eval()
