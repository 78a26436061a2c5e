"""The generation engine: cached steps, beam search, sampling controls, completion, re-ranking.

Beam search is held to exhaustive enumeration twice: on a stub decoder whose next-token
distribution depends on its row's whole history (EOS, length penalty, minimum length and
repetition penalty all in play, scored by hand), and on the real model painting a 2x2 code
grid from a 3-entry codebook (scored by teacher forcing). Completion is held to the
PrefixImage objective it mirrors, the likelihood scorer to a hand-rolled token-by-token sum.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from test_davinci_model import (
    CAPTIONS,
    CODEBOOK,
    SCENES,
    TEXT_VOCAB,
    VOCAB,
    build_model,
    record,
    scramble,
    spy,
    texts,
)

from davinci_zoo.datasets.mixing import mixed_collate
from davinci_zoo.models.data_preprocessor import DaVinciDataPreprocessor
from davinci_zoo.models.davinci import inference
from davinci_zoo.models.davinci.beam_search import beam_search
from davinci_zoo.models.davinci.generation import (
    DecoderState,
    GenerationConfig,
    GuidedDecoderState,
    SamplingConfig,
    generate,
    penalize_repetition,
    start_decoding,
)
from davinci_zoo.models.davinci.objectives import PrefixImage
from davinci_zoo.models.davinci.vocabulary import IMAGE, TEXT
from davinci_zoo.models.image_tokenizer import ImageTokenizer
from davinci_zoo.registry import IMAGE_TOKENIZERS, SCORERS

CLS, SEP, IMAGE_BOS = 101, 102, 2


@IMAGE_TOKENIZERS.register_module(force=True)
class PatchTokenizer(ImageTokenizer):
    """An exact test tokenizer: code c is patch c of a fixed codebook [K, 3, f, f].

    ``encode`` picks the nearest patch of each f x f cell, so an image tiled from codebook
    patches round-trips bitwise. The codebook is a buffer (saved with the model); tests fill it.
    """

    def __init__(self, codebook_size: int, downsample_factor: int = 4) -> None:
        super().__init__()
        self.codebook_size, self.downsample_factor = codebook_size, downsample_factor
        shape = (codebook_size, 3, downsample_factor, downsample_factor)
        self.register_buffer('codebook', torch.zeros(shape))

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, h, w, 3*f*f]."""
        f = self.downsample_factor
        cells = images.unfold(2, f, f).unfold(3, f, f)  # [B, 3, h, w, f, f]
        return cells.permute(0, 2, 3, 1, 4, 5).flatten(3)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.check_images(images)
        patches = self.patches(images)
        distances = torch.cdist(patches.flatten(0, 2), self.codebook.flatten(1))
        return distances.argmin(-1).view(patches.shape[:3])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        batch, height, width = codes.shape
        f = self.downsample_factor
        cells = self.codebook[codes]  # [B, h, w, 3, f, f]
        return cells.permute(0, 3, 1, 4, 2, 5).reshape(batch, 3, height * f, width * f)


def scene_batch(count=2) -> dict:
    """The first ``count`` scenes as the data preprocessor gives them to the model."""
    return DaVinciDataPreprocessor()(mixed_collate([SCENES[i] for i in range(count)]))


def scene_images(count=2):
    """(model-input images [B, 3, 32, 32], their captions)."""
    return scene_batch(count)['inputs']['images'], CAPTIONS[:count]


def scrambled_model(seed, **overrides):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(**overrides).eval()
    scramble(model.decoder, seed=seed)
    return model


def encoded_captions(model, captions):
    text_ids, text_mask = model.tokenize(captions)
    with torch.no_grad():
        return model.encode(None, text_ids, text_mask)


def reorder_and_step(state, owner, sequence, position, modality, token_range, generator):
    """Reshuffle the rows of ``state`` as beams are (with repeats), append one random token in
    ``token_range`` to each row and take one cached step at ``position`` [1].

    ``owner`` [R]: the input each row belongs to; ``sequence`` [R, L]: each row's tokens.
    Returns the step's logits [R, V] and the reordered ``owner`` and extended ``sequence``.
    """
    rows = len(owner)
    index = torch.randint(0, rows, (rows,), generator=generator)
    state.reorder(index)
    owner, sequence = owner[index], sequence[index]
    token = torch.randint(*token_range, (rows,), generator=generator)
    sequence = torch.cat([sequence, token[:, None]], dim=1)
    with torch.no_grad():
        logits = state.step(token[:, None], position, modality)
    return logits, owner, sequence


