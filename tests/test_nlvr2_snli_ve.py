"""NLVR2 and SNLI-VE: their published files load (bad rows counted), the pair head's feature is
the single-image feature of each image side by side, and each scene config fine-tunes and
scores through tools/train.py and tools/test.py on fixtures in the published layouts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool
from davinci_zoo_scenes import generate_scenes, render
from davinci_zoo_scenes.tasks.nlvr2 import TEMPLATES
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image
from test_davinci_model import build_model, texts

from davinci_zoo.checkpoint import load_checkpoint_file, state_dict_of
from davinci_zoo.datasets.bad_rows import BadDataError
from davinci_zoo.datasets.nlvr2 import NLVR2
from davinci_zoo.datasets.snli_ve import SNLIVE
from davinci_zoo.models.heads import SequenceClassificationHead
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import MODELS

SIZE = 32
PAIR_PIPELINE = [
    dict(
        type='TransformBroadcaster',
        mapping=dict(img_path='img_path'),
        remapping=dict(
            img='img', img_path='img_path', img_shape='img_shape', ori_shape='ori_shape'
        ),
        transforms=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    ),
    dict(type='PreCaption', keys=['text'], max_words=30),
    dict(type='TokenizeText', keys=['text']),
    dict(type='PackDaVinciInputs', text_keys=['text']),
]
SINGLE_PIPELINE = [dict(type='LoadImageFromFile', imdecode_backend='pillow'), *PAIR_PIPELINE[1:]]


def save_scene(scene, path: Path) -> np.ndarray:
    """Render ``scene`` at 32 px into ``path`` (PNG); returns the RGB array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = render(scene, SIZE)
    Image.fromarray(image).save(path)
    return image


def write_json_lines(path: Path, rows: list) -> None:
    """One JSON object per line; a str in ``rows`` is written as it is (a malformed line)."""
    path.write_text(''.join((r if isinstance(r, str) else json.dumps(r)) + '\n' for r in rows))


def write_nlvr2(root: Path, counts: dict[str, int], seed: int = 0) -> dict[str, list[dict]]:
    """NLVR2's published layout: JSON-lines ``train.json``, ``dev.json``, ``test1.json``; the
    pairs as ``images/train/<directory>/<stem>-img0.png`` / ``-img1.png`` for train and
    ``dev/``, ``test1/`` for the others. Every other row is true: "the left image shows
    <the left scene's caption>"; the others name the right scene's caption."""
    scenes = iter(generate_scenes(2 * sum(counts.values()), seed, two_object_prob=0.5))
    written = {}
    for split, count in counts.items():
        rows = []
        for index in range(count):
            stem, directory = f'{split}-{10 + index}-{index % 4}', index % 3
            folder = (
                root / 'images' / 'train' / str(directory) if split == 'train' else root / split
            )
            left, right = next(scenes), next(scenes)
            images = [
                save_scene(s, folder / f'{stem}-img{i}.png') for i, s in enumerate((left, right))
            ]
            truth = index % 2 == 0
            row = dict(
                validation={'12': str(truth)},
                sentence=f'The left image shows {(left if truth else right).caption}.',
                left_url=f'https://example.org/{stem}-left.jpg',
                writer='12',
                label=str(truth),
                right_url=f'https://example.org/{stem}-right.jpg',
                synset='scene',
                query='shapes on black1',
                identifier=f'{stem}-0',
            )
            if split == 'train':
                row['directory'] = directory
            rows.append(dict(row, images=images))
        write_json_lines(
            root / f'{split}.json', [{k: v for k, v in r.items() if k != 'images'} for r in rows]
        )
        written[split] = rows
    return written


LABELS = ('contradiction', 'neutral', 'entailment')


