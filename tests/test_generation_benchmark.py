"""The generation benchmark's references: Hugging Face BERT and the cache-free decoder agree
with our engine on a tiny DaVinci, and ``tools/benchmark.py generation`` prints its JSON."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from conftest import REPO, run_tool, tiny_davinci_config

from davinci_zoo.benchmarks.generation import (
    LOGIT_ATOL,
    caption_memory,
    compare_greedy,
    ours_caption,
    ours_paint,
    paint_memory,
)
from davinci_zoo.benchmarks.hf_reference import HF_DERIVED, build_hf_decoder, hf_state_dict_of
from davinci_zoo.models.davinci.vocabulary import IMAGE, TEXT
from davinci_zoo.registry import MODELS

TINY = tiny_davinci_config(
    decoder_layers=2,
    dropout=0.1,  # eval mode must switch it off on both sides
    objectives=[dict(type='PrefixLM')],
)
CAPTIONS = ['a small red circle', 'a large blue square above a small green triangle']


@pytest.fixture(scope='module')
def model():
    """A tiny DaVinci whose decoder weights are all far from their initial values."""
    torch.manual_seed(0)
    model = MODELS.build(TINY).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith(('decoder.', 'encoder.embeddings.word')):
                noise = torch.randn(param.shape, generator=generator) * 0.2
                param.copy_(1 + noise if name.endswith('LayerNorm.weight') else noise)
    return model


def memories(model):
    images, images_mask = caption_memory(model, 2, torch.Generator().manual_seed(2))
    captions, captions_mask = paint_memory(model, CAPTIONS)
    return {TEXT: (images, images_mask), IMAGE: (captions, captions_mask)}


def test_every_decoder_weight_reaches_the_bert_model(model):
    hf = build_hf_decoder(model)
    theirs = hf.state_dict()
    mapped = hf_state_dict_of(model)
    assert set(mapped) == set(theirs) - set(HF_DERIVED)
    for key, tensor in mapped.items():
        assert torch.equal(theirs[key], tensor), key
    decoder_tensors = {p.data_ptr() for p in model.decoder.parameters()}
    decoder_tensors.add(model.decoder.embeddings.word_embeddings.weight.data_ptr())
    assert decoder_tensors <= {t.data_ptr() for t in mapped.values()}  # nothing left behind


@pytest.mark.parametrize('option', ['image_grid_embeddings', 'painting_relative_bias'])
def test_decoders_with_our_2d_position_options_have_no_bert_equivalent(option):
    with pytest.raises(ValueError, match='no BERT equivalent'):
        build_hf_decoder(MODELS.build(dict(TINY, **{option: True})))


@pytest.mark.parametrize('modality', [TEXT, IMAGE])
def test_ours_and_hugging_face_write_the_same_tokens_and_logits(model, modality):
    hf = build_hf_decoder(model)
    memory, mask = memories(model)[modality]
    mask[1, -2:] = 0  # padded memory keys must be hidden on both sides
    result = compare_greedy(model, hf, memory, mask, modality, tokens=6)
    assert result['tokens_equal'] and result['max_abs_logit_diff'] <= LOGIT_ATOL
    assert result['hf_calls'] == 6 and result['hf_got_encoder_states_every_call']
    assert result['passed']


def test_the_comparison_sees_a_wrong_cross_attention(model):
    hf = build_hf_decoder(model)
    with torch.no_grad():
        hf.bert.encoder.layer[1].crossattention.self.value.weight.mul_(1.5)
    memory, mask = memories(model)[TEXT]
    result = compare_greedy(model, hf, memory, mask, TEXT, tokens=4)
    assert result['max_abs_logit_diff'] > 1e-2 and not result['passed']


def test_uncached_decoding_equals_cached(model):
    memory, mask = memories(model)[TEXT]
    for beams in (1, 2):
        cached = ours_caption(model, memory, mask, 7, beams)
        assert cached.shape == (2, 7)
        assert torch.equal(ours_caption(model, memory, mask, 7, beams, cached=False), cached)
    captions, captions_mask = memories(model)[IMAGE]
    cached = ours_paint(model, captions[:1], captions_mask[:1], 9, samples=3, seed=4)
    assert cached.shape == (3, 9) and len({tuple(row) for row in cached.tolist()}) > 1
    uncached = ours_paint(model, captions[:1], captions_mask[:1], 9, 3, 4, cached=False)
    assert torch.equal(uncached, cached)


@pytest.mark.slow(budget_s=120)
@pytest.mark.subprocess
def test_benchmark_cli_prints_its_json():
    result = run_tool(
        'tools/benchmark.py',
        'generation',
        '--config',
        str(REPO / 'configs' / 'davinci_tiny_scenes32.py'),
        *('--hidden-size', '32', '--heads', '4', '--intermediate-size', '64', '--layers', '1'),
        *('--caption-batch', '3', '--caption-tokens', '5', '--beams', '2'),
        *('--paint-samples', '2', '--paint-tokens', '6', '--uncached-steps', '3'),
        *('--check-tokens', '3', '--threads', '1'),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    settings = report['settings']
    assert report['mode'] == 'generation' and settings['threads'] == 1
    assert settings['transformers'] == transformers.__version__
    assert settings['torch'] == torch.__version__ and settings['dtype'] == 'float32'
    assert report['equality_check']['passed']
    captioning, painting = report['captioning'], report['painting']
    assert (captioning['batch'], captioning['new_tokens'], captioning['beams']) == (3, 5, 2)
    assert captioning['search'] == 'beam search' and captioning['uncached_steps'] == 3
    assert (painting['samples'], painting['new_tokens'], painting['code_grid']) == (2, 6, [8, 8])
    for task in (captioning, painting):
        speed = task['tokens_per_s']
        assert set(speed) == {'ours', 'ours_uncached', 'hf'} and min(speed.values()) > 0
        assert task['speedup_vs_hf'] == pytest.approx(speed['ours'] / speed['hf'])
        assert task['meets_target'] == (task['speedup_vs_hf'] >= task['target_speedup_vs_hf'])
    assert report['model']['hidden_size'] == 32 and report['model']['decoder_layers'] == 1
