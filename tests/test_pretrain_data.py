"""The pretraining data layer: every format, bad rows skipped and counted, rank x worker
splits, mixing sources, the bad-row hook and the dataset converters."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import io
import json
import tarfile
from collections import Counter
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO
from mmengine.logging import MessageHub
from PIL import Image
from torch.utils.data import DataLoader

import davinci_zoo.components  # noqa: F401 (registers everything)
from davinci_zoo.datasets import bad_rows_hook
from davinci_zoo.datasets.bad_rows import BadDataError
from davinci_zoo.datasets.bad_rows_hook import BadRowsHook
from davinci_zoo.datasets.captions import pre_caption
from davinci_zoo.datasets.mixing import mixed_collate
from davinci_zoo.datasets.streaming import ENDLESS, expand_braces, resolve_files
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import DATASETS

torch.set_num_threads(1)
SIZE = 8  # image_size of every dataset here
RESIZE = [
    dict(type='ResizeEdge', scale=SIZE, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=SIZE),
]
CAPTION = [
    dict(type='PreCaption', max_words=30),
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs'),
]
FILE_PIPELINE = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    *RESIZE,
    *CAPTION,
]
BYTES_PIPELINE = [dict(type='LoadImageFromBytes'), *RESIZE, *CAPTION]


def text_pipeline(max_words: int = 512) -> list[dict]:
    return [
        dict(type='PreCaption', keys=['text'], max_words=max_words),
        dict(type='TokenizeText', keys=['text']),
        dict(type='PackDaVinciInputs'),
    ]


def caption_of(item) -> str:
    return item['data_samples'].caption


def key_of(item) -> str:
    return item['data_samples'].key


# -- fixtures written by the tests -----------------------------------------------------------
def image_bytes(seed: int, fmt: str = 'PNG') -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


BROKEN_JPEG = image_bytes(0, 'JPEG')[:40]


def write_jsonl(path, rows) -> str:
    path.write_text(''.join((r if isinstance(r, str) else json.dumps(r)) + '\n' for r in rows))
    return str(path)


def write_shard(path, samples) -> str:
    """samples: [(key, {extension: bytes})] -> a tar with members <key>.<extension>."""
    with tarfile.open(path, 'w') as tar:
        for key, members in samples:
            for extension, data in members.items():
                info = tarfile.TarInfo(f'{key}.{extension}')
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


def good_sample(seed: int) -> dict:
    if seed % 2:
        return {'jpg': image_bytes(seed, 'JPEG'), 'txt': f'Caption number {seed}!'.encode()}
    return {'png': image_bytes(seed), 'json': json.dumps({'caption': [f'picture {seed}']}).encode()}


def write_shards(folder, counts, bad=()) -> tuple[list[str], set[str]]:
    """Shards of counts[i] samples each, numbered 0, 1, ... over all shards; the samples
    numbered in ``bad`` are broken (a truncated jpeg, or no caption).

    Returns (shard paths, row names of the good samples)."""
    folder.mkdir(exist_ok=True)
    paths, good, number = [], set(), 0
    broken = [{'jpg': BROKEN_JPEG, 'txt': b'x'}, {'png': image_bytes(0)}]
    for shard, count in enumerate(counts):
        path = str(folder / f'part-{shard:02d}.tar')
        samples = []
        for _ in range(count):
            key = f'{number:05d}'
            if number in bad:
                samples.append((key, broken[number % 2]))
            else:
                samples.append((key, good_sample(number)))
                good.add(f'{path}/{key}')
            number += 1
        paths.append(write_shard(path, samples))
    return paths, good


def items_of(dataset, num_workers: int = 0, batch_size: int = 2) -> list[dict]:
    """Everything a DataLoader over ``dataset`` yields, one dict per item."""
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=lambda items: items
    )
    return [item for batch in loader for item in batch]


def load_tool(name: str):
    path = REPO / 'tools' / 'dataset_converters' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'dataset_converter_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- captions and file lists -----------------------------------------------------------------
def test_pre_caption_cleans_like_the_original():
    assert pre_caption('A  Man-eating "Shark", (probably)!\n', 30) == 'a man eating shark probably'
    assert pre_caption('cats/dogs; more: words~ #1*', 30) == 'cats dogs more words 1'
    assert pre_caption('one two three four', 2) == 'one two'
    assert pre_caption('  ?!  ', 30) == ''
    assert pre_caption('keep every word here', None) == 'keep every word here'


def test_file_lists_expand_braces_and_directories(tmp_path):
    assert expand_braces('s-{08..10}.tar') == ['s-08.tar', 's-09.tar', 's-10.tar']
    paths, _ = write_shards(tmp_path / 'shards', [1, 1, 1])
    assert resolve_files(str(tmp_path / 'shards'), ('.tar',), 'x') == paths
    assert resolve_files(str(tmp_path / 'shards/part-{00..02}.tar'), ('.tar',), 'x') == paths
    with pytest.raises(FileNotFoundError, match='part-03.tar'):
        resolve_files(str(tmp_path / 'shards/part-{02..03}.tar'), ('.tar',), 'x')
    with pytest.raises(ComponentArgumentError, match='not a local path'):
        resolve_files('https://example.com/a.tar', ('.tar',), 'x')


# -- ImageTextAnnotations ---------------------------------------------------------------------
def write_annotation_fixture(tmp_path) -> str:
    images = tmp_path / 'images'
    images.mkdir()
    for i in range(3):
        (images / f'{i}.png').write_bytes(image_bytes(i))
    (images / 'broken.jpg').write_bytes(BROKEN_JPEG)
    return write_jsonl(tmp_path / 'ann.jsonl', [
        {'image': 'images/0.png', 'caption': 'A Dog, running!'},
        '{"image": "images/1.png", "caption": ',  # not JSON
        {'image': 'images/1.png', 'caption': ['First one.', 'Second one.']},
        {'caption': 'no image key'},
        {'image': 'images/2.png', 'caption': '?!'},  # empty once cleaned
        {'image': 'images/broken.jpg', 'caption': 'broken jpeg'},
        {'image': 'images/missing.png', 'caption': 'missing file'},
        {'image': 'images/2.png', 'caption': 'the last one'},
    ])  # fmt: skip


def test_image_text_annotations_skip_and_count_bad_rows(tmp_path):
    ann_file = write_annotation_fixture(tmp_path)
    dataset = DATASETS.build(
        dict(
            type='ImageTextAnnotations',
            ann_file=ann_file,
            data_root=str(tmp_path),
            pipeline=FILE_PIPELINE,
            min_rows=10**6,
        )
    )
    assert len(dataset) == 8
    first = dataset[0]
    images = first['inputs']['images']
    assert images.shape == (3, SIZE, SIZE) and images.dtype == torch.uint8
    sample = first['data_samples']
    assert (sample.caption, sample.sample_idx, first['bad_rows'], first['seen_rows']) == (
        'a dog running',
        0,
        0,
        1,
    )
    assert sample.img_path == str(tmp_path / 'images' / '0.png')
    tokens = first['inputs']['caption']
    assert tokens.ids.tolist() == [1037, 3899, 2770] and tokens.num_words == 3
    # A bad row gives the next good one; every bad row read on the way is counted.
    items = [dataset[i] for i in range(len(dataset))]
    assert [item['data_samples'].sample_idx for item in items] == [0, 2, 2, 7, 7, 7, 7, 7]
    assert [item['bad_rows'] for item in items] == [0, 1, 0, 4, 3, 2, 1, 0]
    assert all(item['seen_rows'] == item['bad_rows'] + 1 for item in items)
    assert dataset.tally.bad == 11 and dataset.tally.seen == 9 + 11  # 9 items, 11 bad
    assert dataset.tally.bad_per_file == {ann_file: 11}


def test_image_text_annotations_json_list_and_random_caption_choice(tmp_path):
    (tmp_path / 'a.png').write_bytes(image_bytes(0))
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps([{'img': 'a.png', 'text': ['One.', 'Two!']}]))
    dataset = DATASETS.build(
        dict(
            type='ImageTextAnnotations',
            ann_file=str(ann_file),
            data_root=str(tmp_path),
            pipeline=FILE_PIPELINE,
            image_key='img',
            caption_key='text',
        )
    )
    np.random.seed(0)
    assert {caption_of(dataset[0]) for _ in range(30)} == {'one', 'two'}
    with pytest.raises(FileNotFoundError, match='nothere.json'):
        DATASETS.build(dict(type='ImageTextAnnotations', ann_file=str(tmp_path / 'nothere.json')))


def test_image_text_annotations_stop_when_too_many_rows_are_bad(tmp_path):
    ann_file = write_annotation_fixture(tmp_path)
    dataset = DATASETS.build(
        dict(
            type='ImageTextAnnotations',
            ann_file=ann_file,
            data_root=str(tmp_path),
            pipeline=FILE_PIPELINE,
            max_bad_fraction=0.3,
            min_rows=5,
        )
    )
    dataset[0]
    with pytest.raises(BadDataError, match=r'ann\.jsonl') as error:
        for i in range(len(dataset)):
            dataset[i]
    assert 'max_bad_fraction=0.3' in str(error.value)


# -- Base64JsonlPairs -------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_base64_jsonl_pairs_read_the_original_format(tmp_path):
    path = write_jsonl(tmp_path / 'part-0.jsonl', [
        {'b64_resized_binary': b64(image_bytes(0)), 'desc': 'A Red Ball.'},
        {'binary': b64(image_bytes(1, 'JPEG')), 'TEXT': ['Only choice']},
        {'binary': '!!not base64!!', 'desc': 'bad base64'},
        {'binary': b64(b'valid base64, not an image'), 'desc': 'not an image'},
        {'binary': b64(BROKEN_JPEG), 'desc': 'broken jpeg'},
        'not json at all',
        {'binary': b64(image_bytes(2))},
        {'binary': b64(image_bytes(3)), 'desc': ''},
        {'binary': b64(image_bytes(4)), 'desc': 'the end'},
    ])  # fmt: skip
    dataset = DATASETS.build(
        dict(
            type='Base64JsonlPairs',
            files=path,
            pipeline=BYTES_PIPELINE,
            rank=0,
            world_size=1,
            min_rows=10**6,
        )
    )
    items = items_of(dataset)
    assert [caption_of(item) for item in items] == ['a red ball', 'only choice', 'the end']
    assert [key_of(item) for item in items] == [f'{path}:1', f'{path}:2', f'{path}:9']
    assert items[0]['inputs']['images'].shape == (3, SIZE, SIZE)
    assert [item['bad_rows'] for item in items] == [0, 0, 6]
    assert sum(item['seen_rows'] for item in items) == 9
    renamed = write_jsonl(tmp_path / 'other.jsonl', [{'img': b64(image_bytes(0)), 'cap': 'x y'}])
    dataset = DATASETS.build(
        dict(
            type='Base64JsonlPairs',
            files=renamed,
            pipeline=BYTES_PIPELINE,
            image_keys='img',
            caption_keys=['cap'],
        )
    )
    assert [caption_of(item) for item in items_of(dataset)] == ['x y']


def test_base64_jsonl_pairs_stop_with_the_file_name(tmp_path):
    rows = [{'binary': '%%%', 'desc': 'bad'}] * 3 + [{'binary': b64(image_bytes(0)), 'desc': 'ok'}]
    path = write_jsonl(tmp_path / 'mostly-bad.jsonl', rows * 3)
    dataset = DATASETS.build(
        dict(
            type='Base64JsonlPairs',
            files=path,
            pipeline=BYTES_PIPELINE,
            max_bad_fraction=0.5,
            min_rows=8,
        )
    )
    with pytest.raises(BadDataError, match='mostly-bad.jsonl'):
        items_of(dataset)


# -- WebDatasetShards ---------------------------------------------------------------------------
def keys_over_ranks_and_workers(paths, world_size=2, num_workers=2, **kwargs):
    """(keys of every item, total bad_rows, total seen_rows) over all simulated ranks."""
    keys, bad, seen = [], 0, 0
    for rank in range(world_size):
        dataset = DATASETS.build(
            dict(
                type='WebDatasetShards',
                shards=paths,
                pipeline=BYTES_PIPELINE,
                rank=rank,
                world_size=world_size,
                min_rows=10**6,
                **kwargs,
            )
        )
        loader = DataLoader(
            dataset, batch_size=2, num_workers=num_workers, collate_fn=mixed_collate
        )
        for batch in loader:
            assert batch['inputs']['images'].shape[1:] == (3, SIZE, SIZE)
            keys.extend(sample.key for sample in batch['data_samples'])
            bad += batch['bad_rows']
            seen += batch['seen_rows']
    return keys, bad, seen


# Each broken sample is followed by a good one read by the same consumer in either file order
# (so the counts attached to items add up to all of them): the first of a shard when files
# are split, rows 5 and 6 of 11 when rows are split over the 4 consumers.
@pytest.mark.parametrize(
    'counts, bad',
    [([3, 4, 2, 3, 3, 1], {0, 7, 12}), ([5, 6], {5, 6})],
    ids=['split-files', 'split-rows'],
)
def test_shards_are_read_exactly_once_over_2_ranks_x_2_workers(tmp_path, counts, bad):
    paths, good = write_shards(tmp_path / 'shards', counts, bad)
    keys, bad_rows, seen_rows = keys_over_ranks_and_workers(paths)
    assert len(keys) == len(set(keys)) and set(keys) == good
    assert (bad_rows, seen_rows) == (len(bad), sum(counts))
    # the same shards streamed by a command (webdataset's pipe: shards)
    keys, bad_rows, seen_rows = keys_over_ranks_and_workers([f'pipe:cat {p}' for p in paths])
    assert sorted(keys) == sorted(f'pipe:cat {key}' for key in good)
    assert (bad_rows, seen_rows) == (len(bad), sum(counts))


def test_shards_item_format_captions_and_shuffled_passes(tmp_path):
    paths, good = write_shards(tmp_path / 'shards', [2, 2, 2, 2])
    shards = dict(type='WebDatasetShards', shards=paths, pipeline=BYTES_PIPELINE)
    dataset = DATASETS.build(dict(shards, seed=3))
    items = items_of(dataset)
    captions = {key_of(item).rsplit('/', 1)[1]: caption_of(item) for item in items}
    assert captions['00000'] == 'picture 0' and captions['00001'] == 'caption number 1'
    assert len(dataset) == 8  # rows per pass of this rank, counted
    orders = [dataset.files_in_order(epoch) for epoch in range(4)]
    assert all(sorted(order) == paths for order in orders) and len(set(map(tuple, orders))) > 1
    infinite = DATASETS.build(dict(shards, infinite=True))
    assert len(infinite) == ENDLESS  # mmengine's LoggerHook asks
    stream = iter(infinite)
    keys = Counter(key_of(next(stream)) for _ in range(3 * len(good)))
    assert set(keys) == good and set(keys.values()) == {3}


def test_truncated_shard_counts_one_bad_row_and_reading_goes_on(tmp_path):
    paths, good = write_shards(tmp_path / 'shards', [3, 3])
    shard = tmp_path / 'shards' / 'part-00.tar'
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2 + 100])
    dataset = DATASETS.build(
        dict(
            type='WebDatasetShards',
            shards=paths,
            pipeline=BYTES_PIPELINE,
            shuffle=False,
            min_rows=10**6,
        )
    )
    items = items_of(dataset)
    assert {key_of(item) for item in items} >= {key for key in good if paths[1] in key}
    assert sum(item['bad_rows'] for item in items) == 1


def test_shards_keep_the_order_they_had_before_webdataset(tmp_path):
    """Items (shard/key, bad_rows, seen_rows) per rank, 2 ranks x 2 workers, seed 3, as the
    tarfile reader gave them before the webdataset library read the shards."""
    paths, _ = write_shards(tmp_path / 'shards', [3, 4, 2, 3, 3, 1], {0, 7, 12})
    before = [
        [('02/00008', 1, 2), ('05/00015', 0, 1), ('03/00009', 0, 1), ('00/00001', 1, 2),
         ('03/00010', 0, 1), ('00/00002', 0, 1), ('03/00011', 0, 1)],
        [('04/00013', 1, 2), ('01/00003', 0, 1), ('04/00014', 0, 1), ('01/00004', 0, 1),
         ('01/00005', 0, 1), ('01/00006', 0, 1)],
    ]  # fmt: skip
    for rank in range(2):
        dataset = DATASETS.build(
            dict(
                type='WebDatasetShards',
                shards=paths,
                pipeline=BYTES_PIPELINE,
                seed=3,
                rank=rank,
                world_size=2,
                min_rows=10**6,
            )
        )
        rows = [
            (
                key_of(item).split('part-')[1].replace('.tar', ''),
                item['bad_rows'],
                item['seen_rows'],
            )
            for item in items_of(dataset, num_workers=2, batch_size=1)
        ]
        assert rows == before[rank]


def test_fewer_shards_than_consumers_split_rows_not_shards(tmp_path):
    """2 shards, 4 consumers: webdataset would leave 2 of them without data; every consumer
    reads both shards and keeps every 4th row instead."""
    paths, good = write_shards(tmp_path / 'shards', [5, 6])
    per_consumer = []
    for rank in range(4):
        dataset = DATASETS.build(
            dict(
                type='WebDatasetShards',
                shards=paths,
                pipeline=BYTES_PIPELINE,
                rank=rank,
                world_size=4,
                shuffle=False,
            )
        )
        per_consumer.append([key_of(item) for item in items_of(dataset)])
    assert [len(keys) for keys in per_consumer] == [3, 3, 3, 2]
    assert per_consumer[1] == [f'{paths[0]}/00001', f'{paths[1]}/00005', f'{paths[1]}/00009']
    assert sorted(sum(per_consumer, [])) == sorted(good)


def test_shard_errors_count_as_bad_rows_and_reading_goes_on(tmp_path):
    """A tar cut inside a member's data (one error, reported twice by webdataset), a pipe:
    command that fails: one bad row each. The sample whose caption was cut off is a bad row
    of its own; the samples before the cut and the other shard's arrive."""
    paths, _ = write_shards(tmp_path / 'shards', [4, 3])
    with tarfile.open(paths[0]) as tar:
        member = tar.getmember('00002.json')  # sample 2: a png, then its caption
    data = Path(paths[0]).read_bytes()
    Path(paths[0]).write_bytes(data[: member.offset_data + member.size // 2])
    dataset = DATASETS.build(
        dict(
            type='WebDatasetShards',
            shards=[paths[0], 'pipe:false', f'pipe:cat {paths[1]}'],
            pipeline=BYTES_PIPELINE,
            shuffle=False,
            min_rows=10**6,
        )
    )
    items = items_of(dataset)
    kept = [f'{paths[0]}/00000', f'{paths[0]}/00001']
    assert [key_of(item) for item in items] == kept + [
        f'pipe:cat {paths[1]}/{key:05d}' for key in (4, 5, 6)
    ]
    assert sum(item['bad_rows'] for item in items) == 3  # the cut, its sample, pipe:false
    assert sum(item['seen_rows'] for item in items) == 5 + 3


def test_items_carry_their_shard_and_offset(tmp_path):
    """Offsets count every sample of a shard from 0, bad ones too (a resume point)."""
    paths, _ = write_shards(tmp_path / 'shards', [3, 2], {1})
    pipeline = [
        *BYTES_PIPELINE[:-1],
        dict(type='PackDaVinciInputs', meta_keys=('key', 'shard', 'offset')),
    ]
    dataset = DATASETS.build(
        dict(type='WebDatasetShards', shards=paths, pipeline=pipeline, shuffle=False)
    )
    items = items_of(dataset)
    assert [(item['shard'], item['offset']) for item in items] == [
        (paths[0], 0), (paths[0], 2), (paths[1], 0), (paths[1], 1)
    ]  # fmt: skip
    sample = items[1]['data_samples']  # the pipeline saw the tags too
    assert (sample.shard, sample.offset) == (paths[0], 2)


def test_shards_split_themselves_under_torch_distributed(tmp_path, monkeypatch):
    """webdataset's default node splitter raises once RANK/WORLD_SIZE say 2 processes; ours
    gives this rank its share."""
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '2')
    paths, _ = write_shards(tmp_path / 'shards', [1, 1, 1, 1])
    dataset = DATASETS.build(
        dict(
            type='WebDatasetShards',
            shards=paths,
            pipeline=BYTES_PIPELINE,
            rank=1,
            world_size=2,
            shuffle=False,
        )
    )
    assert [key_of(item) for item in items_of(dataset)] == [
        f'{paths[1]}/00001', f'{paths[3]}/00003'
    ]  # fmt: skip


# -- TextCorpus --------------------------------------------------------------------------------
def test_text_corpus_reads_jsonl_gzip_and_plain_text(tmp_path):
    jsonl = write_jsonl(tmp_path / 'c4.jsonl', [
        {'text': 'First Document, here.', 'url': 'u'},
        'broken {',
        {'content': 'wrong key'},
        {'text': '...'},
        {'text': 'one two three four five six'},
    ])  # fmt: skip
    with gzip.open(tmp_path / 'c4-00001.json.gz', 'wt') as stream:
        stream.write(json.dumps({'body': 'Zipped text'}) + '\n')
    (tmp_path / 'plain.txt').write_text('Line One\n\n  line two  \n')
    dataset = DATASETS.build(
        dict(
            type='TextCorpus',
            files=[jsonl, str(tmp_path / 'plain.txt')],
            pipeline=text_pipeline(max_words=4),
            shuffle=False,
            min_rows=10**6,
        )
    )
    items = items_of(dataset)
    assert [item['data_samples'].text for item in items] == [
        'first document here',
        'one two three four',
        'line one',
        'line two',
    ]
    assert set(items[0]) == {'inputs', 'data_samples', 'bad_rows', 'seen_rows'}
    assert set(items[0]['inputs']) == {'text'} and items[0]['inputs']['text'].num_words == 3
    assert [item['bad_rows'] for item in items] == [0, 3, 0, 0]
    zipped = DATASETS.build(
        dict(
            type='TextCorpus',
            files=str(tmp_path / '*.gz'),
            text_key='body',
            pipeline=text_pipeline(),
        )
    )
    assert [item['data_samples'].text for item in items_of(zipped)] == ['zipped text']


# -- mixing sources ----------------------------------------------------------------------------
def mixed_sources(tmp_path) -> dict:
    ann_file = write_annotation_fixture(tmp_path)
    corpus = tmp_path / 'corpus.txt'
    corpus.write_text(''.join(f'document {i}\n' for i in range(7)))
    return dict(
        pairs=dict(
            type='ImageTextAnnotations',
            ann_file=ann_file,
            data_root=str(tmp_path),
            pipeline=FILE_PIPELINE,
            min_rows=10**6,
        ),
        text=dict(type='TextCorpus', files=str(corpus), pipeline=text_pipeline()),
    )


def test_fixed_mixing_gives_fixed_counts_per_batch(tmp_path):
    counts = dict(pairs=3, text=2)
    dataset = DATASETS.build(
        dict(
            type='MultiSourceDataset', sources=mixed_sources(tmp_path), mode='fixed', counts=counts
        )
    )
    assert dataset.batch_size == 5
    loader = DataLoader(
        dataset, batch_size=5, num_workers=2, collate_fn=partial(mixed_collate, counts=counts)
    )
    batches = [batch for batch, _ in zip(loader, range(6))]
    for batch in batches:
        inputs = batch['inputs']
        assert inputs['images'].shape == (3, 3, SIZE, SIZE)
        assert inputs['caption'].num_texts == 3 and inputs['text'].num_texts == 2
        assert inputs['text'].owner.tolist() == [0, 1] and len(batch['data_samples']) == 5
        texts = [sample.text for sample in batch['data_samples'] if 'text' in sample]
        assert len(texts) == 2 and all(text.startswith('document') for text in texts)
        assert batch['seen_rows'] == 5 + batch['bad_rows']
    assert sum(batch['bad_rows'] for batch in batches) > 0  # the fixture's bad rows
    wrong = DataLoader(dataset, batch_size=4, collate_fn=partial(mixed_collate, counts=counts))
    with pytest.raises(ComponentArgumentError, match='batch_size to 5'):
        next(iter(wrong))


def test_sampled_mixing_and_batches_without_text(tmp_path):
    sources = mixed_sources(tmp_path)
    dataset = DATASETS.build(
        dict(
            type='MultiSourceDataset',
            sources=sources,
            mode='sample',
            probs=dict(pairs=0.5, text=0.5),
            seed=1,
        )
    )
    stream = iter(dataset)
    drawn = Counter(next(stream)['source'] for _ in range(200))
    assert 70 < drawn['pairs'] < 130 and drawn['pairs'] + drawn['text'] == 200
    first = [next(iter(dataset))['source'] for _ in range(2)]
    assert first[0] == first[1]  # the seed fixes the draws
    only_pairs = DATASETS.build(
        dict(
            type='MultiSourceDataset',
            sources=sources,
            mode='sample',
            probs=dict(pairs=1.0, text=0.0),
        )
    )
    batch = mixed_collate([item for item, _ in zip(only_pairs, range(4))])
    assert 'text' not in batch['inputs'] and batch['inputs']['images'].shape == (4, 3, SIZE, SIZE)
    only_text = mixed_collate([item for item, _ in zip(DATASETS.build(sources['text']), range(2))])
    assert set(only_text['inputs']) == {'text'}


def test_mixing_sources_can_nest(tmp_path):
    """Two pair sources sampled 1:1 inside the 'pairs' slot of a fixed mix."""
    sources = mixed_sources(tmp_path)
    paths, _ = write_shards(tmp_path / 'shards', [3, 3])
    shards = dict(type='WebDatasetShards', shards=paths, pipeline=BYTES_PIPELINE, infinite=True)
    pairs = dict(
        type='MultiSourceDataset',
        mode='sample',
        probs=dict(coco=1, cc=1),
        sources=dict(coco=sources['pairs'], cc=shards),
    )
    dataset = DATASETS.build(
        dict(
            type='MultiSourceDataset',
            mode='fixed',
            counts=dict(pairs=4, text=1),
            sources=dict(pairs=pairs, text=sources['text']),
        )
    )
    items = [item for item, _ in zip(dataset, range(50))]
    batch = mixed_collate(items[:5], counts=dict(pairs=4, text=1))
    assert batch['inputs']['images'].shape == (4, 3, SIZE, SIZE)
    assert batch['inputs']['text'].num_texts == 1
    from_shards = sum(  # of the 40 pairs
        'images' in item['inputs'] and 'key' in item['data_samples'] for item in items
    )
    assert 10 < from_shards < 30


# -- BadRowsHook --------------------------------------------------------------------------------
def fake_runner(max_iters: int = 100):
    return SimpleNamespace(
        iter=0, max_iters=max_iters, message_hub=MessageHub.get_instance('test_pretrain_data_hook')
    )


def test_bad_rows_hook_logs_totals_and_stops_past_the_threshold():
    hook = BadRowsHook(max_bad_fraction=0.1, min_rows=20, interval=2)
    runner = fake_runner()
    batches = [
        dict(bad_rows=torch.tensor([0, 1]), seen_rows=torch.tensor([1, 2])),
        dict(bad_rows=1, seen_rows=9),
        dict(caption=['no counts here']),
    ]
    for step, batch in enumerate(batches):
        runner.iter = step
        hook.after_train_iter(runner, step, batch)
    assert runner.message_hub.get_scalar('train/bad_rows').current() == 2
    assert runner.message_hub.get_scalar('train/seen_rows').current() == 12
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint['bad_rows'] == dict(bad=2, seen=12)
    runner.iter = 3
    with pytest.raises(BadDataError, match='3 of 22'):
        hook.after_train_iter(runner, 3, dict(bad_rows=torch.tensor([1]), seen_rows=10))
    resumed = BadRowsHook()
    resumed.after_load_checkpoint(runner, checkpoint)
    assert resumed.totals.tolist() == [2, 12]


def test_bad_rows_hook_sums_over_ranks(monkeypatch):
    """The all-reduce sums the ranks' counts (a second rank simulated inside all_reduce)."""
    other_rank = torch.tensor([5, 50])
    monkeypatch.setattr(bad_rows_hook, 'all_reduce', lambda tensor: tensor.add_(other_rank))
    hook = BadRowsHook(max_bad_fraction=0.5, interval=1)
    runner = fake_runner()
    hook.after_train_iter(runner, 0, dict(bad_rows=1, seen_rows=10))
    assert hook.totals.tolist() == [6, 60]
    assert runner.message_hub.get_scalar('train/bad_rows').current() == 6


def test_bad_rows_reach_the_training_log_of_a_runner(tmp_path):
    """A real Runner, 2 DataLoader workers: the log shows the bad rows of both workers."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    from davinci_zoo.registry import MODELS

    class Toy(BaseModel):
        def __init__(self):
            super().__init__(MODELS.build(dict(type='DaVinciDataPreprocessor')))
            self.weight = torch.nn.Parameter(torch.ones(1))

        def forward(self, inputs, data_samples=None, mode='loss'):
            return dict(loss=(self.weight * inputs['images'].float().mean()) ** 2)

    # 4 shards of 4 samples, one broken sample in each, never the last of a shard: worker 0
    # reads shards 0 and 2, worker 1 shards 1 and 3, 6 good samples each, so the first 6
    # batches of 2 are exactly one pass and carry all 4 bad rows.
    paths, good = write_shards(tmp_path / 'shards', [4, 4, 4, 4], {1, 4, 9, 13})
    runner = Runner(
        model=Toy(),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            dataset=dict(
                type='WebDatasetShards',
                shards=paths,
                pipeline=BYTES_PIPELINE,
                infinite=True,
                shuffle=False,
                min_rows=10**6,
            ),
            sampler=None,
            batch_size=2,
            num_workers=2,
            collate_fn=dict(type='davinci_zoo.mixed_collate'),
        ),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1), checkpoint=None),
        custom_hooks=[dict(type='BadRowsHook', interval=3, min_rows=10**6)],
        log_processor=dict(by_epoch=False),
        default_scope='davinci_zoo',
    )
    runner.train()
    assert runner.message_hub.get_scalar('train/bad_rows').current() == 4
    assert runner.message_hub.get_scalar('train/seen_rows').current() == 16
    log = next((tmp_path / 'work').rglob('*.log')).read_text()
    assert 'bad_rows: 4' in log and 'seen_rows: 16' in log


# -- converters ----------------------------------------------------------------------------------
def coco_fixture(tmp_path) -> str:
    (tmp_path / 'coco' / 'train2017').mkdir(parents=True)
    for i in (1, 2):
        (tmp_path / 'coco' / 'train2017' / f'{i:012d}.jpg').write_bytes(image_bytes(i, 'JPEG'))
    captions = tmp_path / 'coco' / 'captions_train2017.json'
    captions.write_text(json.dumps({
        'images': [{'id': 1, 'file_name': '000000000001.jpg'},
                   {'id': 2, 'file_name': '000000000002.jpg'}],
        'annotations': [{'image_id': 1, 'caption': 'A cat.'}, {'image_id': 1, 'caption': 'Cat!'},
                        {'image_id': 2, 'caption': 'A dog'}, {'image_id': 9, 'caption': 'lost'},
                        {'image_id': 2, 'caption': ' '}],
    }))  # fmt: skip
    return str(captions)


def test_coco_converter_output_reads_back(tmp_path, capsys):
    captions, out = coco_fixture(tmp_path), str(tmp_path / 'coco' / 'captions.jsonl')
    tool = load_tool('coco_captions')
    tool.main([captions, out, '--image-dir', 'train2017'])
    assert 'wrote 3 rows' in capsys.readouterr().out
    dataset = DATASETS.build(
        dict(
            type='ImageTextAnnotations',
            ann_file=out,
            data_root=str(tmp_path / 'coco'),
            pipeline=FILE_PIPELINE,
        )
    )
    assert [caption_of(dataset[i]) for i in range(3)] == ['a cat', 'cat', 'a dog']
    assert sum(dataset[i]['bad_rows'] for i in range(3)) == 0
    tool.main([captions, out, '--image-dir', 'train2017', '--group-by-image'])
    rows = [json.loads(line) for line in Path(out).read_text().splitlines()]
    assert rows[0]['caption'] == ['A cat.', 'Cat!'] and len(rows) == 2
    (tmp_path / 'not_coco.json').write_text('[1, 2]')
    with pytest.raises(SystemExit) as stop:
        tool.run_tool(tool.main, [str(tmp_path / 'not_coco.json'), out])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith('error: ') and 'not a COCO captions file' in error


def test_visual_genome_converter_output_reads_back(tmp_path):
    (tmp_path / 'VG_100K').mkdir()
    (tmp_path / 'VG_100K' / '1.jpg').write_bytes(image_bytes(1, 'JPEG'))
    (tmp_path / 'regions.json').write_text(json.dumps([
        {'id': 1, 'regions': [{'phrase': 'A tree', 'x': 0, 'y': 0, 'width': 5, 'height': 5},
                              {'phrase': 'blue sky ', 'x': 1, 'y': 1, 'width': 2, 'height': 2}]},
        {'id': 2, 'regions': []},
        {'id': 3, 'regions': [{'phrase': 'no url'}]},
    ]))  # fmt: skip
    (tmp_path / 'image_data.json').write_text(json.dumps([
        {'image_id': 1, 'url': 'https://cs.stanford.edu/people/rak248/VG_100K/1.jpg'},
        {'image_id': 2, 'url': 'https://cs.stanford.edu/people/rak248/VG_100K_2/2.jpg'},
    ]))  # fmt: skip
    tool, out = load_tool('visual_genome'), str(tmp_path / 'vg.jsonl')
    argv = [str(tmp_path / 'regions.json'), str(tmp_path / 'image_data.json'), out]
    tool.main(argv)
    dataset = DATASETS.build(
        dict(
            type='ImageTextAnnotations',
            ann_file=out,
            data_root=str(tmp_path),
            pipeline=FILE_PIPELINE,
        )
    )
    assert len(dataset) == 1 and caption_of(dataset[0]) in {'a tree', 'blue sky'}
    tool.main([*argv, '--per-region'])
    rows = [json.loads(line) for line in Path(out).read_text().splitlines()]
    assert [row['caption'] for row in rows] == ['A tree', 'blue sky']
    assert rows[1]['box'] == [1, 1, 2, 2] and rows[1]['image'] == 'VG_100K/1.jpg'


def test_cc3m_converter_keeps_rows_with_local_images(tmp_path, capsys):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / '0.jpg').write_bytes(image_bytes(0, 'JPEG'))
    (tmp_path / 'train.tsv').write_text(
        'caption\turl\n'
        'a photo of a cat\timages/0.jpg\n'
        'not downloaded\thttps://example.com/1.jpg\n'
        'file is gone\timages/2.jpg\n'
        'no tab here\n'
    )
    out = str(tmp_path / 'cc3m.jsonl')
    load_tool('cc3m_tsv').main(
        [str(tmp_path / 'train.tsv'), out, '--image-root', str(tmp_path), '--has-header']
    )
    report = capsys.readouterr().out
    assert 'wrote 1 rows' in report and '1 missing images' in report
    assert '1 malformed rows' in report and '1 urls (not downloaded)' in report
    dataset = DATASETS.build(
        dict(
            type='ImageTextAnnotations',
            ann_file=out,
            data_root=str(tmp_path),
            pipeline=FILE_PIPELINE,
        )
    )
    assert len(dataset) == 1 and caption_of(dataset[0]) == 'a photo of a cat'


def test_shard_writer_output_reads_back(tmp_path, capsys):
    captions, jsonl = coco_fixture(tmp_path), str(tmp_path / 'coco' / 'grouped.jsonl')
    load_tool('coco_captions').main(
        [captions, jsonl, '--image-dir', 'train2017', '--group-by-image']
    )
    with open(jsonl, 'a') as stream:
        stream.write(json.dumps({'image': 'train2017/missing.jpg', 'caption': 'gone'}) + '\n')
        stream.write(json.dumps({'image': 'train2017/000000000001.jpg', 'caption': 'One.'}) + '\n')
    load_tool('write_shards').main(
        [
            jsonl,
            str(tmp_path / 'shards'),
            '--data-root',
            str(tmp_path / 'coco'),
            '--samples-per-shard',
            '2',
        ]
    )
    assert 'wrote 3 samples in 2 shards' in capsys.readouterr().out
    dataset = DATASETS.build(
        dict(
            type='WebDatasetShards',
            shards=str(tmp_path / 'shards'),
            pipeline=BYTES_PIPELINE,
            shuffle=False,
        )
    )
    items = items_of(dataset)
    assert [caption_of(item) for item in items][1:] == ['a dog', 'one']
    assert caption_of(items[0]) in {'a cat', 'cat'}
    assert sum(item['bad_rows'] for item in items) == 0