def write_snli_ve(root: Path, counts: dict[str, int], seed: int = 1) -> dict[str, list[dict]]:
    """SNLI-VE's published layout: ``snli_ve_{train,dev,test}.jsonl`` rows naming their
    Flickr30k image by ``Flikr30kID``, the images in ``flickr30k_images/``."""
    scenes = generate_scenes(sum(counts.values()), seed, two_object_prob=0.5)
    written, number = {}, 0
    for split, count in counts.items():
        rows = []
        for index in range(count):
            scene, image_id = scenes[number], f'{1000 + number}.jpg'
            number += 1
            path = root / 'flickr30k_images' / image_id
            path.parent.mkdir(parents=True, exist_ok=True)
            image = render(scene, SIZE)
            Image.fromarray(image).save(path, format='PNG')  # the decoder reads the header
            label = LABELS[index % 3]
            hypothesis = {
                'entailment': f'There is {scene.caption}.',
                'neutral': 'The shapes were drawn by a child.',
                'contradiction': 'The picture is empty.',
            }[label]
            row = dict(
                annotator_labels=[label],
                captionID=f'{image_id}#0',
                gold_label=label,
                pairID=f'{image_id}#0r1{label[0]}',
                sentence1=scene.caption,
                sentence1_binary_parse='( a b )',
                sentence1_parse='(ROOT (S a b))',
                sentence2=hypothesis,
                sentence2_binary_parse='( c d )',
                sentence2_parse='(ROOT (S c d))',
                Flikr30kID=image_id,
            )
            rows.append(dict(row, image=image))
        write_json_lines(
            root / f'snli_ve_{split}.jsonl',
            [{k: v for k, v in r.items() if k != 'image'} for r in rows],
        )
        written[split] = rows
    return written


