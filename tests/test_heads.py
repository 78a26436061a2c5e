"""Heads: a task is a head on the shared parts. The sequence-classification head learns a
fixture through tools/train.py and tools/test.py; task and pretraining checkpoints share
every part's keys; the head's features are the decoder state at [SEP]."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool, tiny_davinci_config
from davinci_zoo_scenes import generate_scenes, render
from PIL import Image
from test_davinci_model import build_model, texts

from davinci_zoo.checkpoint import load_checkpoint_file, state_dict_of
from davinci_zoo.registry import MODELS

REPO_RUNTIME = REPO / 'configs' / '_base_' / 'default_runtime.py'
CLASSIFIER = dict(type='SequenceClassificationHead', num_classes=2, text_key='caption')
PIPELINE = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs'),
]


def write_counting_fixture(root, count: int = 96, train: int = 64) -> dict:
    """Scenes as PNG files with 'are there two objects' and a 0/1 label, in the annotation
    format ImageTextAnnotations reads: the first ``train`` rows to train, the rest to test."""
    rows = []
    for index, scene in enumerate(generate_scenes(count, 5, two_object_prob=0.5)):
        Image.fromarray(render(scene, 32)).save(root / f'{index}.png')
        two = int(len(scene.description.objects) == 2)
        rows.append(dict(image=f'{index}.png', caption='are there two objects', label=two))
    assert 0.3 < np.mean([row['label'] for row in rows]) < 0.7
    files = {}
    for name, part in (('train', rows[:train]), ('test', rows[train:])):
        files[name] = root / f'{name}.jsonl'
        files[name].write_text(''.join(json.dumps(row) + '\n' for row in part))
    return files


def classification_config(root, files) -> str:
    """A tiny DaVinci with only the head (no objective needs codes, so the tokenizer's file
    named in the config does not exist and is never read)."""
    model = tiny_davinci_config(objectives=[], head=CLASSIFIER)
    model['image_tokenizer']['checkpoint'] = str(root / 'never-trained-tokenizer.safetensors')

    def loader(name: str, shuffle: bool) -> dict:
        return dict(
            batch_size=16,
            num_workers=0,
            sampler=dict(type='InfiniteSampler' if shuffle else 'DefaultSampler', shuffle=shuffle),
            dataset=dict(
                type='ImageTextAnnotations',
                ann_file=str(files[name]),
                data_root=str(root),
                label_key='label',
                pipeline=PIPELINE,
            ),
            collate_fn=dict(type='davinci_zoo.mixed_collate'),
        )

    config = dict(
        _base_=[str(REPO_RUNTIME)],
        model=model,
        train_dataloader=loader('train', True),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=200),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=2e-3)),
        # decayed to zero, so BatchNorm's running statistics catch up with the last weights
        param_scheduler=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=200)],
        test_dataloader=loader('test', False),
        test_cfg=dict(type='TestLoop'),
        test_evaluator=dict(type='Accuracy'),
        default_hooks=dict(checkpoint=dict(interval=200), logger=dict(interval=50)),
        randomness=dict(seed=0),
    )
    path = root / 'counting.py'
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in config.items()))
    return str(path)


@pytest.mark.slow(budget_s=150)
@pytest.mark.subprocess
def test_a_classification_head_learns_a_fixture_through_the_tools(tmp_path):
    """200 steps on 64 scenes: the held-out 32 are counted right (mmpretrain's Accuracy on the
    head's pred_label), and the checkpoint holds the shared parts and the head only."""
    config = classification_config(tmp_path, write_counting_fixture(tmp_path))
    work = tmp_path / 'work'
    one_thread = dict(OMP_NUM_THREADS='1')
    train = run_tool('tools/train.py', config, '--work-dir', str(work), **one_thread)
    assert train.returncode == 0, train.stderr[-3000:]
    log = train.stdout + train.stderr
    assert 'loss_cls: ' in log and 'accuracy: ' in log
    metrics = tmp_path / 'metrics.json'
    test = run_tool(
        'tools/test.py',
        config,
        str(work / 'iter_200.pth'),
        '--work-dir',
        str(work),
        '--metrics-json',
        str(metrics),
        **one_thread,
    )
    assert test.returncode == 0, test.stderr[-3000:]
    accuracy = json.loads(metrics.read_text())['accuracy/top1']
    assert accuracy >= 80.0, accuracy  # percent; chance is about 50 (seeds 0-2: 100, 91, 100)
    keys = set(state_dict_of(load_checkpoint_file(work / 'iter_200.pth')))
    assert {'head.classifier.0.weight', 'head.classifier.2.bias'} <= keys
    assert not any(key.startswith('image_tokenizer.') for key in keys)


def test_task_and_pretraining_checkpoints_share_every_part_key():
    """A pretraining model's weights, tokenizer aside, fill every key of a task model but the
    head's: a task starts from any pretraining checkpoint."""
    pretraining = build_model(head=dict(type='WritePaintHead'))
    task = build_model(objectives=[], head=CLASSIFIER)
    shared = {k: v for k, v in pretraining.state_dict().items() if not k.startswith('image_tok')}
    missing, unexpected = task.load_state_dict(shared, strict=False)
    assert unexpected == [] and missing and all(key.startswith('head.') for key in missing)
    assert all(torch.equal(task.state_dict()[key], value) for key, value in shared.items())
    assert task.head.classifier[0].in_features == 32  # the model's width, filled in


def test_the_feature_is_the_decoder_state_at_sep_and_predict_sets_scores():
    torch.manual_seed(0)
    model = build_model(objectives=[], head=dict(CLASSIFIER, text_key='text')).eval()
    strings = ['a small red circle', 'the end']
    batch = dict(text=texts(model, strings))
    ids, mask = model.tokenize(strings)
    with torch.no_grad():
        features = model.head.features(model, batch)  # text only: the encoder reads the text
        memory, memory_mask = model.encode(None, ids, mask)
        hidden = model.decoder_hidden(ids, torch.arange(ids.shape[1]), memory, memory_mask, mask)
    assert torch.equal(features[0], hidden[0, 5]) and torch.equal(features[1], hidden[1, 3])
    with torch.no_grad():
        predictions = model(batch, None, mode='predict')
    scores = torch.stack([sample.pred_score for sample in predictions])
    assert torch.allclose(scores.sum(1), torch.ones(2))
    assert [int(sample.pred_label) for sample in predictions] == scores.argmax(1).tolist()
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(tiny_davinci_config(objectives=[], head=dict(CLASSIFIER, num_classes=1)))
