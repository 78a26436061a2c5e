"""What objectives and heads declare, and what the model does with it: the image tokenizer
is built and run only where needed, an objective that never gets data stops the run, ranks
whose batches feed different objectives train in step, and re-ranking lives in one module."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_davinci_config, tool_env
from test_davinci_model import SCENES, scene_batch, texts

from davinci_zoo.datasets.mixing import mixed_collate
from davinci_zoo.models.davinci import reranking
from davinci_zoo.models.parts import ObjectiveStarvedError
from davinci_zoo.registry import MODELS

WRITE = dict(type='PrefixLM')
PAINT = dict(type='PrefixImage', mode='static')
CORPUS = dict(type='TextPrefixLM')


def build(objectives, **overrides):
    torch.manual_seed(0)
    return MODELS.build(tiny_davinci_config(objectives=objectives, **overrides))


def test_the_tokenizer_is_built_only_when_something_needs_codes(tmp_path):
    missing = str(tmp_path / 'no-such-tokenizer.safetensors')
    tokenizer = dict(tiny_davinci_config()['image_tokenizer'], checkpoint=missing)
    writer = build([WRITE, CORPUS], image_tokenizer=tokenizer)  # the file is never read
    assert writer.image_tokenizer is None
    assert not any(key.startswith('image_tokenizer.') for key in writer.state_dict())
    assert writer.vocab.codebook_size == 64 and writer.vocab.code_grid == (8, 8)
    from davinci_zoo.apis import InputError, paint

    with pytest.raises(InputError, match='without an image tokenizer'):
        paint(writer.eval(), ['a small red circle'])  # painting needs the tokenizer's decoder
    with pytest.raises(FileNotFoundError, match='no-such-tokenizer'):
        build([WRITE, PAINT], image_tokenizer=tokenizer)
    painter = build([WRITE, PAINT])
    assert painter.image_tokenizer is not None and not painter.image_tokenizer.training
    evaluator = build([WRITE], head=dict(type='WritePaintHead'))  # paintings need the decoder
    assert evaluator.image_tokenizer is not None
    # the tokenizer's vocabulary wins over the config's, which must agree with it
    with pytest.raises(ValueError, match='disagree with the image tokenizer'):
        build([PAINT], visual_vocab_size=128)
    with pytest.raises(ValueError, match='visual_vocab_size and image_code_grid'):
        build([WRITE], visual_vocab_size=None)
    with pytest.raises(ValueError, match='no image_tokenizer config'):
        build([PAINT], image_tokenizer=None)
    # the tools check the same way which weight files a config will read
    from mmengine.config import Config

    from davinci_zoo.cli import UserError, check_input_paths

    writer_cfg = Config(
        dict(model=tiny_davinci_config(objectives=[WRITE], image_tokenizer=tokenizer))
    )
    check_input_paths(writer_cfg, ('model',))
    painter_cfg = Config(
        dict(model=tiny_davinci_config(objectives=[PAINT], image_tokenizer=tokenizer))
    )
    with pytest.raises(UserError, match='model.image_tokenizer.checkpoint'):
        check_input_paths(painter_cfg, ('model',))


def test_codes_are_computed_only_for_batches_that_need_and_lack_them(monkeypatch):
    model = build([WRITE, PAINT, CORPUS]).train()
    encoded = []
    real_encode = model.image_tokenizer.encode
    monkeypatch.setattr(
        model.image_tokenizer,
        'encode',
        lambda images: encoded.append(len(images)) or real_encode(images),
    )
    batch = scene_batch(model, 3)
    np.random.seed(0)
    losses = model.loss(dict(batch))
    assert set(losses) == {'loss_prefixlm', 'loss_prefiximage'} and encoded == [3]  # once
    documents = dict(text=texts(model, ['a text only document', 'another one']))
    assert set(model.loss(documents)) == {'loss_textprefixlm'} and encoded == [3]

    def no_tokenizer(images):
        raise AssertionError('the tokenizer ran on a batch that holds its codes')

    monkeypatch.setattr(model.image_tokenizer, 'encode', no_tokenizer)
    with_codes = dict(batch, codes=real_encode(model.data_preprocessor.pixels(batch['images'])))
    assert set(model.loss(with_codes)) == {'loss_prefixlm', 'loss_prefiximage'}


def test_an_objective_without_data_in_its_first_steps_stops_the_run():
    starving = dict(WRITE, must_fire_within=3)
    model = build([starving, CORPUS]).train()
    documents = dict(text=texts(model, ['only text here', 'and here']))
    model.loss(documents)
    model.loss(documents)
    with pytest.raises(ObjectiveStarvedError, match=r'PrefixLM \(prefixlm\) gave no loss .* 3 '):
        model.loss(documents)
    patient = build([dict(WRITE, must_fire_within=None), CORPUS]).train()
    for _ in range(5):
        patient.loss(documents)
    fed_once = build([starving, CORPUS]).train()
    fed_once.loss(dict(scene_batch(fed_once, 2), **documents))
    for _ in range(5):
        fed_once.loss(documents)
    evaluating = build([starving, CORPUS]).eval()  # evaluation steps do not count
    for _ in range(5):
        evaluating.loss(documents)


@pytest.mark.slow(budget_s=150)
@pytest.mark.subprocess
def test_ranks_whose_batches_feed_different_objectives_train_in_step(tmp_path):
    """2 gloo processes: rank 0 only captioned scenes, rank 1 only documents. Neither hangs
    (DDP finds the parameters one rank did not use), the objectives' first-steps check looks
    at both ranks, and the ranks end with the same parameters."""
    config = write_uneven_objectives_config(tmp_path / 'uneven.py')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path)],
        cwd=REPO,
        env=tool_env(PORT='29537', OMP_NUM_THREADS='1'),
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [json.loads((tmp_path / f'losses_rank{rank}.json').read_text()) for rank in (0, 1)]
    assert losses == [[['loss_prefixlm']] * 4, [['loss_textprefixlm']] * 4]
    weights = [torch.load(tmp_path / f'weights_rank{rank}.pt') for rank in (0, 1)]
    parameters = [key for key in weights[0] if not key.endswith(BATCHNORM_STATISTICS)]
    assert len(parameters) > 90
    for key in parameters:
        assert torch.equal(weights[0][key], weights[1][key]), key


def write_uneven_objectives_config(path) -> str:
    """The tiny DaVinci (PrefixLM + TextPrefixLM: no image tokenizer is built) on
    ``RankSplitScenes`` (tests/fixtures/toy_zoo.py): rank 0 reads captioned scenes, rank 1
    documents; each objective must have given a loss on some rank within 3 steps."""
    objectives = [dict(WRITE, must_fire_within=3), dict(CORPUS, must_fire_within=3)]
    config = dict(
        _base_=[str(REPO / 'configs' / '_base_' / 'default_runtime.py')],
        custom_imports=dict(imports=['toy_zoo'], allow_failed_imports=False),
        model=tiny_davinci_config(objectives=objectives),
        train_dataloader=dict(
            batch_size=2,
            num_workers=0,
            sampler=None,
            dataset=dict(type='RankSplitScenes'),
            collate_fn=dict(type='davinci_zoo.mixed_collate'),
        ),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=4),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(checkpoint=dict(interval=4), logger=dict(interval=1)),
        custom_hooks=[dict(type='LossesPerRankHook')],
        visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')]),
    )
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in config.items()))
    return str(path)


#: BatchNorm buffers: rank 0 updates them in its last forward, after DDP's last broadcast.
BATCHNORM_STATISTICS = ('running_mean', 'running_var', 'num_batches_tracked')


def test_every_re_ranking_goes_through_one_module(monkeypatch, tmp_path):
    """The API, tools/paint.py's scorer and WritePaintHead score and pick through
    davinci_zoo.models.davinci.reranking."""
    from test_tools import load_tool

    from davinci_zoo.apis import paint_tensors

    calls = []
    real_score = reranking.score_samples
    monkeypatch.setattr(
        reranking,
        'score_samples',
        lambda *args: calls.append(args[1].shape[:2]) or real_score(*args),
    )
    options = dict(num_samples=2, temperature=0.5)
    model = build([WRITE, PAINT], head=dict(type='WritePaintHead', reranked_painting=options))
    model.eval()
    paint_tensors(model, ['a small red circle'], 3, rerank=True, do_sample=True)
    data = model.data_preprocessor(mixed_collate([SCENES[0], SCENES[1]]))
    predictions = model(**data, mode='predict')
    assert calls == [(1, 3), (2, 2)]  # the API's 1 text x 3 samples, the head's 2 x 2
    assert all('pred_painting_reranked' in sample for sample in predictions)
    args = load_tool('paint').parse_args(
        ['c.py', 'x.pth', 'a', '--out', 'x.png', '--rerank', '--scorer', 'CaptionLikelihoodScorer']
    )
    built = []
    real_build = reranking.build_scorer
    monkeypatch.setattr(
        reranking, 'build_scorer', lambda *a, **k: built.append(a) or real_build(*a, **k)
    )
    scorer = load_tool('paint').build_scorer(args)
    assert built == [('CaptionLikelihoodScorer',)] and callable(scorer)