def bgr_tensor(rgb: np.ndarray) -> torch.Tensor:
    """What LoadImageFromFile + PackDaVinciInputs make of an RGB image: BGR [3, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1].transpose(2, 0, 1)))


def items(dataset) -> list[dict]:
    """Every item of a map-style dataset, in index order (mmcv's wrappers need the scope)."""
    with DefaultScope.overwrite_default_scope('davinci_zoo'):
        return [dataset[index] for index in range(len(dataset))]


def test_nlvr2_reads_the_published_layout_and_counts_bad_rows(tmp_path):
    rows = write_nlvr2(tmp_path, dict(train=3, dev=2))
    train = tmp_path / 'train.json'
    good = train.read_text().splitlines()
    broken = [
        '{"identifier": "train-99-0-0", "sentence": ',  # cut off: not JSON
        dict(json.loads(good[0]), label='true?'),
        dict(json.loads(good[0]), identifier='train-10-0'),  # no sentence number
        dict(json.loads(good[0]), directory='../dev'),
        dict(json.loads(good[0]), identifier='train-77-0-1'),  # its images do not exist
        dict(json.loads(good[0]), sentence='  '),
    ]
    write_json_lines(train, [good[0], *broken, *good[1:]])
    with DefaultScope.overwrite_default_scope('davinci_zoo'):
        dataset = NLVR2(
            str(train),
            PAIR_PIPELINE,
            data_root=str(tmp_path / 'images' / 'train'),
            max_bad_fraction=None,
        )
        first, second = dataset[0], dataset[1]  # row 1 falls through the six bad rows
    assert len(dataset) == 9 and dataset.metainfo['classes'] == ('False', 'True')
    assert (first['bad_rows'], first['seen_rows'], second['bad_rows']) == (0, 1, 6)
    for item, row in ((first, rows['train'][0]), (second, rows['train'][1])):
        images = item['inputs']['images']
        assert images.shape == (2, 3, SIZE, SIZE) and images.dtype == torch.uint8
        assert torch.equal(images[0], bgr_tensor(row['images'][0]))  # left first
        assert torch.equal(images[1], bgr_tensor(row['images'][1]))
        sample = item['data_samples']
        assert int(sample.gt_label) == int(row['label'] == 'True')
        assert sample.key == row['identifier'] and sample.text == row['sentence'].lower()[:-1]
        assert sample.img_path[0].endswith(f'/{row["directory"]}/{row["identifier"][:-2]}-img0.png')
    assert dataset.tally.bad_per_file == {str(train): 6}
    dev = NLVR2(str(tmp_path / 'dev.json'), PAIR_PIPELINE, data_root=str(tmp_path / 'dev'))
    dev_items = items(dev)
    assert [int(i['data_samples'].gt_label) for i in dev_items] == [1, 0]
    assert all(i['bad_rows'] == 0 for i in dev_items)


def test_nlvr2_errors_name_the_file_and_the_row(tmp_path):
    with pytest.raises(FileNotFoundError, match='train.json does not exist'):
        NLVR2(str(tmp_path / 'train.json'))
    write_json_lines(tmp_path / 'dev.json', [dict(identifier='dev-1-0-0', sentence='a', label='1')])
    dataset = NLVR2(str(tmp_path / 'dev.json'), PAIR_PIPELINE, data_root=str(tmp_path))
    with pytest.raises(
        BadDataError, match=r"no usable row in 1 rows; the last one \S+dev.json line 1: label '1'"
    ):
        items(dataset)


def test_snli_ve_reads_the_published_files_with_the_original_label_ids(tmp_path):
    rows = write_snli_ve(tmp_path, dict(dev=3))['dev']
    dev = tmp_path / 'snli_ve_dev.jsonl'
    good = dev.read_text().splitlines()
    broken = [
        dict(json.loads(good[0]), gold_label='-'),  # SNLI's "no majority"
        dict(json.loads(good[0]), Flikr30kID='404.jpg'),  # not in the image folder
        {k: v for k, v in json.loads(good[0]).items() if k != 'sentence2'},
        '[1, 2]',  # JSON, but not an object
    ]
    write_json_lines(dev, [*good[:2], *broken, good[2]])
    dataset = SNLIVE(str(dev), SINGLE_PIPELINE, data_root=str(tmp_path / 'flickr30k_images'))
    got = [dataset[index] for index in range(3)]
    assert len(dataset) == 7 and dataset.metainfo['classes'] == LABELS
    assert [int(i['data_samples'].gt_label) for i in got[:2]] == [0, 1]  # contradiction, neutral
    third = got[2]  # the four bad rows fall through to the entailment row
    assert (third['bad_rows'], third['seen_rows'], int(third['data_samples'].gt_label)) == (4, 5, 2)
    for item, row in zip((got[0], got[1], third), rows):
        assert torch.equal(item['inputs']['images'], bgr_tensor(row['image']))
        assert item['data_samples'].key == row['pairID']
        assert item['data_samples'].text == row['sentence2'].lower().rstrip('.')
    assert dataset.tally.bad == 4


def pair_features_by_hand(model, pairs, ids, mask, encoder_ids, encoder_mask):
    """[B, 2D]: for each side, the encoder reads that image with ``encoder_ids``, the decoder
    the sentence ``ids`` against it; its state at the sentence's [SEP], side by side."""
    halves = []
    for side in (0, 1):
        memory, memory_mask = model.encode(pairs[:, side], encoder_ids, encoder_mask)
        positions = torch.arange(ids.shape[1])
        hidden = model.decoder_hidden(ids, positions, memory, memory_mask, mask)
        halves.append(hidden[torch.arange(len(ids)), mask.sum(1) - 1])  # [SEP]
    return torch.cat(halves, 1)


def test_the_pair_feature_is_each_images_sep_state_side_by_side():
    """Computed by hand: the encoder reads one image and an empty text, the decoder the
    sentence; the pair feature is [left image's state at [SEP], right image's]."""
    torch.manual_seed(0)
    head = dict(type='PairClassificationHead', num_classes=2)
    model = build_model(objectives=[], head=head).eval()
    assert model.head.classifier[0].in_features == 2 * 32
    assert isinstance(model.head, SequenceClassificationHead)  # its feature, not a copy
    strings = ['the left image shows a red circle', 'two squares']
    pairs = model.data_preprocessor.normalize(torch.rand(2, 2, 3, SIZE, SIZE))
    batch = dict(images=pairs, text=texts(model, strings))
    ids, mask = model.tokenize(strings)
    empty_ids, empty_mask = model.tokenize(['', ''])
    with torch.no_grad():
        features = model.head.features(model, batch)
        by_hand = pair_features_by_hand(model, pairs, ids, mask, empty_ids, empty_mask)
        predictions = model(batch, None, mode='predict')
    assert features.shape == (2, 64)
    assert torch.allclose(features, by_hand, atol=1e-5)
    assert not torch.allclose(features[:, :32], features[:, 32:])  # the two images differ
    logits = model.head.classifier(features)
    scores = torch.stack([sample.pred_score for sample in predictions])
    assert torch.allclose(scores, logits.softmax(1), atol=1e-6)
    with pytest.raises(ValueError, match=r'image pairs \[B, 2, 3, H, W\]'):
        model.head.features(model, dict(batch, images=pairs[:, 0]))


def test_with_text_in_encoder_the_encoder_reads_each_image_with_the_sentence():
    """The scene recipes' option: the encoder reads image and sentence together (not an
    empty text), the decoder the sentence against that; the feature is still the [SEP]
    state of each image side by side."""
    torch.manual_seed(0)
    head = dict(type='PairClassificationHead', num_classes=2, text_in_encoder=True)
    model = build_model(objectives=[], head=head).eval()
    strings = ['the left image shows a red circle', 'two squares']
    pairs = model.data_preprocessor.normalize(torch.rand(2, 2, 3, SIZE, SIZE))
    batch = dict(images=pairs, text=texts(model, strings))
    ids, mask = model.tokenize(strings)
    with torch.no_grad():
        features = model.head.features(model, batch)
        by_hand = pair_features_by_hand(model, pairs, ids, mask, ids, mask)
        model.head.text_in_encoder = False
        empty_text_features = model.head.features(model, batch)
    assert torch.allclose(features, by_hand, atol=1e-5)
    assert not torch.allclose(features, empty_text_features, atol=1e-3)


def test_without_text_in_decoder_the_decoder_reads_cls_against_image_and_sentence():
    """The encoder reads each image with the sentence; the decoder reads [CLS] alone and its
    state there is each image's feature (by hand). It differs from the decoder reading the
    sentence, changes with the sentence, and needs the sentence in the encoder."""
    torch.manual_seed(0)
    head = dict(
        type='PairClassificationHead', num_classes=2, text_in_encoder=True, text_in_decoder=False
    )
    model = build_model(objectives=[], head=head).eval()
    strings = ['the left image shows a red circle', 'two squares']
    pairs = model.data_preprocessor.normalize(torch.rand(2, 2, 3, SIZE, SIZE))
    batch = dict(images=pairs, text=texts(model, strings))
    ids, mask = model.tokenize(strings)
    cls_ids, cls_mask = model.tokenize(['', ''])
    assert cls_ids.shape == (2, 1)  # [CLS] alone
    with torch.no_grad():
        features = model.head.features(model, batch)
        by_hand = pair_features_by_hand(model, pairs, cls_ids, cls_mask, ids, mask)
        swapped = model.head.features(model, dict(batch, text=texts(model, strings[::-1])))
        model.head.text_in_decoder = True
        sentence_in_decoder = model.head.features(model, batch)
    assert torch.allclose(features, by_hand, atol=1e-5)
    assert not torch.allclose(features, swapped, atol=1e-3)  # the sentence is read
    assert not torch.allclose(features, sentence_in_decoder, atol=1e-3)
    with pytest.raises(
        ComponentArgumentError, match='text_in_decoder=False needs text_in_encoder=True'
    ):
        build_model(objectives=[], head=dict(head, text_in_encoder=False))


@pytest.fixture(scope='module')
def quickstart_like_checkpoint(tmp_path_factory) -> str:
    """The weights of a DaVinci built from the quick start's config (tokenizer included), as
    the scene configs' ``pretrained`` file: they must load strictly into the task models."""
    cfg = Config.fromfile(str(REPO / 'configs' / 'davinci_tiny_scenes32.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('quickstart') / 'iter_700.pth'
    torch.save(model.state_dict(), path)
    return str(path)


SCENE_CONFIGS = {
    'nlvr2': dict(
        config='configs/downstream/nlvr2/nlvr2_scenes32.py',
        write=lambda root: write_nlvr2(root, dict(train=4, dev=2, test1=3)),
        splits=dict(train=('train.json', 'images/train'), val=('dev.json', 'dev')),
        test=('test1.json', 'test1'),
        frozen=('encoder.embeddings.word_embeddings.weight',),  # the recipe freezes them
    ),
    'snli_ve': dict(
        config='configs/downstream/snli_ve/snli_ve_scenes32.py',
        write=lambda root: write_snli_ve(root, dict(train=4, dev=3, test=3)),
        splits=dict(
            train=('snli_ve_train.jsonl', 'flickr30k_images'),
            val=('snli_ve_dev.jsonl', 'flickr30k_images'),
        ),
        test=('snli_ve_test.jsonl', 'flickr30k_images'),
        frozen=(),
    ),
}


def data_options(root: Path, loader: str, files: tuple[str, str]) -> list[str]:
    ann_file, images = files
    return [
        f'{loader}_dataloader.dataset.ann_file={root / ann_file}',
        f'{loader}_dataloader.dataset.data_root={root / images}',
    ]


@pytest.mark.slow(budget_s=120)
@pytest.mark.subprocess
@pytest.mark.parametrize('task', sorted(SCENE_CONFIGS))
def test_the_scene_config_fine_tunes_and_scores_through_the_tools(
    task, tmp_path, quickstart_like_checkpoint
):
    """Two training steps (4 rows, batch 2, one epoch) from a quick-start-shaped checkpoint,
    validation on dev, then tools/test.py on the test split writes accuracy/top1. The weights
    the recipe freezes come out as they went in; the encoder's move."""
    spec = SCENE_CONFIGS[task]
    data = tmp_path / 'data'
    spec['write'](data)
    work = tmp_path / 'work'
    options = [
        f'model.pretrained={quickstart_like_checkpoint}',
        'train_dataloader.batch_size=2',
        'train_cfg.max_epochs=1',
        *data_options(data, 'train', spec['splits']['train']),
        *data_options(data, 'val', spec['splits']['val']),
    ]
    one_thread = dict(OMP_NUM_THREADS='1')
    config = str(REPO / spec['config'])
    train = run_tool(
        'tools/train.py', config, '--work-dir', str(work), '--cfg-options', *options, **one_thread
    )
    assert train.returncode == 0, train.stderr[-3000:]
    log = train.stdout + train.stderr
    assert 'loaded ' in log and 'dropped' in log  # the quick start's tokenizer is not built
    assert 'loss_cls: ' in log and 'accuracy/top1: ' in log
    assert re.search(r'Epoch\(train\) +\[1\]\[2/2\]', log)  # exactly two steps
    start = state_dict_of(load_checkpoint_file(quickstart_like_checkpoint))
    trained = state_dict_of(load_checkpoint_file(work / 'epoch_1.pth'))
    for key in spec['frozen']:
        assert torch.equal(trained[key], start[key]), key
    moved = 'encoder.layers.0.attention.self.query.weight'
    assert not torch.equal(trained[moved], start[moved])
    metrics = tmp_path / 'metrics.json'
    test = run_tool(
        'tools/test.py',
        config,
        str(work / 'epoch_1.pth'),
        '--work-dir',
        str(work),
        '--metrics-json',
        str(metrics),
        '--cfg-options',
        *data_options(data, 'test', spec['test']),
        **one_thread,
    )
    assert test.returncode == 0, test.stderr[-3000:]
    accuracy = json.loads(metrics.read_text())['accuracy/top1']
    assert (
        0 <= accuracy <= 100 and abs(accuracy * 3 / 100 - round(accuracy * 3 / 100)) < 1e-4
    )  # of 3


@pytest.mark.parametrize(
    ('config', 'write', 'files', 'shape'),
    [
        ('nlvr2/nlvr2_base.py', write_nlvr2, ('dev.json', 'dev'), (2, 3, 384, 384)),
        (
            'snli_ve/snli_ve_base.py',
            write_snli_ve,
            ('snli_ve_dev.jsonl', 'flickr30k_images'),
            (3, 576, 576),
        ),
    ],
)
def test_the_paper_recipes_read_their_data_at_their_resolution(
    config, write, files, shape, tmp_path
):
    """The base configs' train and test pipelines (crops, RandAugment, resizes) on rows in the
    published layout give images at the recipe's resolution; the model is the head only."""
    from davinci_zoo.registry import DATASETS

    cfg = Config.fromfile(str(REPO / 'configs' / 'downstream' / config))
    assert cfg.model.objectives == [] and cfg.model.pretrained.startswith('work_dirs/davinci_base/')
    assert cfg.model.image_size == shape[-1] and cfg.test_evaluator.type == 'Accuracy'
    write(tmp_path, {files[0].removeprefix('snli_ve_').split('.')[0]: 3})
    for loader in ('train_dataloader', 'test_dataloader'):
        dataset = dict(cfg[loader].dataset, ann_file=str(tmp_path / files[0]))
        dataset['data_root'] = str(tmp_path / files[1])
        with DefaultScope.overwrite_default_scope('davinci_zoo'):
            item = DATASETS.build(dataset)[0]
        assert item['bad_rows'] == 0 and tuple(item['inputs']['images'].shape) == shape


def test_accuracy_reads_the_heads_predictions_and_the_datasets_labels():
    """mmpretrain's Accuracy on the SNLI-VE head's data samples: two of three right is 66.7."""
    from mmpretrain.evaluation import Accuracy
    from mmpretrain.structures import DataSample

    torch.manual_seed(0)
    head = dict(type='SequenceClassificationHead', num_classes=3)
    model = build_model(objectives=[], head=head).eval()
    batch = dict(
        images=model.data_preprocessor.normalize(torch.rand(3, 3, SIZE, SIZE)),
        text=texts(model, ['there is a red circle', 'the picture is empty', 'a blue square']),
    )
    with torch.no_grad():
        predicted = [int(s.pred_label) for s in model(batch, None, mode='predict')]
    labels = [predicted[0], predicted[1], (predicted[2] + 1) % 3]  # the last one wrong
    samples = [DataSample().set_gt_label(label) for label in labels]
    with torch.no_grad():
        samples = model(batch, samples, mode='predict')
    metric = Accuracy(topk=(1,))
    metric.process(None, [sample.to_dict() for sample in samples])
    assert metric.evaluate(3) == {'accuracy/top1': pytest.approx(200 / 3)}  # the logged key


@pytest.mark.slow(budget_s=60)
@pytest.mark.subprocess
def test_the_scene_breakdown_splits_the_test_accuracy(tmp_path):
    """``python -m davinci_zoo_scenes.tasks.breakdown`` on generated NLVR2 scenes: its overall
    accuracy is tools/test.py's, and its seen / unseen and per-template counts add up to the
    split, with the unseen items those the generator listed."""
    from davinci_zoo_scenes.tasks import generate_task

    meta = generate_task('nlvr2', tmp_path / 'data', seed=0, scale=0.04)
    root = tmp_path / 'data' / 'nlvr2'
    config = str(REPO / 'configs' / 'downstream' / 'nlvr2' / 'nlvr2_scenes32.py')
    cfg = Config.fromfile(config)
    cfg.model.pretrained = None
    torch.manual_seed(0)
    checkpoint = tmp_path / 'random.pth'
    torch.save(MODELS.build(cfg.model).state_dict(), checkpoint)
    options = ['--cfg-options', *data_options(root, 'test', ('test1.json', 'test1'))]
    metrics = tmp_path / 'metrics.json'
    test = run_tool(
        'tools/test.py',
        config,
        str(checkpoint),
        '--work-dir',
        str(tmp_path / 'work'),
        '--metrics-json',
        str(metrics),
        *options,
        OMP_NUM_THREADS='1',
    )
    assert test.returncode == 0, test.stderr[-3000:]
    out = tmp_path / 'breakdown.json'
    result = run_tool(
        '-m',
        'davinci_zoo_scenes.tasks.breakdown',
        config,
        str(checkpoint),
        '--out',
        str(out),
        *options,
        OMP_NUM_THREADS='1',
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(out.read_text())
    assert json.loads(result.stdout) == found
    total = meta['splits']['test1']
    assert found['task'] == 'nlvr2' and found['all']['count'] == total
    tested = json.loads(metrics.read_text())['accuracy/top1']
    assert found['all']['accuracy'] == pytest.approx(tested)
    assert found['unseen']['count'] == len(meta['unseen']['test1']) > 0
    assert found['seen']['count'] + found['unseen']['count'] == total
    assert sum(t['count'] for t in found['templates'].values()) == total
    assert set(found['templates']) <= {template.name for template in TEMPLATES}


def test_the_breakdown_marks_unseen_items_of_a_file_holding_part_of_a_split(tmp_path):
    """The breakdown also reads an annotation file that is not a whole split (here the first
    rows of dev, in a file of another name): its unseen keys are the generator's."""
    from types import SimpleNamespace

    from davinci_zoo_scenes.tasks.breakdown import _unseen_keys

    meta = dict(unseen=dict(train=[], dev=['dev-2-0-0', 'dev-2-1-0'], test1=['test1-0-0-0']))
    (tmp_path / 'scenes_task.json').write_text(json.dumps(meta))
    part = tmp_path / 'dev_first_rows.json'
    dataset = SimpleNamespace(rows=[(str(part), 1)])
    unseen = _unseen_keys('nlvr2', dataset)
    assert unseen == {'dev-2-0-0', 'dev-2-1-0', 'test1-0-0-0'}  # no key is in two splits
