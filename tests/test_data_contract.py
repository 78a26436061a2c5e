"""One data contract: transforms -> PackDaVinciInputs -> mixed_collate ->
DaVinciDataPreprocessor, for captions, documents, image pairs, ragged answer lists and
batch augments; mistakes end with a clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

import davinci_zoo.components  # noqa: F401  (registers the transforms)
from davinci_zoo.datasets.bad_rows import BadRow, DataFileError
from davinci_zoo.datasets.captions import pre_caption
from davinci_zoo.datasets.mixing import mixed_collate
from davinci_zoo.datasets.transforms import build_pipeline
from davinci_zoo.models.data_preprocessor import CLIP_MEAN, CLIP_STD, DaVinciDataPreprocessor
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import DATASETS
from davinci_zoo.text import TextBatch, WordPieceTokenizer


def bgr_image(seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def pack(pipeline, **fields) -> dict:
    return build_pipeline(pipeline)(dict(fields))


CAPTION_STEPS = [
    dict(type='PreCaption', max_words=5),
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs'),
]


def test_pre_caption_transform_cleans_like_the_original_and_rejects_empty_captions():
    out = pack([dict(type='PreCaption', max_words=3)], caption='A Man-eating Shark!!')
    assert out['caption'] == pre_caption('A Man-eating Shark!!', 3) == 'a man eating'
    np.random.seed(0)
    drawn = {
        pack([dict(type='PreCaption')], caption=['One.', 'Two!'])['caption'] for _ in range(20)
    }
    assert drawn == {'one', 'two'}
    with pytest.raises(BadRow, match='empty caption'):
        pack([dict(type='PreCaption')], caption='?!')
    with pytest.raises(BadRow, match='caption'):
        pack([dict(type='PreCaption')], caption=7)
    cleaned = pack([dict(type='PreCaption', keys=['text'], max_words=None)], text='a b! c')
    assert cleaned['text'] == 'a b c'


def test_a_packed_pair_holds_uint8_pixels_tokens_and_a_data_sample():
    image = bgr_image(0)
    item = pack(CAPTION_STEPS, img=image, caption='A Red Ball, here and there.', sample_idx=7)
    assert set(item) == {'inputs', 'data_samples'}
    images = item['inputs']['images']
    assert images.dtype == torch.uint8 and torch.equal(
        images, torch.from_numpy(image).permute(2, 0, 1)
    )
    tokens = item['inputs']['caption']
    assert tokens.ids.tolist() == WordPieceTokenizer().encode('a red ball here and', False)
    assert tokens.words.tolist() == [0, 1, 2, 3, 4] and tokens.num_words == 5
    sample = item['data_samples']
    assert sample.caption == 'a red ball here and' and sample.sample_idx == 7
    with pytest.raises(KeyError, match="TokenizeText', keys=\\['caption'\\]"):
        pack([dict(type='PackDaVinciInputs')], img=image, caption='untokenised')
    packed = pack([dict(type='PackDaVinciInputs', text_keys=[], algorithm_keys=['caption'])],
                  img=image, caption='for the metric only', gt_label=3)  # fmt: skip
    assert set(packed['inputs']) == {'images'} and packed['data_samples'].caption
    assert packed['data_samples'].gt_label.tolist() == [3]


def test_image_bytes_decode_like_files_and_broken_bytes_are_bad_rows():
    buffer = io.BytesIO()
    Image.fromarray(bgr_image(1)[..., ::-1]).save(buffer, format='PNG')  # an RGB file
    decoded = pack([dict(type='LoadImageFromBytes')], img_bytes=buffer.getvalue())
    assert np.array_equal(decoded['img'], bgr_image(1)) and 'img_bytes' not in decoded
    assert decoded['img_shape'] == (8, 8)
    with pytest.raises(BadRow, match='does not decode'):
        pack([dict(type='LoadImageFromBytes')], img_bytes=b'\x89PNG not really')


def test_pairs_answers_and_codes_collate_into_one_batch_and_reach_the_device_normalised():
    steps = [
        dict(type='TokenizeText', keys=['text', 'answers']),
        dict(type='PackDaVinciInputs', text_keys=['text', 'answers']),
    ]
    items = [
        pack(
            steps,
            img=[bgr_image(2 * i), bgr_image(2 * i + 1)],
            text=f'statement {i}',
            answers=['yes', 'no', 'maybe'][: i + 1],
            codes=np.full((2, 2), i),
        )
        for i in range(3)
    ]
    batch = mixed_collate(items)
    inputs = batch['inputs']
    assert inputs['images'].shape == (3, 2, 3, 8, 8) and inputs['images'].dtype == torch.uint8
    assert inputs['codes'].shape == (3, 2, 2) and inputs['codes'][2].eq(2).all()
    assert isinstance(inputs['text'], TextBatch) and inputs['text'].owner.tolist() == [0, 1, 2]
    answers = inputs['answers']
    assert answers.owner.tolist() == [0, 1, 1, 2, 2, 2] and answers.num_texts == 6
    assert [sample.answers for sample in batch['data_samples']][2] == ['yes', 'no', 'maybe']

    data = DaVinciDataPreprocessor()(batch)
    images = data['inputs']['images']
    assert images.dtype == torch.float32 and images.shape == (3, 2, 3, 8, 8)
    rgb = torch.from_numpy(bgr_image(3)[..., ::-1].copy()).permute(2, 0, 1).float() / 255
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1) / 255
    std = torch.tensor(CLIP_STD).view(3, 1, 1) / 255
    torch.testing.assert_close(images[1, 1], (rgb - mean) / std)  # pair 1, second image
    torch.testing.assert_close(DaVinciDataPreprocessor().pixels(images[1, 1]), rgb)
    assert isinstance(data['inputs']['answers'], TextBatch)
    assert torch.equal(data['inputs']['codes'], inputs['codes'])


def test_the_preprocessor_normalises_like_the_config_says():
    item = pack(CAPTION_STEPS, img=bgr_image(4), caption='a b')
    batch = mixed_collate([item])
    plain = DaVinciDataPreprocessor(mean=(0, 0, 0), std=(255, 255, 255))(batch)['inputs']
    rgb = torch.from_numpy(bgr_image(4)[..., ::-1].copy()).permute(2, 0, 1).float() / 255
    assert torch.equal(plain['images'][0], rgb)  # the tokenizers' view: RGB in [0, 1]
    bgr = DaVinciDataPreprocessor(mean=(0, 0, 0), std=(255, 255, 255), to_rgb=False)(batch)
    assert torch.equal(bgr['inputs']['images'][0], rgb.flip(0))


def test_mixing_keeps_every_key_and_refuses_what_cannot_line_up():
    pair = pack(CAPTION_STEPS, img=bgr_image(5), caption='a pair')
    document = pack(
        [dict(type='TokenizeText', keys=['text']), dict(type='PackDaVinciInputs')],
        text='just a document',
    )
    batch = mixed_collate([pair, document, pair])
    assert batch['inputs']['images'].shape[0] == 2 and batch['inputs']['caption'].num_texts == 2
    assert batch['inputs']['text'].num_texts == 1 and len(batch['data_samples']) == 3
    uncaptioned = pack([dict(type='PackDaVinciInputs')], img=bgr_image(6))
    with pytest.raises(ComponentArgumentError, match="'images' and 'caption'"):
        mixed_collate([pair, uncaptioned])
    larger = pack(CAPTION_STEPS, img=bgr_image(7, size=16), caption='a large one')
    with pytest.raises(ComponentArgumentError, match='several shapes'):
        mixed_collate([pair, larger])
    with pytest.raises(ComponentArgumentError, match='PackDaVinciInputs'):
        mixed_collate([dict(img=bgr_image(5), caption='not packed')])
    with pytest.raises(ValueError, match='mixed_collate'):  # mmengine's default collate
        DaVinciDataPreprocessor()(pseudo_collate([pair, pair]))


def test_batch_augments_mix_images_and_labels():
    torch.manual_seed(0)
    items = [
        pack([dict(type='PackDaVinciInputs')], img=bgr_image(i), gt_label=i % 2) for i in range(4)
    ]
    batch = mixed_collate(items)
    mixup = DaVinciDataPreprocessor(
        batch_augments=dict(augments=[dict(type='Mixup', alpha=1.0)]), num_classes=2
    )
    plain = DaVinciDataPreprocessor()(batch)['inputs']['images']
    mixed = mixup(batch, training=True)
    scores = torch.stack([sample.gt_score for sample in mixed['data_samples']])
    assert scores.shape == (4, 2) and torch.allclose(scores.sum(1), torch.ones(4))
    assert ((scores > 0) & (scores < 1)).any()  # soft labels
    assert not torch.allclose(mixed['inputs']['images'], plain)
    evaluated = mixup(batch, training=False)  # no augments outside training
    assert torch.equal(evaluated['inputs']['images'], plain)
    with pytest.raises(ValueError, match='num_classes'):
        DaVinciDataPreprocessor(batch_augments=dict(augments=[dict(type='Mixup', alpha=1.0)]))


def test_blank_image_keeps_shapes_and_drops_the_content():
    """The text-only baseline's transform: single images and pairs become zeros."""
    from davinci_zoo.datasets.transforms import BlankImage

    image = np.full((8, 6, 3), 200, np.uint8)
    single = BlankImage()(dict(img=image.copy()))['img']
    assert single.shape == image.shape and single.dtype == np.uint8 and not single.any()
    pair = BlankImage()(dict(img=[image.copy(), image[:4].copy()]))['img']
    assert [p.shape for p in pair] == [(8, 6, 3), (4, 6, 3)] and not any(p.any() for p in pair)


