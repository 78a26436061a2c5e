"""davinci_zoo.apis and tools/caption.py, tools/paint.py on a tiny config written here.

The model is untrained (random weights): these checks are about loading, preprocessing,
return types and sizes, agreement between the API and the tools, and one-line errors.
What a trained model writes and paints is checked in test_write_paint_overfit.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import run_tool, tiny_davinci_config
from davinci_zoo_scenes import generate_scenes, render
from PIL import Image

from davinci_zoo.checkpoint import CheckpointMismatchError, save_checkpoint_file
from davinci_zoo.models.data_preprocessor import DaVinciDataPreprocessor

TINY_MODEL = tiny_davinci_config()
TEXTS = ['a small red circle in the top left', 'a large blue square above a small green circle']


def write_config(path, **overrides):
    path.write_text(f"default_scope = 'davinci_zoo'\nmodel = {dict(TINY_MODEL, **overrides)!r}\n")
    return str(path)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A config file, a checkpoint that fits it, one that does not, and scene images."""
    from davinci_zoo.apis import init_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp('tiny')
    config = write_config(root / 'tiny.py')
    model = init_model(config)
    with torch.no_grad():  # visual logits matter: a random head would always pick text
        for param in model.decoder.parameters():
            param.add_(0.2 * torch.randn_like(param))
    save_checkpoint_file(dict(state_dict=model.state_dict(), meta={}), root / 'tiny.pth')
    wide = init_model(write_config(root / 'wide.py', hidden_size=48, num_heads=4))
    save_checkpoint_file(dict(state_dict=wide.state_dict(), meta={}), root / 'wide.pth')
    images = []
    for index, scene in enumerate(generate_scenes(2, seed=3)):
        pixels = np.zeros((40, 32, 3), dtype=np.uint8)  # not square: centre-cropped
        pixels[4:36] = render(scene, 32)
        images.append(str(root / f'scene{index}.png'))
        Image.fromarray(pixels).save(images[-1])
    corrupt = root / 'corrupt.png'
    corrupt.write_bytes(b'\x89PNG\r\n\x1a\n' + b'not really a png' * 4)
    return dict(
        root=root,
        config=config,
        checkpoint=str(root / 'tiny.pth'),
        wide=str(root / 'wide.pth'),
        images=images,
        corrupt=str(corrupt),
        state_dict=model.state_dict(),
    )


@pytest.fixture(scope='module')
def model(tiny):
    from davinci_zoo.apis import init_model

    return init_model(tiny['config'], tiny['checkpoint'])


def test_init_model_loads_the_checkpoint_and_refuses_one_that_does_not_fit(tiny, model):
    from mmengine.config import Config

    from davinci_zoo.apis import init_model
    from davinci_zoo.models.davinci.model import DaVinci

    assert isinstance(model, DaVinci) and not model.training
    for key, value in tiny['state_dict'].items():
        assert torch.equal(model.state_dict()[key], value), key
    from_config = init_model(Config.fromfile(tiny['config']), tiny['checkpoint'])
    assert torch.equal(from_config.decoder.head.bias, model.decoder.head.bias)
    with pytest.raises(CheckpointMismatchError) as error:
        init_model(tiny['config'], tiny['wide'])
    message = str(error.value)
    assert 'shape mismatches' in message and tiny['wide'] in message
    assert re.search(r'[a-z_.]+\.weight \(\d+, 48\) vs \(\d+, 32\)', message), message


def test_images_are_read_like_the_training_data(tiny, model):
    from davinci_zoo.apis import InputError, image_batch
    from davinci_zoo.datasets.image_folder import ImageFolderImages

    paths = tiny['images']
    batch = image_batch(paths, 32, 'cpu')
    assert batch.shape == (2, 3, 32, 32)
    pipeline = [  # the shipped pipelines' steps (configs/_base_/datasets/pretrain_pairs_c4.py)
        dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
        dict(type='ResizeEdge', scale=32, edge='short', backend='pillow', interpolation='bicubic'),
        dict(type='CenterCrop', crop_size=32),
        dict(type='PackDaVinciInputs'),
    ]
    folder = ImageFolderImages(str(tiny['root']), pipeline, max_bad_fraction=0.5)
    stored = torch.stack([folder[i]['inputs']['images'] for i in range(2)])  # scene0, scene1
    assert torch.equal(batch, DaVinciDataPreprocessor().unit_rgb(stored))
    pictures = [Image.open(path) for path in paths]
    assert torch.equal(image_batch(pictures, 32, 'cpu'), batch)
    assert torch.equal(image_batch(batch[0], 32, 'cpu'), batch[:1])
    with pytest.raises(InputError, match='cannot be read'):
        image_batch([tiny['corrupt']], 32, 'cpu')
    with pytest.raises(FileNotFoundError):
        image_batch([str(tiny['root'] / 'missing.png')], 32, 'cpu')
    with pytest.raises(InputError, match='32, 32'):
        image_batch(torch.zeros(1, 3, 16, 16), 32, 'cpu')
    with pytest.raises(InputError, match=r'\[0, 1\]'):
        image_batch(torch.full((1, 3, 32, 32), 2.0), 32, 'cpu')