# --------------------------------------------------------------------------------------------
# 1. Cached steps = teacher forcing, through prompt, expansion and beam-style reordering
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    'options', [{}, dict(image_grid_embeddings=True), dict(painting_relative_bias=True)]
)
def test_cached_steps_equal_teacher_forcing_after_expansion_and_reordering(options):
    """Every step's logits equal the teacher-forced logits of the sequence its row now holds,
    while rows are copied per sample and reshuffled (with repeats) the way beams are (also
    with the 2-D position options, scrambled like every decoder weight)."""
    model = scrambled_model(seed=21, **options)
    generator = torch.Generator().manual_seed(22)
    memory = torch.randn(2, 9, 32, generator=generator)
    memory_mask = torch.ones(2, 9)
    memory_mask[1, 6:] = 0
    memory[1, 6:] = 100.0  # hidden keys must not count
    text_prompt = inference.text_prompt(model, 'a picture of', 2)
    tokens = model.text_tokenizer.tokens
    assert [tokens[i] for i in text_prompt[0].tolist()] == ['[CLS]', 'a', 'picture', 'of']
    image_prompt = torch.full((2, 1), IMAGE_BOS)
    for prompt, modality, first in ((text_prompt, TEXT, 0), (image_prompt, IMAGE, 24)):
        token_range = model.vocab.id_range(modality)
        state = DecoderState(model, memory, memory_mask)
        with torch.no_grad():
            logits, sequence, positions = start_decoding(state, prompt, modality, first, 3)
        owner = torch.arange(2).repeat_interleave(3)  # which input each row belongs to
        assert torch.equal(sequence, prompt[owner])
        for step in range(6):
            length = sequence.shape[1]
            with torch.no_grad():
                full = model.decoder_logits(
                    sequence,
                    first + torch.arange(length),
                    memory[owner],
                    memory_mask[owner],
                    modality,
                )
            torch.testing.assert_close(logits, full[:, -1], atol=1e-5, rtol=0)
            logits, owner, sequence = reorder_and_step(
                state, owner, sequence, positions[-1:] + step + 1, modality, token_range, generator
            )


def test_a_text_prompt_is_continued_greedily():
    model = scrambled_model(seed=23)
    images, _ = scene_images()
    written = inference.write_texts(model, images, GenerationConfig(max_length=6), 'a picture of')
    empty_ids, empty_mask = model.tokenize(['', ''])
    prompt = inference.text_prompt(model, 'a picture of', 2)
    with torch.no_grad():
        memory, memory_mask = model.encode(images, empty_ids, empty_mask)
        ids = generate(model, memory, memory_mask, prompt, TEXT, 6, eos_id=SEP)
        sequence = torch.cat([prompt, ids], 1)
        full = model.decoder_logits(sequence, torch.arange(10), memory, memory_mask, TEXT)
    assert torch.equal(full[:, 3:-1].argmax(-1), ids)  # prompt at positions 0-3, then ids
    assert written == [model.text_tokenizer.decode(row) for row in ids.tolist()]
    assert written[0] and not written[0].startswith('a picture of')


# --------------------------------------------------------------------------------------------
# 2. Beam search against exhaustive search
# --------------------------------------------------------------------------------------------
START, LOCAL_VOCAB, MEMO = 10, 4, 7
EOS = START + LOCAL_VOCAB - 1


def history_key(history: list[int] | torch.Tensor) -> int | torch.Tensor:
    """An order-sensitive hash of a whole sequence (prompt included) into MEMO buckets."""
    if isinstance(history, torch.Tensor):
        weights = 7 * torch.arange(1, history.shape[1] + 1) + 3
        return (history * weights).sum(-1) % MEMO
    return sum(h * (7 * (i + 1) + 3) for i, h in enumerate(history)) % MEMO


class HistoryStub:
    """Stands in for DecoderState: row r of input b gets logits ``tables[b, key(history)]``."""

    def __init__(self, tables: torch.Tensor) -> None:
        self.tables = tables  # [B, MEMO, V]
        self.owner = torch.arange(len(tables))
        self.history = None
        self.positions: list[list[int]] = []

    def id_range(self, modality):
        return START, START + LOCAL_VOCAB

    def step(self, ids, positions, modality):
        self.positions.append(positions.tolist())
        self.history = ids if self.history is None else torch.cat([self.history, ids], 1)
        return self.tables[self.owner, history_key(self.history)]

    def reorder(self, index):
        self.owner, self.history = self.owner[index], self.history[index]


def hand_score(tables, row, prompt, continuation, length_penalty, penalty, min_new):
    """Score of one finished hypothesis, step by step with plain Python."""
    history, total = list(prompt), 0.0
    for step, token in enumerate(continuation):
        logits = tables[row, history_key(history)].tolist()
        for seen in set(history):
            if START <= seen < START + LOCAL_VOCAB:
                value = logits[seen - START]
                logits[seen - START] = value / penalty if value > 0 else value * penalty
        if step < min_new:
            logits[EOS - START] = -math.inf
        log_norm = math.log(sum(math.exp(v) for v in logits if v > -math.inf))
        total += logits[token - START] - log_norm
        history.append(token)
    return total / len(continuation) ** length_penalty