@pytest.mark.parametrize(
    ('dataset', 'name', 'content', 'message'),
    [
        ('ImageTextAnnotations', 'a.json', '{"image": "x.png"}', 'must hold a JSON list'),
        ('ImageTextAnnotations', 'a.txt', '[]', r'annotation files must end in \.json'),
        ('ImageTextAnnotations', 'a.json', '[]', 'has no annotation rows'),
        ('ImageTextAnnotations', 'a.json', '[{"image": ', 'is not valid JSON'),
        ('NLVR2', 'dev.json', '\n', 'has no annotation rows'),
        ('SNLIVE', 'snli_ve_dev.jsonl', '', 'has no annotation rows'),
        ('CocoKarpathyCaptions', 'dataset_coco.json', '[]', r'must hold \{"images": \[...\]\}'),
        ('CocoKarpathyCaptions', 'dataset_coco.json', '{"images": []}', 'has no image in the'),
    ],
)
def test_a_file_in_another_layout_is_a_data_file_error(tmp_path, dataset, name, content, message):
    """A whole file that cannot be read as the published layout is a DataFileError naming it
    (the tools print it as one line), not a counted bad row."""
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFileError, match=message) as error:
        DATASETS.build(dict(type=dataset, ann_file=str(path), data_root=str(tmp_path)))
    assert str(path) in str(error.value) and '\n' not in str(error.value)