def test_caption_paint_and_complete_return_what_they_promise(tiny, model):
    from davinci_zoo.apis import InputError, caption, complete, image_batch, paint

    paths = tiny['images']
    written = caption(model, paths)
    assert len(written) == 2 and all(isinstance(text, str) and text for text in written)
    assert caption(model, [Image.open(path) for path in paths]) == written
    assert caption(model, image_batch(paths, 32, 'cpu')) == written
    assert len(caption(model, paths[0], num_beams=2, max_length=5)) == 1

    single = paint(model, TEXTS[0])
    assert len(single) == 1 and single[0].size == (32, 32) and single[0].mode == 'RGB'
    drawn = paint(model, TEXTS, num_samples=3, do_sample=True, seed=0)
    assert [len(row) for row in drawn] == [3, 3]
    assert all(isinstance(image, Image.Image) for row in drawn for image in row)
    best = paint(model, TEXTS, num_samples=3, rerank=True, do_sample=True, seed=0)
    assert len(best) == 2 and all(isinstance(image, Image.Image) for image in best)
    scored = paint(model, TEXTS, 3, rerank=True, with_scores=True, do_sample=True, seed=0)
    assert [len(row) for row in scored] == [3, 3]
    for row, image in zip(scored, best):
        scores = [score for _, score in row]
        assert scores == sorted(scores, reverse=True)
        assert np.array_equal(np.asarray(row[0][0]), np.asarray(image))
        assert {np.asarray(i).tobytes() for i, _ in row} <= {
            np.asarray(i).tobytes() for sample in drawn for i in sample
        }
    beams = paint(model, TEXTS[:1], num_samples=2, num_beams=2, with_scores=True)
    assert len(beams[0]) == 2 and beams[0][0][1] >= beams[0][1][1]
    guided = paint(model, TEXTS, guidance_scale=0.0)  # 0: both paint the empty caption
    assert np.array_equal(np.asarray(guided[0]), np.asarray(guided[1]))

    completed = complete(model, paths, 2, TEXTS)
    assert [image.size for image in completed] == [(32, 32), (32, 32)]
    kept = (image_batch(paths, 32, 'cpu')[:, :, :8] * 255).round().byte().permute(0, 2, 3, 1)
    for image, strip in zip(completed, kept):
        assert np.array_equal(np.asarray(image)[:8], strip.numpy())
    by_pixels = complete(model, paths, None, TEXTS, keep_pixels=8)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(by_pixels, completed))

    for call in (
        lambda: paint(model, ['']),
        lambda: paint(model, TEXTS, num_samples=2),  # greedy: 2 identical paintings
        lambda: paint(model, TEXTS, with_scores=True),
        lambda: paint(model, TEXTS, scorer='CaptionLikelihoodScorer'),  # without rerank
        lambda: paint(model, TEXTS, max_length=4),
        lambda: caption(model, paths, colour='red'),
        lambda: caption(model, paths, guidance_scale=2.0),  # guidance is for painting
        lambda: caption(model, paths, max_length=3, count_prompt=True, prompt='a picture of'),
        lambda: complete(model, paths, None, TEXTS, keep_pixels=6),
        lambda: complete(model, paths, 1, TEXTS),  # a 4 px strip the embedder cannot read
        lambda: complete(model, paths, 2, TEXTS[:1]),
    ):
        with pytest.raises(InputError):
            call()