def all_hypotheses(length: int) -> list[tuple[int, ...]]:
    """Every finished sequence: ends with EOS at some step, or runs to ``length`` without."""
    words = [START + i for i in range(LOCAL_VOCAB - 1)]
    found = []
    for n in range(length):
        found += [(*body, EOS) for body in itertools.product(words, repeat=n)]
    return found + list(itertools.product(words, repeat=length))


@pytest.mark.parametrize(
    'length_penalty, penalty, min_new',
    [(0.0, 1.0, 0), (1.0, 1.0, 0), (0.7, 1.6, 2), (-0.5, 1.0, 1)],
)
def test_beam_as_wide_as_all_hypotheses_is_exhaustive_search(length_penalty, penalty, min_new):
    generator = torch.Generator().manual_seed(31)
    tables = 2 * torch.randn(2, MEMO, LOCAL_VOCAB, generator=generator)
    prompt = torch.tensor([[5, START + 1], [6, START]])  # in-range ids: penalized from step 0
    length = 3
    hypotheses = all_hypotheses(length)
    stub = HistoryStub(tables)
    pool = beam_search(
        stub,
        prompt,
        TEXT,
        length,
        len(hypotheses),
        first_position=4,
        eos_id=EOS,
        min_new_tokens=min_new,
        length_penalty=length_penalty,
        repetition_penalty=penalty,
        pad_id=0,
    )
    assert pool.ids.shape == (2, len(hypotheses), length)
    assert stub.positions == [[4, 5], [6], [7]]
    for row in range(2):
        scores = {
            h: hand_score(tables, row, prompt[row].tolist(), h, length_penalty, penalty, min_new)
            for h in hypotheses
        }
        finite = {h: s for h, s in scores.items() if s > -math.inf}
        found = {
            tuple(t for t in ids if t != 0): float(score)
            for ids, score in zip(pool.ids[row].tolist(), pool.scores[row])
            if score > -math.inf
        }
        assert found.keys() == finite.keys()
        assert int(torch.isfinite(pool.scores[row]).sum()) == len(finite)
        for hypothesis, score in found.items():
            assert score == pytest.approx(finite[hypothesis], abs=1e-5)
        best = max(finite, key=finite.get)
        assert tuple(t for t in pool.ids[row, 0].tolist() if t != 0) == best
        assert list(pool.scores[row]) == sorted(pool.scores[row], reverse=True)

        narrow = beam_search(
            HistoryStub(tables), prompt, TEXT, length, 2, 4, EOS, min_new, length_penalty, penalty
        )
        kept = tuple(t for t in narrow.ids[row, 0].tolist() if t != 0)
        assert float(narrow.scores[row, 0]) == pytest.approx(finite[kept], abs=1e-5)
        assert float(narrow.scores[row, 0]) <= finite[best] + 1e-6


def plain_beam_search(tables, row, prompt, beams, length, length_penalty):
    """Beam search in plain Python with the same rules, never stopping before ``length``."""
    live, finished = [(0.0, [])], []
    for step in range(length):
        candidates = []
        for total, tokens in live:
            log_probs = tables[row, history_key(prompt + tokens)].log_softmax(-1).tolist()
            candidates += [(total + p, tokens + [START + v]) for v, p in enumerate(log_probs)]
        candidates = sorted(candidates, key=lambda c: -c[0])[: 2 * beams]
        live = []
        for rank, (total, tokens) in enumerate(candidates):
            if tokens[-1] == EOS:
                if rank < beams:
                    finished.append((total / (step + 1) ** length_penalty, tokens))
            elif len(live) < beams:
                live.append((total, tokens))
    finished += [(total / length**length_penalty, tokens) for total, tokens in live]
    return max(finished)


@pytest.mark.parametrize('length_penalty', [2.0, 0.5, -1.0])
def test_narrow_beams_stop_early_only_when_nothing_better_can_come(length_penalty):
    """Two beams over six steps: the result equals a search that always runs to the end."""
    for seed in range(10):
        generator = torch.Generator().manual_seed(seed)
        tables = 2 * torch.randn(2, MEMO, LOCAL_VOCAB, generator=generator)
        tables[..., EOS - START] += 0.5
        prompt = torch.tensor([[5], [6]])
        pool = beam_search(
            HistoryStub(tables), prompt, TEXT, 6, 2, eos_id=EOS, length_penalty=length_penalty
        )
        for row in range(2):
            score, tokens = plain_beam_search(tables, row, [5 + row], 2, 6, length_penalty)
            assert [t for t in pool.ids[row, 0].tolist() if t != 0] == tokens
            assert float(pool.scores[row, 0]) == pytest.approx(score, abs=1e-5)


class StepStub:
    """Every row gets ``first`` logits for the first new token and ``later`` ones after it."""

    def __init__(self, first: list[float], later: list[float]) -> None:
        self.logits, self.calls = [torch.tensor(first), torch.tensor(later)], 0

    def id_range(self, modality):
        return START, START + LOCAL_VOCAB

    def step(self, ids, positions, modality):
        self.calls += 1
        return self.logits[min(self.calls - 1, 1)].expand(len(ids), -1)

    def reorder(self, index):
        pass


