"""COCO captioning and text-to-image: the Karpathy-format loader on a fixture in the published
layout, the caption head's loss and decoding against hand-computed values, the painting head's
re-ranking, FID / IS arithmetic on a tiny feature module, the Inception loading path, and a
2-step fine-tune + test of the captioning scene config through the tools."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import REPO, run_tool
from davinci_zoo_scenes import generate_scenes, render
from PIL import Image
from test_davinci_model import build_model, texts

from davinci_zoo.checkpoint import CheckpointMismatchError
from davinci_zoo.cli import run_tool as run_cli
from davinci_zoo.datasets.bad_rows import BAD_ROWS, DataFileError
from davinci_zoo.datasets.coco_karpathy import CocoKarpathyCaptions
from davinci_zoo.evaluation.image_generation import (
    INCEPTION_WEIGHTS_URL,
    ImageGenerationMetric,
    load_inception,
)
from davinci_zoo.models.davinci import inference
from davinci_zoo.models.davinci.generation import GenerationConfig
from davinci_zoo.models.davinci.reranking import paint_scored
from davinci_zoo.models.davinci.vocabulary import TEXT
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import METRICS

SCENE_CONFIG = REPO / 'configs' / 'downstream' / 'caption_coco' / 'caption_coco_scenes32.py'
# (split, images, COCO folder) of the fixture, as Karpathy's file spreads them
FIXTURE_SPLITS = (('train', 6, 'train2014'), ('restval', 2, 'val2014'), ('test', 3, 'val2014'))
PARAPHRASES = ('{}', 'there is {}', 'a picture showing {}')


def write_karpathy_fixture(root, image_size: int = 32) -> dict:
    """``dataset_coco.json`` and JPEG scenes in the published layout; the second train row is
    malformed (a sentence without ``raw``). Returns the rows by split."""
    scenes = generate_scenes(sum(count for _, count, _ in FIXTURE_SPLITS), 3)
    images, by_split, sentid = [], {}, 0
    for split, count, folder in FIXTURE_SPLITS:
        for _ in range(count):
            scene, imgid = scenes[len(images)], len(images)
            cocoid = 1000 + imgid
            filename = f'COCO_{folder}_{cocoid:012d}.jpg'
            (root / folder).mkdir(exist_ok=True)
            Image.fromarray(render(scene, image_size)).save(root / folder / filename, quality=95)
            sentences = [
                dict(raw=form.format(scene.caption), tokens=[], imgid=imgid, sentid=sentid + k)
                for k, form in enumerate(PARAPHRASES)
            ]
            for sentence in sentences:
                sentence['tokens'] = sentence['raw'].split()
            sentid += len(sentences)
            row = dict(
                filepath=folder,
                sentids=[s['sentid'] for s in sentences],
                filename=filename,
                imgid=imgid,
                split=split,
                sentences=sentences,
                cocoid=cocoid,
            )
            images.append(row)
            by_split.setdefault(split, []).append(row)
    del by_split['train'][1]['sentences'][0]['raw']  # the malformed row
    (root / 'dataset_coco.json').write_text(json.dumps(dict(images=images, dataset='coco')))
    return by_split


PIPELINE = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='KeepCaptionReferences'),
    dict(type='PreCaption', max_words=30),
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs', algorithm_keys=['references']),
]


def karpathy(root, **options) -> CocoKarpathyCaptions:
    return CocoKarpathyCaptions(
        str(root / 'dataset_coco.json'), str(root), pipeline=PIPELINE, **options
    )


def test_the_karpathy_loader_reads_the_published_layout_and_counts_a_malformed_row(tmp_path):
    rows = write_karpathy_fixture(tmp_path)
    train = karpathy(tmp_path, split=['train', 'restval'], items='captions')
    # one item per sentence; the malformed sentence's item is skipped and counted
    assert len(train) == (6 + 2) * len(PARAPHRASES)
    items = [train[index] for index in range(len(train))]
    assert sum(item[BAD_ROWS] for item in items) == 1
    written = {item['data_samples'].caption for item in items}
    rows_read = rows['train'] + rows['restval']
    expected = {s['raw'].lower() for row in rows_read for s in row['sentences'] if 'raw' in s}
    assert written == expected  # cleaned by PreCaption: lower-case, no punctuation here
    assert items[0]['inputs']['images'].shape == (3, 32, 32)
    assert items[0]['data_samples'].img_path.endswith('train2014/COCO_train2014_000000001000.jpg')

    test = karpathy(tmp_path, split='test', items='images')
    assert len(test) == 3
    first = test[0]['data_samples']
    assert first.references == [s['raw'] for s in rows['test'][0]['sentences']]  # all, raw


def test_a_seeded_caption_per_image_and_a_seeded_subset_repeat(tmp_path):
    rows = write_karpathy_fixture(tmp_path)
    options = dict(split=['test', 'restval'], items='images', caption_seed=0, max_images=3)
    one, two = karpathy(tmp_path, **options), karpathy(tmp_path, **options)
    assert len(one) == 3
    captions = [one[i]['data_samples'].references for i in range(3)]
    assert captions == [two[i]['data_samples'].references for i in range(3)]
    assert all(len(caption) == 1 for caption in captions)  # one caption each
    allowed = {s['raw'] for row in rows['test'] + rows['restval'] for s in row['sentences']}
    assert all(caption[0] in allowed for caption in captions)


def test_a_row_without_a_split_is_a_one_line_error_naming_file_and_row(tmp_path):
    write_karpathy_fixture(tmp_path)
    path = tmp_path / 'dataset_coco.json'
    content = json.loads(path.read_text())
    del content['images'][4]['split']
    path.write_text(json.dumps(content))
    with pytest.raises(DataFileError, match=r'dataset_coco.json images\[4\]: not an object'):
        karpathy(tmp_path)
    with pytest.raises(ComponentArgumentError, match='split must be among'):
        karpathy(tmp_path, split='validation')


# -- the caption head --------------------------------------------------------------------------
CAPTIONS = ['a small red circle', 'two blue squares in the top left corner']


def caption_model(**head):
    torch.manual_seed(0)
    return build_model(objectives=[], head=dict(type='CaptionHead', **head)).eval()


def hand_sequences(model, prompt: str, captions: list[str]):
    """``[CLS] prompt caption [SEP]`` ids [B, L] and mask, written out by hand."""
    tokenizer = model.text_tokenizer
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    rows = [
        [101, *prompt_ids, *tokenizer.encode(c, add_special_tokens=False), 102] for c in captions
    ]
    width = max(map(len, rows))
    ids = torch.tensor([row + [0] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    return ids, mask, 1 + len(prompt_ids)


def smoothed_loss(logits, ids, mask, prompt_length, smoothing, start):
    """Mean over the caption tokens and [SEP] of (1 - e) NLL + e mean_v(-log p_v)."""
    log_p = logits.log_softmax(-1)
    terms = []
    for row in range(len(ids)):
        for position in range(prompt_length - 1, int(mask[row].sum()) - 1):
            target = int(ids[row, position + 1]) - start
            nll = -log_p[row, position, target]
            uniform = -log_p[row, position].mean()
            terms.append((1 - smoothing) * nll + smoothing * uniform)
    return torch.stack(terms).mean()


def test_the_caption_loss_scores_the_caption_and_not_the_prompt():
    model = caption_model(label_smoothing=0.1)
    images = torch.randn(2, 3, 32, 32)
    batch = dict(images=images, caption=texts(model, CAPTIONS))
    with torch.no_grad():
        loss = model.head.loss(model, batch, None)['loss_caption']
        ids, mask, prompt_length = hand_sequences(model, 'a picture of ', CAPTIONS)
        assert prompt_length == 4  # [CLS] a picture of, as the original's prompt_length
        empty_ids, empty_mask = model.tokenize(['', ''])
        memory, memory_mask = model.encode(images, empty_ids, empty_mask)
        positions = torch.arange(ids.shape[1] - 1)
        logits = model.decoder_logits(
            ids[:, :-1], positions, memory, memory_mask, TEXT, padding_mask=mask[:, :-1]
        )
    start = model.vocab.id_range(TEXT)[0]
    expected = smoothed_loss(logits, ids, mask, prompt_length, 0.1, start)
    assert torch.allclose(loss, expected, atol=1e-5), (float(loss), float(expected))


def test_the_prompt_positions_do_not_reach_the_caption_loss(monkeypatch):
    model = caption_model()
    batch = dict(images=torch.randn(2, 3, 32, 32), caption=texts(model, CAPTIONS))
    with torch.no_grad():
        plain = model.head.loss(model, batch, None)['loss_caption']
    original = model.decoder_logits

    def noisy(position_slice):
        def logits(*args, **kwargs):
            out = original(*args, **kwargs).clone()
            out[:, position_slice] += 50 * torch.randn_like(out[:, position_slice])
            return out

        return logits

    with torch.no_grad():
        monkeypatch.setattr(model, 'decoder_logits', noisy(slice(0, 3)))  # predict a/picture/of
        prompt_noise = model.head.loss(model, batch, None)['loss_caption']
        monkeypatch.setattr(model, 'decoder_logits', noisy(slice(3, 4)))  # the first caption word
        caption_noise = model.head.loss(model, batch, None)['loss_caption']
    assert torch.equal(plain, prompt_noise)
    assert abs(float(caption_noise) - float(plain)) > 1.0


def test_predict_writes_after_the_prompt_with_the_original_lengths(monkeypatch):
    model = caption_model()
    seen = {}
    decode = inference.decode

    def spy(model_, memory, memory_mask, prompt, modality, config, longest, shortest, **kw):
        out = decode(model_, memory, memory_mask, prompt, modality, config, longest, shortest, **kw)
        seen.update(prompt=prompt, longest=longest, shortest=shortest, ids=out.ids)
        return out

    monkeypatch.setattr(inference, 'decode', spy)
    predictions = model.head.predict(model, dict(images=torch.randn(2, 3, 32, 32)), None)
    tokenizer = model.text_tokenizer
    assert seen['prompt'].tolist() == [[101, *tokenizer.encode('a picture of')[1:-1]]] * 2
    assert (seen['longest'], seen['shortest']) == (16, 1)  # 20 and 5 counting the 4 prompt ids
    assert model.head.generation.num_beams == 2
    for sample, ids in zip(predictions, seen['ids'][:, 0].tolist()):
        assert sample.pred_caption == tokenizer.decode(ids)  # the new tokens only


# -- the painting head -------------------------------------------------------------------------
def brightness(model, images, captions):
    return images.mean((1, 2, 3))


def test_the_painting_head_keeps_the_sample_its_scorer_rates_best():
    torch.manual_seed(0)
    head = dict(type='TextToImageHead', num_samples=3, scorer=brightness, generation=dict(seed=5))
    model = build_model(objectives=[], head=head).eval()
    from mmpretrain.structures import DataSample

    samples = [DataSample(caption=c) for c in CAPTIONS]
    stored = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    images = model.data_preprocessor.model_input(stored)
    batch = dict(images=images, caption=texts(model, CAPTIONS))
    predictions = model.head.predict(model, batch, samples)
    config = GenerationConfig(do_sample=True, seed=5)
    paintings, scores = paint_scored(model, CAPTIONS, config, 3, brightness)
    for row, sample in enumerate(predictions):
        best = int(scores[row].argmax())
        assert torch.equal(sample.pred_painting, paintings[row, best])
        assert sample.pred_painting_score == pytest.approx(float(scores[row].max()))
        assert torch.equal(sample.gt_image, stored[row].flip(0))  # RGB of the BGR input
    model.train()
    losses = model.head.loss(model, batch, samples)
    assert set(losses) == {'loss_paint'} and torch.isfinite(losses['loss_paint'])


# -- FID and IS --------------------------------------------------------------------------------
class ChannelMeans(torch.nn.Module):
    """uint8 images [N, 3, H, W] -> their channel means [N, 3]: a tiny feature space."""

    def forward(self, images):
        return images.float().mean((2, 3))


class CornerLogits(torch.nn.Module):
    """uint8 images -> the top-left pixel's first two channels, read as logits [N, 2] (the
    features and the class logits of the Inception Score alike)."""

    def forward(self, images):
        return images[:, :2, 0, 0].float()

    def class_logits(self, images):
        return self(images)


def evaluate(metric, paintings, real=None) -> dict:
    samples = [dict(pred_painting=p.float() / 255) for p in paintings]
    if real is not None:
        for sample, image in zip(samples, real):
            sample['gt_image'] = image
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def test_fid_of_a_set_against_itself_is_zero_and_a_shift_gives_its_square(tmp_path):
    generator = torch.Generator().manual_seed(0)
    real = torch.randint(0, 200, (16, 3, 8, 8), dtype=torch.uint8, generator=generator)
    same = evaluate(ImageGenerationMetric(feature_extractor=ChannelMeans()), real, real)
    assert abs(same['text2image/FID']) < 1e-4
    assert same['text2image/count'] == 16
    # every channel mean moves by 40, the covariance stays: FID = 3 * 40^2
    cache = tmp_path / 'reference.safetensors'
    metric = ImageGenerationMetric(feature_extractor=ChannelMeans(), reference_stats=str(cache))
    shifted = evaluate(metric, real + 40, real)
    assert shifted['text2image/FID'] == pytest.approx(3 * 40**2, rel=1e-4)
    assert cache.is_file()  # the real statistics, cached after the first evaluation
    cached = ImageGenerationMetric(feature_extractor=ChannelMeans(), reference_stats=str(cache))
    again = evaluate(cached, real + 40)  # no real images needed any more
    assert again['text2image/FID'] == pytest.approx(shifted['text2image/FID'], rel=1e-9)
    with pytest.raises(ComponentArgumentError, match='needs the real images'):
        evaluate(ImageGenerationMetric(feature_extractor=ChannelMeans()), real)


def test_the_inception_score_of_two_sure_classes_is_about_two_and_of_one_is_one():
    two = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    two[0, 0, 0, 0], two[1, 1, 0, 0] = 10, 10  # logits (10, 0) and (0, 10)
    metric = ImageGenerationMetric(feature_extractor=CornerLogits(), is_splits=1)
    scores = evaluate(metric, two, two)
    # p = (a, b) and (b, a), the mean (1/2, 1/2): IS = exp(a log 2a + b log 2b)
    a = 1 / (1 + math.exp(-10))
    b = 1 - a
    expected = math.exp(a * math.log(2 * a) + b * math.log(2 * b))
    assert expected == pytest.approx(2.0, abs=1e-3)
    assert scores['text2image/IS'] == pytest.approx(expected, rel=1e-5)
    one = two[:1].repeat(2, 1, 1, 1)
    metric = ImageGenerationMetric(feature_extractor=CornerLogits(), is_splits=1)
    assert evaluate(metric, one, two)['text2image/IS'] == pytest.approx(1.0, abs=1e-6)


def fidelity_layout_weights(path, monkeypatch) -> dict:
    """Random weights laid out like torch-fidelity's FeatureExtractorInceptionV3, saved to
    ``path`` (built with its loading switched off: the real weights cannot be downloaded)."""
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity

    with monkeypatch.context() as patch:
        patch.setattr(fidelity, 'load_state_dict_from_url', lambda *args, **kwargs: {})
        patch.setattr(fidelity.FeatureExtractorInceptionV3, 'load_state_dict', lambda *a, **k: 0)
        network = fidelity.FeatureExtractorInceptionV3('inception-v3-compat', ['2048'])
    torch.manual_seed(0)
    state = {key: value.clone() for key, value in network.state_dict().items()}
    state['fc.bias'] = torch.randn_like(state['fc.bias'])
    torch.save(state, path)
    return state


def test_inception_weights_load_through_the_safe_loader_into_both_scores(tmp_path, monkeypatch):
    pytest.importorskip('torch_fidelity')
    torch.set_num_threads(1)
    path = tmp_path / 'inception.pth'
    state = fidelity_layout_weights(path, monkeypatch)
    network = load_inception(str(path))
    assert torch.equal(network.fc.bias, state['fc.bias'])  # the file's weights, not random
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    pool, logits = network(images)
    assert pool.shape == (2, 2048) and logits.shape == (2, 1008)
    metric = ImageGenerationMetric(inception_weights=str(path), is_splits=1)
    scores = evaluate(metric, images, images.flip(-1))
    assert {'text2image/FID', 'text2image/IS', 'text2image/IS_std'} <= set(scores)
    assert scores['text2image/IS'] >= 1.0 - 1e-6
    del state['fc.weight']
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match='FeatureExtractorInceptionV3'):
        load_inception(str(path))


def test_missing_inception_weights_are_one_line_naming_the_path_and_the_source(tmp_path, capsys):
    missing = tmp_path / 'pt_inception.pth'
    config = dict(type='ImageGenerationMetric', inception_weights=str(missing))

    def main(argv):
        METRICS.build(config)

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [])
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip()
    assert '\n' not in line and line.startswith('error: ')
    assert str(missing) in line and 'pt_inception-2015-12-05' in line
    assert INCEPTION_WEIGHTS_URL in line


def test_the_reference_cache_refuses_another_feature_extractor(tmp_path):
    real = torch.randint(0, 200, (4, 3, 8, 8), dtype=torch.uint8)
    cache = tmp_path / 'reference.safetensors'
    first = ImageGenerationMetric(feature_extractor=ChannelMeans(), reference_stats=str(cache))
    evaluate(first, real, real)
    other = dict(type='ImageGenerationMetric', reference_stats=str(cache))
    with pytest.raises(CheckpointMismatchError, match='delete the file'):
        METRICS.build(dict(other, feature_extractor=CornerLogits()))


@pytest.mark.parametrize(
    ('config', 'size'),
    [('caption_coco/caption_coco_base.py', 576), ('text2image_coco/text2image_coco_base.py', 256)],
)
def test_the_paper_configs_read_the_published_layout_at_their_resolution(tmp_path, config, size):
    from mmengine.config import Config

    from davinci_zoo.registry import DATASETS

    write_karpathy_fixture(tmp_path)
    cfg = Config.fromfile(str(REPO / 'configs' / 'downstream' / config))
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        dataset = dict(loader.dataset, ann_file=str(tmp_path / 'dataset_coco.json'))
        dataset = DATASETS.build(dict(dataset, data_root=str(tmp_path)))
        item = dataset[0]
        assert item['inputs']['images'].shape == (3, size, size)
        assert isinstance(item['data_samples'].caption, str)


# -- through the tools -------------------------------------------------------------------------
@pytest.mark.slow(budget_s=120)
@pytest.mark.subprocess
def test_the_caption_scene_config_fine_tunes_and_tests_through_the_tools(tmp_path):
    write_karpathy_fixture(tmp_path)
    work = tmp_path / 'work'
    ann = str(tmp_path / 'dataset_coco.json')
    options = [
        '--cfg-options',
        'model.pretrained=None',
        f'train_dataloader.dataset.ann_file={ann}',
        f'train_dataloader.dataset.data_root={tmp_path}',
        'train_dataloader.batch_size=4',
        f'test_dataloader.dataset.ann_file={ann}',
        f'test_dataloader.dataset.data_root={tmp_path}',
        'test_dataloader.batch_size=4',
        'train_cfg.max_iters=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
    ]
    one_thread = dict(OMP_NUM_THREADS='1')
    train = run_tool(
        'tools/train.py', str(SCENE_CONFIG), '--work-dir', str(work), *options, **one_thread
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert 'loss_caption: ' in train.stdout + train.stderr
    metrics = tmp_path / 'metrics.json'
    test = run_tool(
        'tools/test.py',
        str(SCENE_CONFIG),
        str(work / 'iter_2.pth'),
        '--work-dir',
        str(work),
        '--metrics-json',
        str(metrics),
        *options,
        **one_thread,
    )
    assert test.returncode == 0, test.stderr[-3000:]
    scores = json.loads(metrics.read_text())
    names = ('Bleu_1', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr')
    assert {f'caption/{name}' for name in names} <= set(scores)
    assert scores['caption/count'] == 3  # the three test images