@pytest.mark.slow(budget_s=150)
@pytest.mark.subprocess
def test_tools_write_and_paint_and_fail_with_one_line(tiny, model):
    from davinci_zoo.apis import caption

    config, checkpoint, paths = tiny['config'], tiny['checkpoint'], tiny['images']
    one_thread = dict(OMP_NUM_THREADS='1')  # the same kernels as this process: same argmaxes
    done = run_tool('tools/caption.py', config, checkpoint, *paths, '--beams', '2', **one_thread)
    assert done.returncode == 0, done.stderr
    expected = caption(model, paths, num_beams=2)
    assert done.stdout.splitlines() == [f'{p}\t{c}' for p, c in zip(paths, expected)]

    grid = tiny['root'] / 'grid.png'
    options = ('--samples', '3', '--rerank', '--seed', '1', '--out', str(grid))
    done = run_tool('tools/paint.py', config, checkpoint, *TEXTS, *options, **one_thread)
    assert done.returncode == 0, done.stderr
    assert Image.open(grid).size == (3 * 34 + 2, 2 * 34 + 2)  # 32 px tiles, 2 px padding
    lines = done.stdout.splitlines()
    assert [line.split('\t')[0] for line in lines[:2]] == TEXTS
    for line in lines[:2]:
        scores = [float(s) for s in line.split('\t')[1].split()]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)

    done = run_tool('tools/caption.py', config, tiny['wide'], paths[0], **one_thread)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith('error: checkpoint ') and 'shape mismatches' in lines[0]


def test_tools_refuse_an_unreadable_image_and_an_empty_text(tiny, capsys):
    """In process (the child-process path of run_tool is exercised above)."""
    from test_tools import load_tool, run_in_process

    config, checkpoint, paths = tiny['config'], tiny['checkpoint'], tiny['images']
    code, err = run_in_process(capsys, 'caption', config, checkpoint, paths[0], tiny['corrupt'])
    assert code == 2 and err.startswith(f'error: image {tiny["corrupt"]} cannot be read')
    assert '\n' not in err
    code, err = run_in_process(capsys, 'paint', config, checkpoint, '  ', '--out', 'x.png')
    assert code == 2 and err == 'error: an empty text cannot be painted; give each text in quotes'
    missing = str(tiny['root'] / 'missing.png')
    code, err = run_in_process(capsys, 'caption', config, checkpoint, missing)
    assert code == 2 and err == f'error: image {missing} does not exist'
    greedy_samples = ('a', '--out', 'x.png', '--greedy', '--samples', '2')
    code, err = run_in_process(capsys, 'paint', config, checkpoint, *greedy_samples)
    assert code == 2 and 'need do_sample=True' in err
    out = str(tiny['root'] / 'scored.png')
    rerank = ('a red circle', '--out', out, '--samples', '2', '--rerank')
    typo = ('--scorer', 'CLIPScorr')
    code, err = run_in_process(capsys, 'paint', config, checkpoint, *rerank, *typo)
    assert code == 2 and "'CLIPScorr'" in err and 'CLIPScorer' in err  # the closest name
    code, err = run_in_process(capsys, 'paint', config, checkpoint, *rerank[:3], '--scorer', 'X')
    assert code == 2 and err == 'error: --scorer is used by --rerank; add --rerank'
    options = ('--scorer-options', 'weights=clip.safetensors')
    code, err = run_in_process(capsys, 'paint', config, checkpoint, *rerank, *options)
    assert code == 2 and err == 'error: --scorer-options needs --scorer'
    likelihood = ('--scorer', 'CaptionLikelihoodScorer')
    bogus = ('--scorer-options', 'bogus=1')
    code, err = run_in_process(capsys, 'paint', config, checkpoint, *rerank, *likelihood, *bogus)
    assert code == 2 and err.startswith('error: --scorer CaptionLikelihoodScorer: ')
    code, err = run_in_process(
        capsys, 'paint', config, checkpoint, *rerank, '--guidance-scale', '-1'
    )
    assert code == 2 and 'guidance_scale must be >= 0' in err
    load_tool('paint').main([config, checkpoint, *rerank[:3], '--greedy', '--guidance-scale', '0'])
    empty_caption = np.asarray(Image.open(out))
    load_tool('paint').main(
        [config, checkpoint, 'a blue square', *rerank[1:3], '--greedy', '--guidance-scale', '0']
    )
    assert np.array_equal(np.asarray(Image.open(out)), empty_caption)  # scale 0: text unused
    capsys.readouterr()
    load_tool('paint').main([config, checkpoint, *rerank, *likelihood])
    assert Image.open(out).size == (2 * 34 + 2, 34 + 2)
    scores = [float(s) for s in capsys.readouterr().out.splitlines()[0].split('\t')[1].split()]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
