"""The linear-probe datasets: each probe file reads a fixture in its dataset's published layout.

Fixtures come from tests/fixtures/probe_datasets.py; their images carry a pattern that shows a
transposed image or swapped channels, so the checks cover orientation and BGR order too.
"""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from probe_datasets import (
    COUNTRY211_CODES,
    IN_MEMORY,
    PROBES,
    WRITERS,
    fixture_probe_data,
    gray_pattern,
    pattern,
    probe_data,
    write_cifar10,
    write_cifar100,
    write_country211,
    write_fixture,
    write_stanford_cars,
    write_stl10,
)

from davinci_zoo.datasets.bad_rows import BadDataError, DataFileError
from davinci_zoo.datasets.transforms import build_pipeline
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import DATASETS

NAMES = tuple(WRITERS)
SIDE = 16  # the probe's Resize target in these tests
SPLIT_KEYS = ('train', 'val', 'test')


def build(split_cfg: dict, pipeline=(), **extra):
    """A dataset from a probe split dict (no gc-heavy serialisation: tiny lists)."""
    return DATASETS.build(dict(split_cfg, pipeline=list(pipeline), serialize_data=False, **extra))


def probe_pipeline(load: list) -> list:
    """What the probe code appends to ``load`` (interface 1): Resize both sides, then pack."""
    steps = [
        *load,
        dict(type='Resize', scale=(SIDE, SIDE), interpolation='bicubic', keep_ratio=False),
        dict(type='PackDaVinciInputs'),
    ]
    return list(build_pipeline(steps).transforms)


def expected_bgr(name: str, label: int, shape: tuple) -> np.ndarray:
    """The BGR image a fixture item of ``label`` must load as."""
    if name == 'mnist':
        return np.repeat(gray_pattern(label)[..., None], 3, axis=2)
    return pattern(label, shape[0], shape[1])[..., ::-1]


def test_there_is_one_probe_file_per_dataset_defining_only_probe_data():
    assert sorted(p.stem for p in PROBES.glob('*.py')) == sorted(NAMES)
    for name in NAMES:
        cfg = Config.fromfile(str(PROBES / f'{name}.py')).to_dict()
        assert list(cfg) == ['probe_data'], name
        data = cfg['probe_data']
        assert set(data) == {'name', 'num_classes', 'load', 'train', 'val', 'test'}
        assert data['name'] == name and data['num_classes'] >= 10
        for split in SPLIT_KEYS:
            if data[split] is None:
                assert split == 'val', f'{name} has no {split} split'
                continue
            assert 'pipeline' not in data[split]
            assert data[split]['data_root'].startswith(f'data/{name}') or name == 'scenes_shapes'
            assert data[split].get('download', False) is False, f'{name} would download'
            assert DATASETS.find(data[split]['type']) is not None


@pytest.mark.parametrize('name', NAMES)
def test_probe_file_reads_its_fixture(name, tmp_path):
    """Every split of the probe file: its size, labels in order, pixels, and a packed item."""
    expected = write_fixture(name, tmp_path)
    data = fixture_probe_data(name, tmp_path)
    load = build_pipeline(data['load'])
    for split in SPLIT_KEYS:
        if data[split] is None:
            continue
        dataset = build(data[split], probe_pipeline(data['load']))
        labels = [int(dataset.get_data_info(i)['gt_label']) for i in range(len(dataset))]
        assert labels == expected[data[split]['split']], (name, split)
        assert max(labels) < data['num_classes']
        picks = range(len(dataset)) if len(dataset) < 50 else (0, 1, 500, len(dataset) - 1)
        for index in picks:
            image = load(dataset.get_data_info(index))['img']
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            target = expected_bgr(name, labels[index], image.shape)
            if name in IN_MEMORY:
                np.testing.assert_array_equal(image, target)
            else:  # JPEG files: close, not equal
                assert np.abs(image.astype(int) - target).mean() < 4, (name, split, index)
        item = dataset[0]
        assert item['inputs']['images'].shape == (3, SIDE, SIDE)
        assert item['inputs']['images'].dtype == torch.uint8
        assert int(item['data_samples'].gt_label) == labels[0]


def test_official_cifar_reader_checks_md5_sums_and_never_downloads(tmp_path):
    write_fixture('cifar10', tmp_path)
    data = probe_data('cifar10')
    data['train']['data_root'] = str(tmp_path / data['train']['data_root'])
    with pytest.raises(RuntimeError, match='Cannot find CIFAR10'):
        build(data['train'])


def test_stanford_cars_other_layout(tmp_path):
    """cars_annos.mat + car_ims/ (the all-in-one layout) gives the same splits."""
    data = fixture_probe_data('stanford_cars', tmp_path)
    expected = write_stanford_cars(tmp_path / 'data' / 'stanford_cars', layout='annos')
    for split in ('train', 'test'):
        dataset = build(data[split])
        assert [dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))] == expected[
            split
        ]


# -- CIFARLayout -----------------------------------------------------------------------------
def test_cifar_layout_reads_cifar100_style_with_coarse_labels(tmp_path):
    expected = write_cifar100(tmp_path)
    dataset = build(
        dict(type='CIFARLayout', data_root=str(tmp_path / 'cifar-100-python'), split='test'),
        label_key='coarse_labels',
    )
    assert [dataset.get_data_info(i)['gt_label'] for i in range(3)] == [
        label // 5 for label in expected['test']
    ]
    assert len(dataset.metainfo['classes']) == 20