def test_length_penalty_and_exact_early_stopping_with_one_beam():
    """EOS is likely first (log p ~ -0.17), then a token that is almost certain: a long
    hypothesis wins only under a length penalty, and the search must not stop before it."""
    first, later = [0.5, 0.0, 0.0, 3.0], [8.0, 0.0, 0.0, -8.0]
    start_logp = torch.tensor(first).log_softmax(-1)
    then_logp = torch.tensor(later).log_softmax(-1)
    long_sum = float(start_logp[0] + 7 * then_logp[0])
    prompt = torch.tensor([[5]])
    for length_penalty, expected, score in (
        (0.0, [EOS], float(start_logp[-1])),
        (2.0, [START] * 8, long_sum / 64),
    ):
        stub = StepStub(first, later)
        pool = beam_search(stub, prompt, TEXT, 8, 1, eos_id=EOS, length_penalty=length_penalty)
        assert [t for t in pool.ids[0, 0].tolist() if t != 0] == expected
        assert float(pool.scores[0, 0]) == pytest.approx(score, abs=1e-5)
    assert stub.calls == 8  # lp 2: all the way
    assert long_sum / 64 > float(start_logp[-1]) > long_sum / 4  # stopping at step 1 is wrong
    stub = StepStub(first, later)
    beam_search(stub, prompt, TEXT, 8, 1, eos_id=EOS, length_penalty=0.0)
    assert stub.calls == 1  # lp 0: nothing can beat [EOS] once it is found


def test_one_beam_without_length_penalty_is_greedy():
    for seed in range(12):
        generator = torch.Generator().manual_seed(seed)
        tables = 2 * torch.randn(2, MEMO, LOCAL_VOCAB, generator=generator)
        tables[..., EOS - START] += 1.0  # EOS often wins somewhere
        prompt = torch.tensor([[5], [6]])
        pool = beam_search(HistoryStub(tables), prompt, TEXT, 6, 1, eos_id=EOS, length_penalty=0)
        for row in range(2):
            history, greedy = [int(prompt[row, 0])], []
            while len(greedy) < 6 and (not greedy or greedy[-1] != EOS):
                token = START + int(tables[row, history_key(history)].argmax())
                greedy.append(token)
                history.append(token)
            assert pool.ids[row, 0].tolist() == greedy + [0] * (6 - len(greedy))

    model = scrambled_model(seed=24)
    memory, memory_mask = encoded_captions(model, scene_images()[1])
    for prompt, modality, eos in (
        (torch.full((2, 1), CLS), TEXT, SEP),
        (torch.full((2, 1), 2), IMAGE, None),
    ):
        greedy = generate(model, memory, memory_mask, prompt, modality, 10, eos_id=eos)
        state = DecoderState(model, memory, memory_mask)
        pool = beam_search(state, prompt, modality, 10, 1, eos_id=eos, length_penalty=0)
        assert torch.equal(pool.ids[:, 0, : greedy.shape[1]], greedy)


