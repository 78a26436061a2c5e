"""Scores for any image-caption set: caption_scores (pycocoevalcap), WritePaintMetric on
WritePaintHead's predictions (references, self-likelihood, a scorer from the registry), the
tokenizer export, and the tools' one-line errors around them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, tiny_davinci_config
from mmengine.config import Config
from test_custom_data import DAVINCI_CONFIG, make_custom_folder
from test_tools import load_tool, run_in_process

from davinci_zoo.evaluation import caption_scores
from davinci_zoo.registry import DATASETS, METRICS, MODELS, SCORERS

REFERENCES = {
    1: ['A red ball on the grass.', 'a ball'],
    2: ['two cats sleeping on a sofa'],
    3: ['a man rides a bike down the street'],
    'four': 'a bowl of fruit on a table',  # one reference as a string; ids of any kind
}
NAMES = ('Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr')


def test_import_stays_light():
    probe = (
        'import sys, davinci_zoo.evaluation as e; e.caption_scores; '
        "print([m for m in ('torch', 'pycocoevalcap', 'mmengine') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True)
    assert result.stdout.strip() == '[]', result.stderr


@pytest.mark.slow(budget_s=120)
def test_caption_scores_are_one_for_the_references_and_lower_for_other_texts():
    same = caption_scores(
        {k: v if isinstance(v, str) else v[0] for k, v in REFERENCES.items()}, REFERENCES
    )
    assert tuple(same) == NAMES and all(isinstance(v, float) for v in same.values())
    for name in NAMES[:-1]:
        assert same[name] == pytest.approx(1.0, abs=1e-6), name  # punctuation and case dropped
    assert same['CIDEr'] > 1.0
    other = caption_scores(
        {1: 'a dog', 2: 'two cats on a bed', 3: 'a man on a horse', 'four': ''}, REFERENCES
    )
    for name in NAMES:
        assert 0.0 <= other[name] < same[name], name
    assert other['Bleu_1'] > 0.1 and other['Bleu_4'] < 1e-3  # some words, no 4-gram


def test_caption_scores_refuse_mismatched_or_empty_input():
    with pytest.raises(ValueError, match='same ids'):
        caption_scores({1: 'a'}, {2: ['a']})
    with pytest.raises(ValueError, match='no predictions'):
        caption_scores({}, {})
    with pytest.raises(ValueError, match='non-empty strings'):
        caption_scores({1: 'a'}, {1: []})
    with pytest.raises(ValueError, match='not a string'):
        caption_scores({1: None}, {1: ['a']})


@SCORERS.register_module(force=True)
class RedShareScorer:
    """A test scorer in the registry's interface: the painting's mean red value x 10."""

    def __call__(self, model, images, texts):
        assert model is None and len(texts) == len(images)
        return 10 * images[:, 0].mean(dim=(1, 2))


@pytest.fixture(scope='module')
def predicted(tmp_path_factory):
    """WritePaintHead(painting_likelihood=True) predictions of a tiny random DaVinci on four
    pairs read with the shipped test pipeline (KeepCaptionReferences)."""
    from davinci_zoo.datasets.mixing import mixed_collate

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = make_custom_folder(tmp_path_factory.mktemp('pairs'))
    base = Config.fromfile(str(REPO / 'configs/_base_/datasets/image_captions_32.py'))
    dataset = DATASETS.build(
        dict(base.test_dataloader.dataset, data_root=data['root'], ann_file=data['train'])
    )
    model = MODELS.build(
        tiny_davinci_config(head=dict(type='WritePaintHead', painting_likelihood=True))
    ).eval()
    batch = model.data_preprocessor(mixed_collate([dataset[i] for i in range(4)]))
    with torch.no_grad():
        samples = model(**batch, mode='predict')
    return model, samples, json.loads(open(data['train']).read())[:4]


def test_the_head_scores_its_paintings_with_the_models_caption_likelihood(predicted):
    from davinci_zoo.models.davinci.reranking import CaptionLikelihoodScorer

    model, samples, rows = predicted
    paintings = torch.stack([s.pred_painting for s in samples])
    captions = [s.caption for s in samples]
    expected = CaptionLikelihoodScorer(reduction='mean')(model, paintings, captions)
    got = torch.tensor([s.pred_painting_likelihood for s in samples])
    torch.testing.assert_close(got, expected)
    assert all(isinstance(s.pred_painting_likelihood, float) for s in samples)
    # every caption of the row is kept as a reference; the painted one is one of them, cleaned
    for sample, row in zip(samples, rows):
        assert sample.references == row['caption']
        assert sample.caption in [c.lower().replace('.', '') for c in row['caption']]


def test_the_metric_scores_writing_against_all_references_and_averages_painting_scores(
    predicted, monkeypatch
):
    from davinci_zoo.evaluation import write_paint_metric

    _, samples, rows = predicted
    calls = []
    monkeypatch.setattr(
        write_paint_metric,
        'caption_scores',
        lambda p, r: calls.append((p, r)) or dict.fromkeys(NAMES, 0.5),
    )
    metric = METRICS.build(dict(type='WritePaintMetric', clip_scorer=dict(type='RedShareScorer')))
    dicts = [s.to_dict() for s in samples]
    metric.process(None, dicts[:3])
    metric.process(None, dicts[3:])
    scores = metric.evaluate(4)
    ((predictions, references),) = calls
    assert list(predictions.values()) == [s.pred_caption for s in samples]
    assert list(references.values()) == [row['caption'] for row in rows]
    likelihoods = [s.pred_painting_likelihood for s in samples]
    assert scores['write_paint/self_likelihood'] == pytest.approx(sum(likelihoods) / 4)
    red = [10 * float(s.pred_painting[0].mean()) for s in samples]
    assert scores['write_paint/clip_score'] == pytest.approx(sum(red) / 4, rel=1e-5)
    assert scores['write_paint/Bleu_4'] == 0.5 and scores['write_paint/count'] == 4

    # a caption only (no references field): scored against it; no painting: no paint scores
    calls.clear()
    plain = METRICS.build(dict(type='WritePaintMetric'))
    plain.process(None, [dict(caption='a red square', pred_caption='a red circle')])
    assert set(plain.evaluate(1)) == {f'write_paint/{n}' for n in (*NAMES, 'count')}
    assert calls[0] == ({0: 'a red circle'}, {0: ['a red square']})


def test_keep_caption_references_refuses_rows_without_captions():
    from davinci_zoo.datasets.bad_rows import BadRow
    from davinci_zoo.registry import TRANSFORMS

    keep = TRANSFORMS.build(dict(type='KeepCaptionReferences'))
    assert keep(dict(caption='a cat'))['references'] == ['a cat']
    assert keep(dict(caption=['a cat', ' ', 'a dog']))['references'] == ['a cat', 'a dog']
    for bad in (dict(caption=7), dict(caption=[' ']), dict()):
        with pytest.raises(BadRow):
            keep(bad)


def test_export_tokenizer_writes_the_weights_davinci_reads_and_fails_with_one_line(
    tmp_path, capsys
):
    from davinci_zoo.checkpoint import load_checkpoint_file, save_checkpoint_file

    davinci = Config.fromfile(DAVINCI_CONFIG)
    tokenizer_cfg = dict(davinci.model.image_tokenizer, checkpoint=None)
    from davinci_zoo.registry import IMAGE_TOKENIZERS

    tokenizer = IMAGE_TOKENIZERS.build(tokenizer_cfg)
    trainer_state = {f'tokenizer.{k}': v for k, v in tokenizer.state_dict().items()}
    trainer_state['reconstruction_losses.0.scale'] = torch.ones(1)  # not the tokenizer's
    checkpoint = tmp_path / 'iter_4.pth'
    save_checkpoint_file({'state_dict': trainer_state, 'meta': {}}, checkpoint)
    (tmp_path / 'last_checkpoint').write_text(str(checkpoint))
    out = tmp_path / 'vqgan.safetensors'
    load_tool('export_tokenizer').main([str(tmp_path), str(out), '--config', DAVINCI_CONFIG])
    assert 'use it with --cfg-options model.image_tokenizer.checkpoint=' in capsys.readouterr().out
    exported = load_checkpoint_file(out)['state_dict']
    assert exported.keys() == tokenizer.state_dict().keys()
    IMAGE_TOKENIZERS.build(dict(tokenizer_cfg, checkpoint=str(out)))  # loads exactly

    wrong = tmp_path / 'davinci.pth'
    save_checkpoint_file({'state_dict': {'encoder.x': torch.ones(1)}, 'meta': {}}, wrong)
    code, err = run_in_process(capsys, 'export_tokenizer', str(wrong), str(out))
    assert code == 2 and "holds no image tokenizer weights (keys starting with 'tokenizer.')" in err
    small = tmp_path / 'small.py'
    small.write_text(
        f'_base_ = [{DAVINCI_CONFIG!r}]\nmodel = dict(visual_vocab_size=512, '
        'image_tokenizer=dict(codebook_size=512))\n'
    )
    code, err = run_in_process(
        capsys, 'export_tokenizer', str(checkpoint), str(out), '--config', str(small)
    )
    assert code == 2 and 'shape mismatches' in err and '\n' not in err
    code, err = run_in_process(capsys, 'export_tokenizer', str(checkpoint), str(tmp_path / 'x.pt'))
    assert code == 2 and 'must end in .safetensors or .pth' in err


def test_paint_needs_an_output_and_test_needs_an_evaluator(tmp_path, capsys):
    code, err = run_in_process(capsys, 'paint', DAVINCI_CONFIG, str(tmp_path), 'a cat')
    assert code == 2 and err == 'error: give --out grid.png, --out-dir DIR or both'
    checkpoint = tmp_path / 'x.pth'
    checkpoint.write_bytes(b'')
    config = tmp_path / 'no_metric.py'
    config.write_text(f'_base_ = [{DAVINCI_CONFIG!r}]\ntest_evaluator = []\n')
    data = make_custom_folder(tmp_path / 'data')
    options = [
        f'test_dataloader.dataset.data_root={data["root"]}',
        f'test_dataloader.dataset.ann_file={data["train"]}',
    ]
    code, err = run_in_process(
        capsys, 'test', str(config), str(checkpoint), '--cfg-options', *options
    )
    assert code == 2 and 'has no test_evaluator' in err and 'WritePaintMetric' in err