def test_cifar_layout_reads_the_scene_generator_output(tmp_path):
    """The scenes plugin's classification set (Python 2 style pickles) through its probe file;
    the CIFAR copy holds the same images as the PNG copy."""
    tasks = pytest.importorskip('davinci_zoo_scenes.tasks')
    meta = tasks.generate_task('classification', tmp_path / 'data' / 'scenes_tasks', scale=0.02)
    data = fixture_probe_data('scenes_shapes', tmp_path)
    dataset = build(data['train'])
    assert list(dataset.metainfo['classes']) == meta['classes']
    assert len(meta['classes']) == data['num_classes']
    labels = [dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))]
    assert np.bincount(labels).tolist() == [meta['per_class']['train']] * data['num_classes']

    def digest(image):
        return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()

    png_root = tmp_path / 'data' / 'scenes_tasks' / 'classification' / 'train'
    load = build_pipeline([dict(type='LoadImageFromFile', imdecode_backend='pillow')])
    from_png = sorted(
        (digest(load(dict(img_path=str(path)))['img']), meta['classes'].index(path.parent.name))
        for path in png_root.glob('*/*.png')
    )
    from_cifar = sorted(
        (digest(dataset.get_data_info(i)['img']), labels[i]) for i in range(len(dataset))
    )
    assert from_cifar == from_png


def _rewrite(path, **changes):
    with open(path, 'rb') as stream:
        batch = pickle.load(stream, encoding='latin1')
    batch.update(changes)
    with open(path, 'wb') as stream:
        pickle.dump(batch, stream)


@pytest.mark.parametrize(
    ('damage', 'message'),
    [
        ('missing', 'does not exist'),
        ('truncated', 'is not a pickled CIFAR batch'),
        ('label', 'row 1 has label 10, outside the 10 classes'),
        ('count', 'has 2 images but 3 labels'),
    ],
)
def test_cifar_layout_bad_files_give_one_line_errors(tmp_path, damage, message):
    write_cifar10(tmp_path)
    root = tmp_path / 'cifar-10-batches-py'
    batch = root / 'data_batch_2'
    if damage == 'missing':
        root = tmp_path / 'nowhere'
    elif damage == 'truncated':
        batch.write_bytes(batch.read_bytes()[:100])
    elif damage == 'label':
        _rewrite(batch, labels=[0, 10])
    else:
        _rewrite(batch, labels=[0, 1, 2])
    with pytest.raises((FileNotFoundError, DataFileError), match=message) as error:
        build(dict(type='CIFARLayout', data_root=str(root), split='train'))
    assert '\n' not in str(error.value)


# -- STL10 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ('damage', 'message'),
    [
        ('truncated', 'not a whole number of 27648-byte'),
        ('labels', 'has 2 labels for the 3 images'),
        ('range', 'label 11 of image 1 is outside 1..10'),
    ],
)
def test_stl10_bad_files_give_one_line_errors(tmp_path, damage, message):
    write_stl10(tmp_path)
    folder = tmp_path / 'stl10_binary'
    if damage == 'truncated':
        images = folder / 'train_X.bin'
        images.write_bytes(images.read_bytes()[:-100])
    elif damage == 'labels':
        (folder / 'train_y.bin').write_bytes(bytes([1, 2]))
    else:
        (folder / 'train_y.bin').write_bytes(bytes([1, 11, 3]))
    with pytest.raises(DataFileError, match=message) as error:
        build(dict(type='STL10', data_root=str(tmp_path), split='train'))
    assert '\n' not in str(error.value)


def test_stl10_survives_pickling_for_data_workers(tmp_path):
    write_stl10(tmp_path)
    dataset = build(dict(type='STL10', data_root=str(tmp_path), split='test'))
    first = dataset[2]['img']
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._images is None
    np.testing.assert_array_equal(copy[2]['img'], first)
    assert dataset.metainfo['classes'][9] == 'truck'


# -- Country211 ------------------------------------------------------------------------------
def test_country211_splits_must_share_their_class_folders(tmp_path):
    write_country211(tmp_path)
    (tmp_path / 'country211' / 'test' / 'FR').mkdir()
    with pytest.raises(DataFileError, match='train and test hold different class folders .FR.'):
        build(dict(type='Country211', data_root=str(tmp_path), split='train'))


def test_country211_unreadable_image_is_skipped_or_named(tmp_path):
    expected = write_country211(tmp_path)
    broken = sorted((tmp_path / 'country211' / 'train' / COUNTRY211_CODES[2]).glob('*.jpg'))[0]
    broken.write_bytes(b'not a jpeg')
    cfg = dict(type='Country211', data_root=str(tmp_path), split='train')
    load = [dict(type='LoadImageFromFile', imdecode_backend='pillow')]
    checked = build(cfg, build_pipeline(load).transforms, check_images=True, max_bad_fraction=0.5)
    assert checked.num_skipped == 1 and len(checked) == len(expected['train']) - 1
    unchecked = build(cfg, build_pipeline(load).transforms)
    with pytest.raises(BadDataError, match=f'{broken}.*does not load') as error:
        unchecked[len(unchecked) - 2]
    assert '\n' not in str(error.value)


# -- ToBGR -----------------------------------------------------------------------------------
def test_to_bgr_checks_shapes():
    to_bgr = build_pipeline([dict(type='ToBGR', source='gray')])
    out = to_bgr(dict(img=np.arange(6, dtype=np.uint8).reshape(2, 3, 1)))['img']
    assert out.shape == (2, 3, 3) and (out[..., 0] == out[..., 2]).all()
    with pytest.raises(ValueError, match=r'not \(H, W, 3\)'):
        build_pipeline([dict(type='ToBGR')])(dict(img=np.zeros((2, 3), np.uint8)))
    with pytest.raises(ComponentArgumentError, match='source must be one of'):
        build_pipeline([dict(type='ToBGR', source='bgr')])