def test_beam_search_through_the_real_model_is_exhaustive_on_a_tiny_codebook():
    """A 3-entry codebook and a 2x2 code grid: 81 paintings, all kept by 81 beams."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tokenizer = dict(type='PatchTokenizer', codebook_size=3, downsample_factor=16)
    model = build_model(image_tokenizer=tokenizer).eval()
    scramble(model.decoder, seed=25)
    assert model.vocab.code_grid == (2, 2) and model.vocab.size == TEXT_VOCAB + 3
    captions = scene_images()[1]
    codes, scores = inference.paint_codes(model, captions, GenerationConfig(num_beams=81), 81)
    assert codes.shape == (2, 81, 2, 2) and scores.shape == (2, 81)

    every = torch.tensor(list(itertools.product(range(3), repeat=4)))  # [81, 4]
    memory, memory_mask = encoded_captions(model, captions)
    owner = torch.arange(2).repeat_interleave(81)
    ids = torch.cat([torch.full((162, 1), 2), TEXT_VOCAB + every.repeat(2, 1)], 1)
    with torch.no_grad():
        logits = model.decoder_logits(
            ids[:, :-1], torch.arange(4), memory[owner], memory_mask[owner], IMAGE
        )
    totals = logits.log_softmax(-1).gather(-1, ids[:, 1:, None] - TEXT_VOCAB)[..., 0].sum(1)
    expected = (totals / 4).view(2, 81)  # length penalty 1 over 4 codes
    for row in range(2):
        found = {tuple(c.flatten().tolist()): float(s) for c, s in zip(codes[row], scores[row])}
        assert len(found) == 81
        for index, sequence in enumerate(every.tolist()):
            assert found[tuple(sequence)] == pytest.approx(float(expected[row, index]), abs=1e-5)
        assert codes[row, 0].flatten().tolist() == every[expected[row].argmax()].tolist()


# --------------------------------------------------------------------------------------------
# 3. Modality, seeds, repetition penalty, length limits
# --------------------------------------------------------------------------------------------
CONFIGS = [
    GenerationConfig(),
    GenerationConfig(do_sample=True, top_k=50, seed=0),
    GenerationConfig(num_beams=3),
]


def test_writing_and_painting_stay_in_their_modality_under_every_decoder():
    model = scrambled_model(seed=26)
    images, captions = scene_images()
    memory, memory_mask = encoded_captions(model, captions)
    text_prompt = torch.full((2, 1), CLS)
    image_prompt = torch.full((2, 1), IMAGE_BOS)
    with torch.no_grad():
        model.decoder.head.bias[TEXT_VOCAB:] += 50.0  # unrestricted, text would never win
    for config in CONFIGS:
        out = inference.decode(model, memory, memory_mask, text_prompt, TEXT, config, 12, 0, 0, SEP)
        assert out.ids.shape[:2] == (2, 1)
        assert ((out.ids >= 0) & (out.ids < TEXT_VOCAB)).all()
        assert all(inference.write_texts(model, images, config))
    with torch.no_grad():
        model.decoder.head.bias[TEXT_VOCAB:] -= 50.0
        model.decoder.head.bias[:TEXT_VOCAB] += 50.0  # now text ids would always win
    for config in CONFIGS:
        out = inference.decode(model, memory, memory_mask, image_prompt, IMAGE, config, 64)
        assert ((out.ids >= TEXT_VOCAB) & (out.ids < VOCAB)).all()
        codes, _ = inference.paint_codes(model, captions, config)
        assert codes.shape == (2, 1, 8, 8) and ((codes >= 0) & (codes < CODEBOOK)).all()
        completed = inference.complete_codes(model, images, 2, captions, config)
        assert ((completed >= 0) & (completed < CODEBOOK)).all()


def test_seeded_samples_repeat_differ_by_seed_and_share_one_encoder_pass():
    model = scrambled_model(seed=27)
    captions = scene_images()[1]
    encodes = spy(model, 'encode')
    memory_passes = spy(model.decoder, 'memory_keys_values')

    def draw(seed):
        config = GenerationConfig(do_sample=True, seed=seed)
        return inference.paint_codes(model, captions, config, samples=4)[0]

    first = draw(1)
    assert first.shape == (2, 4, 8, 8)
    assert len(encodes) == 1 and encodes[0][1].shape[0] == 2  # 2 captions, not 8 copies
    assert len(memory_passes) == 1 and memory_passes[0][0].shape[0] == 2
    assert torch.equal(draw(1), first)
    assert not torch.equal(draw(2), first)
    assert len({tuple(sample.flatten().tolist()) for sample in first[0]}) == 4


def test_guided_steps_mix_the_two_teacher_forced_distributions():
    """Classifier-free guidance: each cached step gives log p_u + s (log p_c - log p_u) of
    the teacher-forced logits under the caption and under an empty caption, also after
    per-sample expansion and beam-style reordering."""
    model = scrambled_model(seed=31)
    captions = scene_images()[1]
    memory, memory_mask = encoded_captions(model, captions)
    empty, empty_mask = encoded_captions(model, ['', ''])
    scale, generator = 3.0, torch.Generator().manual_seed(32)
    state = GuidedDecoderState(
        DecoderState(model, memory, memory_mask), DecoderState(model, empty, empty_mask), scale
    )
    prompt = torch.full((2, 1), IMAGE_BOS)
    token_range = model.vocab.id_range(IMAGE)
    with torch.no_grad():
        logits, sequence, positions = start_decoding(state, prompt, IMAGE, 0, 2)
    owner = torch.arange(2).repeat_interleave(2)
    for step in range(4):
        with torch.no_grad():
            args = (sequence, torch.arange(sequence.shape[1]))
            cond = model.decoder_logits(*args, memory[owner], memory_mask[owner], IMAGE)
            uncond = model.decoder_logits(*args, empty[owner], empty_mask[owner], IMAGE)
        cond, uncond = cond[:, -1].log_softmax(-1), uncond[:, -1].log_softmax(-1)
        torch.testing.assert_close(logits, uncond + scale * (cond - uncond), atol=1e-4, rtol=0)
        logits, owner, sequence = reorder_and_step(
            state, owner, sequence, positions[-1:] + step + 1, IMAGE, token_range, generator
        )


def test_guidance_scale_one_is_plain_painting_and_zero_paints_the_empty_caption():
    model = scrambled_model(seed=33)
    images, captions = scene_images()
    encodes = spy(model, 'encode')

    def paint(texts, **options):
        return inference.paint_codes(model, texts, GenerationConfig(**options))[0]

    plain = paint(captions)
    assert len(encodes) == 1
    assert torch.equal(paint(captions, guidance_scale=1.0), plain) and len(encodes) == 2
    assert torch.equal(paint(captions, guidance_scale=0.0), paint(['', '']))
    assert len(encodes) == 5  # guided: captions and empty captions, once each
    guided = paint(captions, guidance_scale=4.0)
    assert not torch.equal(guided, plain)
    assert guided.shape == (2, 1, 8, 8)
    sampled = paint(captions, guidance_scale=4.0, do_sample=True, seed=3)
    assert torch.equal(sampled, paint(captions, guidance_scale=4.0, do_sample=True, seed=3))
    beams = inference.paint_codes(
        model, captions, GenerationConfig(num_beams=2, guidance_scale=4.0), 2
    )
    assert beams[0].shape == (2, 2, 8, 8) and torch.isfinite(beams[1]).all()
    completed = inference.complete_codes(
        model, images, 2, captions, GenerationConfig(guidance_scale=0.0)
    )
    empty_completed = inference.complete_codes(model, images, 2, ['', ''])
    assert torch.equal(completed, empty_completed)
    with pytest.raises(ValueError, match='guidance_scale applies to painting'):
        inference.write_texts(model, images, GenerationConfig(guidance_scale=2.0))
    with pytest.raises(ValueError, match='guidance_scale'):
        GenerationConfig(guidance_scale=-1.0)


def write_paint_head(**options) -> dict:
    return dict(type='WritePaintHead', **options)


def test_predict_paints_as_painting_generation_says():
    captions = CAPTIONS[:2]
    greedy = scrambled_model(seed=34, head=write_paint_head())
    guided = scrambled_model(
        seed=34, head=write_paint_head(painting_generation=dict(guidance_scale=0.0))
    )
    with torch.no_grad():
        plain = [p.pred_painting for p in greedy(**scene_batch(), mode='predict')]
        from_empty = inference.codes_to_images(greedy, inference.paint_codes(greedy, ['', ''])[0])
        painted = [p.pred_painting for p in guided(**scene_batch(), mode='predict')]
        expected = inference.codes_to_images(greedy, inference.paint_codes(greedy, captions)[0])
    assert torch.equal(torch.stack(plain), expected[:, 0])
    assert torch.equal(torch.stack(painted), from_empty[:, 0])
    written = [p.pred_caption for p in greedy(**scene_batch(), mode='predict')]
    assert written == inference.write_texts(greedy, scene_images()[0])
    with pytest.raises(ValueError, match='max_length'):
        scrambled_model(seed=34, head=write_paint_head(painting_generation=dict(max_length=5)))
    headless = scrambled_model(seed=34)
    with pytest.raises(ValueError, match='no head'):
        headless(**scene_batch(), mode='predict')


def test_repetition_penalty_transforms_seen_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0], [1.0, 1.0, -2.0, 4.0]])
    seen = torch.tensor([[10, 11, 11, 3], [13, 99, 12, 0]])  # 3, 99, 0: outside ids 10-13
    out = penalize_repetition(logits, seen, 2.0, start=10)
    assert out.tolist() == [[1.0, -2.0, 0.5, -3.0], [1.0, 1.0, -4.0, 2.0]]
    assert torch.equal(penalize_repetition(logits, seen, 1.0, 10), logits)
    assert logits.tolist()[0] == [2.0, -1.0, 0.5, -3.0]  # the input is left alone

    model = scrambled_model(seed=28)
    memory, memory_mask = encoded_captions(model, scene_images()[1])
    prompt = torch.full((2, 1), CLS)
    plain = generate(model, memory, memory_mask, prompt, TEXT, 10)
    assert any(len(set(row)) < len(row) for row in plain.tolist())  # this model repeats itself
    strong = SamplingConfig(repetition_penalty=1e6)
    state = DecoderState(model, memory, memory_mask)
    for ids in (
        generate(model, memory, memory_mask, prompt, TEXT, 10, sampling=strong),
        beam_search(state, prompt, TEXT, 10, 2, repetition_penalty=1e6).ids[:, 0],
    ):
        for row in torch.cat([prompt, ids], 1).tolist():
            assert len(set(row)) == len(row)


def test_min_length_forbids_eos_and_length_limits_can_count_the_prompt():
    model = scrambled_model(seed=29)
    memory, memory_mask = encoded_captions(model, scene_images()[1])
    prompt = torch.full((2, 1), CLS)
    with torch.no_grad():
        model.decoder.head.bias[SEP] += 100.0  # EOS always wins when allowed
    for config in CONFIGS:
        out = inference.decode(model, memory, memory_mask, prompt, TEXT, config, 8, 0, 0, SEP)
        assert (out.ids[:, 0, 0] == SEP).all()
        out = inference.decode(model, memory, memory_mask, prompt, TEXT, config, 8, 4, 0, SEP)
        assert (out.ids[:, 0, :4] != SEP).all() and (out.ids[:, 0, 4] == SEP).all()
        assert (out.ids[:, 0, 5:] == model.vocab.pad_id).all()

    assert GenerationConfig(max_length=20, min_length=5).new_token_limits(4, 30) == (20, 5)
    original = GenerationConfig(max_length=20, min_length=5, count_prompt=True)
    assert original.new_token_limits(4, 30) == (16, 1)
    assert GenerationConfig(min_length=2, count_prompt=True).new_token_limits(4, 30) == (30, 0)
    with pytest.raises(ValueError, match='counts the 4 prompt tokens'):
        GenerationConfig(max_length=4, count_prompt=True).new_token_limits(4, 30)
    with pytest.raises(ValueError):
        GenerationConfig(num_beams=2, do_sample=True)
    images = scene_images()[0]
    exact = GenerationConfig(min_length=3, max_length=3)
    written = inference.write_texts(model, images, exact)
    empty_ids, empty_mask = model.tokenize(['', ''])
    with torch.no_grad():
        memory, memory_mask = model.encode(images, empty_ids, empty_mask)
    out = inference.decode(model, memory, memory_mask, prompt, TEXT, exact, 3, 3, 0, SEP)
    assert out.ids.shape == (2, 1, 3) and (out.ids != SEP).all()
    assert written == [model.text_tokenizer.decode(row) for row in out.ids[:, 0].tolist()]


# --------------------------------------------------------------------------------------------
# 4. Completion mirrors PrefixImage
# --------------------------------------------------------------------------------------------
def test_completion_keeps_the_top_rows_and_mirrors_prefix_image_training():
    model = scrambled_model(seed=30)
    scramble(model.encoder, seed=32)
    images, captions = scene_images()
    truth = model.image_codes(images)
    with torch.no_grad():
        model.decoder.head.bias[:TEXT_VOCAB] += 50.0  # text ids would win if allowed
    encodes = record(model, 'encode')
    codes = inference.complete_codes(model, images, 2, captions)
    assert torch.equal(codes[:, :2], truth[:, :2])
    assert ((codes >= 0) & (codes < CODEBOOK)).all() and not torch.equal(codes, truth)
    strip, _, _ = encodes[0]['args'][:3]
    assert strip.shape[-2] == 8 and encodes[0]['kwargs'] == {'full_image': False}

    # teacher-forced PrefixImage at split r = 2 over the completion: greedy = its argmax
    decodes = record(model, 'decoder_loss')
    objective = PrefixImage()
    objective.choose_rows = lambda model, code_rows: 2
    with torch.no_grad():
        objective(model, dict(images=images, caption=texts(model, captions), codes=codes))
        ids, positions, memory, memory_mask = decodes[-1]['args'][:4]
        logits = model.decoder_logits(ids, positions, memory, memory_mask, IMAGE)
    assert positions.tolist() == list(range(16, 64))
    assert torch.equal(logits.argmax(-1), codes[:, 2:].flatten(1))

    # prefix='decoder': the kept codes follow the BOS in the decoder (positions from 0)
    codes = inference.complete_codes(model, images, 3, captions, prefix='decoder')
    assert torch.equal(codes[:, :3], truth[:, :3])
    memory, memory_mask = encoded_captions(model, captions)
    ids = torch.cat([torch.full((2, 1), IMAGE_BOS), model.vocab.codes_to_ids(codes.flatten(1))], 1)
    with torch.no_grad():
        logits = model.decoder_logits(ids[:, :-1], torch.arange(64), memory, memory_mask, IMAGE)
    assert torch.equal(logits[:, 24:].argmax(-1), codes[:, 3:].flatten(1))

    assert inference.rows_for_pixels(model, 8) == 2
    with pytest.raises(ValueError, match='multiple of the 4 px code cell'):
        inference.rows_for_pixels(model, 6)
    with pytest.raises(ValueError, match='stride 8'):
        inference.complete_codes(model, images, 1, captions)  # a 4 px strip: no embedder tokens
    with pytest.raises(ValueError, match='keep_rows'):
        inference.complete_codes(model, images, 8, captions)
    with pytest.raises(ValueError, match='h\\*w codes'):
        inference.complete_codes(model, images, 2, captions, GenerationConfig(max_length=3))


# --------------------------------------------------------------------------------------------
# 5. Re-ranking
# --------------------------------------------------------------------------------------------
def test_reranking_keeps_the_best_scored_sample():
    from davinci_zoo.apis import paint, paint_tensors, to_pil

    model = scrambled_model(seed=33)
    captions = scene_images()[1]
    calls = []

    def brightness(model, images, texts):
        calls.append((images.shape, list(texts)))
        return images.mean(dim=(1, 2, 3))

    gen = dict(do_sample=True, seed=4)
    images, scores = paint_tensors(model, captions, 4, rerank=True, scorer=brightness, **gen)
    assert calls == [((8, 3, 32, 32), [captions[0]] * 4 + [captions[1]] * 4)]
    torch.testing.assert_close(scores, images.mean(dim=(2, 3, 4)))
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first
    drawn, _ = paint_tensors(model, captions, 4, **gen)  # the same seed, unsorted
    torch.testing.assert_close(scores[:, 0], drawn.mean(dim=(2, 3, 4)).max(dim=1).values)
    best = paint(model, captions, 4, rerank=True, scorer=brightness, **gen)
    for image, expected in zip(best, images[:, 0]):
        assert np.array_equal(np.asarray(image), np.asarray(to_pil(expected)))


def test_caption_likelihood_scorer_is_the_teacher_forced_log_likelihood():
    import davinci_zoo.components  # noqa: F401  (the registered scorers)

    model = scrambled_model(seed=34)
    scramble(model.encoder, seed=35)
    images, _ = scene_images()
    pixels = model.data_preprocessor.pixels(images)  # scorers take RGB in [0, 1]
    strings = ['a small red circle', 'a large green square above a small blue triangle']
    total = SCORERS.build(dict(type='CaptionLikelihoodScorer'))(model, pixels, strings)
    mean = SCORERS.build(dict(type='CaptionLikelihoodScorer', reduction='mean'))
    average = mean(model, pixels, strings)
    assert total.shape == (2,)
    empty_ids, empty_mask = model.tokenize(['', ''])
    with torch.no_grad():
        memory, memory_mask = model.encode(images, empty_ids, empty_mask)
    for row, text in enumerate(strings):
        ids = [CLS, *model.text_tokenizer.encode(text, add_special_tokens=False), SEP]
        state = DecoderState(model, memory[row : row + 1], memory_mask[row : row + 1])
        log_likelihood = 0.0
        with torch.no_grad():
            for t in range(len(ids) - 1):
                logits = state.step(torch.tensor([[ids[t]]]), torch.tensor([t]), TEXT)
                log_likelihood += float(logits.log_softmax(-1)[0, ids[t + 1]])
        assert float(total[row]) == pytest.approx(log_likelihood, abs=1e-4)
        assert float(average[row]) == pytest.approx(log_likelihood / (len(ids) - 1), abs=1e-5)
    with pytest.raises(ValueError):
        mean(model, pixels, ['a small red circle', ' '])


@SCORERS.register_module(force=True)
class BrightnessScorer:
    """Scores a painting by its mean pixel value (a test scorer)."""

    def __call__(self, model, images, texts):
        return images.mean(dim=(1, 2, 3))


def test_predict_can_add_a_plain_sample_and_the_reranked_best_and_the_metric_scores_them(
    monkeypatch,
):
    """``reranked_painting``: predict adds sample 0 and the scorer's best of N to the greedy
    painting; SceneWritePaintMetric reports all three paint accuracies."""
    from davinci_zoo_scenes import render
    from davinci_zoo_scenes.metrics import SceneWritePaintMetric

    options = dict(num_samples=3, scorer=dict(type='BrightnessScorer'))
    model = scrambled_model(seed=36, head=write_paint_head(reranked_painting=options))
    drawn = []
    to_images = inference.codes_to_images
    monkeypatch.setattr(
        inference, 'codes_to_images', lambda m, c: drawn.append(to_images(m, c)) or drawn[-1]
    )
    torch.manual_seed(5)
    predictions = model(**scene_batch(), mode='predict')
    samples = drawn[-1]  # [2, 3, 3, 32, 32]: this call's samples
    assert samples.shape[:2] == (2, 3) and not torch.equal(samples[:, 0], samples[:, 1])
    best = samples.mean(dim=(2, 3, 4)).argmax(1)
    for row, prediction in enumerate(predictions):
        assert prediction.caption == CAPTIONS[row]  # the data sample, with the predictions
        assert torch.equal(prediction.pred_painting_sampled, samples[row, 0])
        assert torch.equal(prediction.pred_painting_reranked, samples[row, best[row]])
        assert prediction.pred_painting.shape == (3, 32, 32)

    # the metric: truth renders read back, black paintings do not
    rendered = [
        torch.from_numpy(render(SCENES.scenes[i], 32)).permute(2, 0, 1).float() / 255
        for i in range(2)
    ]
    black = torch.zeros(3, 32, 32)
    metric = SceneWritePaintMetric()
    metric.process(
        None,
        [
            dict(
                caption=caption,
                pred_caption=caption,
                pred_painting=black,
                pred_painting_sampled=picture,
                pred_painting_reranked=picture if i == 0 else black,
            )
            for i, (caption, picture) in enumerate(zip(CAPTIONS, rendered))
        ],
    )
    scores = metric.compute_metrics(metric.results)
    assert scores['paint_accuracy_all'] == 0.0
    assert scores['sampled_paint_accuracy_all'] == 1.0
    assert scores['reranked_paint_accuracy_all'] == 0.5
    assert scores['caption_accuracy_all'] == 1.0
