"""docs/custom_data.md end to end on a tiny generated folder: train an image tokenizer on the
folder, export it, train DaVinci on the caption json, caption, paint, evaluate -- each step the
shipped configs/custom/ config run by its tool, shrunk to a few steps with --cfg-options."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, run_tool
from PIL import Image, ImageDraw

TOKENIZER_CONFIG = str(REPO / 'configs/custom/vqgan-f4-1024_1xb8-1400it_custom-images-32px.py')
DAVINCI_CONFIG = str(REPO / 'configs/custom/davinci-tiny_1xb16-700it_custom-captions-32px.py')
COLOURS = dict(red=(220, 30, 30), green=(30, 180, 60), blue=(40, 60, 220), yellow=(230, 210, 40))
ONE_THREAD = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def make_custom_folder(root, count: int = 12) -> dict[str, str]:
    """``root/images/*.png`` (40 x 48 px: resized and cropped by the pipelines) and
    ``captions_train.json`` / ``captions_test.json`` as docs/custom_data.md lays them out."""
    (root / 'images' / 'more').mkdir(parents=True)
    rows = []
    for index in range(count):
        colour = list(COLOURS)[index % len(COLOURS)]
        shape = 'square' if index % 3 else 'circle'
        image = Image.new('RGB', (48, 40), (245, 245, 240))
        box = (8 + index % 5 * 2, 6, 30 + index % 5 * 2, 28)
        draw = ImageDraw.Draw(image)
        (draw.rectangle if shape == 'square' else draw.ellipse)(box, fill=COLOURS[colour])
        name = f'images/{"more/" if index % 2 else ""}{index:02d}.png'
        image.save(root / name)
        caption = f'A {colour} {shape} on a white background.'
        rows.append(dict(image=name, caption=[caption, f'{colour} {shape}'] if index else caption))
    (root / 'captions_train.json').write_text(json.dumps(rows[4:]))
    (root / 'captions_test.json').write_text(json.dumps(rows[:4]))
    return dict(root=str(root), train=str(root / 'captions_train.json'), test=rows[:4])


def steps(count: int, warmup: int = 2) -> list[str]:
    """--cfg-options that shorten a shipped schedule to ``count`` steps."""
    return [
        f'train_cfg.max_iters={count}',
        f'param_scheduler.0.end={warmup}',
        f'param_scheduler.1.begin={warmup}',
        f'param_scheduler.1.end={count}',
        f'default_hooks.checkpoint.interval={count}',
        'default_hooks.logger.interval=1',
    ]


def ok(result) -> str:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow(budget_s=240)
@pytest.mark.subprocess
def test_custom_data_path_end_to_end(tmp_path):
    data = make_custom_folder(tmp_path / 'data')
    root, test_json, work = data['root'], f'{data["root"]}/captions_test.json', tmp_path / 'work'
    held_out = [
        f'{split}_dataloader.dataset.{key}={value}'
        for split in ('val', 'test')
        for key, value in (('data_root', root), ('ann_file', test_json))
    ]

    # 1. the image tokenizer, trained on every image below the folder
    ok(
        run_tool(
            'tools/train.py',
            TOKENIZER_CONFIG,
            '--work-dir',
            str(work / 'tokenizer'),
            '--cfg-options',
            f'train_dataloader.dataset.data_root={root}/images',
            'train_dataloader.batch_size=4',
            *held_out,
            *steps(4),
            'train_cfg.val_interval=4',
            **ONE_THREAD,
        )
    )
    scalars = next((work / 'tokenizer').glob('*/vis_data/scalars.json')).read_text()
    validation = json.loads(scalars.splitlines()[-1])  # scored on the held-out images
    assert 0 < validation['reconstruction/psnr'] < 100

    # 2. its weights, checked against the DaVinci config that paints with them
    weights = str(tmp_path / 'vqgan.safetensors')
    out = ok(
        run_tool(
            'tools/export_tokenizer.py',
            str(work / 'tokenizer'),
            weights,
            '--config',
            DAVINCI_CONFIG,
            **ONE_THREAD,
        )
    )
    assert f'wrote {weights}' in out

    # 3. DaVinci on the caption json
    davinci_dir = work / 'davinci'
    ok(
        run_tool(
            'tools/train.py',
            DAVINCI_CONFIG,
            '--work-dir',
            str(davinci_dir),
            '--cfg-options',
            f'model.image_tokenizer.checkpoint={weights}',
            f'train_dataloader.dataset.data_root={root}',
            f'train_dataloader.dataset.ann_file={data["train"]}',
            'train_dataloader.batch_size=4',
            *steps(4),
            **ONE_THREAD,
        )
    )
    checkpoint = (davinci_dir / 'last_checkpoint').read_text().strip()

    # 4. caption two images
    images = [f'{root}/{row["image"]}' for row in data['test'][:2]]
    out = ok(run_tool('tools/caption.py', DAVINCI_CONFIG, checkpoint, *images, **ONE_THREAD))
    assert [line.split('\t')[0] for line in out.splitlines()] == images

    # 5. paint two texts, each painting as its own PNG, and the grid
    paintings, grid = tmp_path / 'paintings', tmp_path / 'grid.png'
    texts = ['a red square', 'a blue circle on a white background']
    paint_options = ('--samples', '2', '--rerank', '--out-dir', str(paintings), '--out', str(grid))
    ok(run_tool('tools/paint.py', DAVINCI_CONFIG, checkpoint, *texts, *paint_options, **ONE_THREAD))
    files = sorted(p.name for p in paintings.glob('*.png'))
    assert files == ['000_00.png', '000_01.png', '001_00.png', '001_01.png']
    assert all(Image.open(paintings / name).size == (32, 32) for name in files)
    table = (paintings / 'paintings.tsv').read_text().splitlines()
    assert table[0] == 'file\ttext\tscore' and len(table) == 5
    assert [row.split('\t')[1] for row in table[1:]] == [texts[0]] * 2 + [texts[1]] * 2
    assert Image.open(grid).size == (2 * 34 + 2, 2 * 34 + 2)

    # 6. evaluate on the held-out pairs: real numbers, not {} and not a crash
    metrics_json = tmp_path / 'metrics.json'
    ok(
        run_tool(
            'tools/test.py',
            DAVINCI_CONFIG,
            checkpoint,
            '--work-dir',
            str(davinci_dir),
            '--metrics-json',
            str(metrics_json),
            '--cfg-options',
            f'test_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.ann_file={test_json}',
            **ONE_THREAD,
        )
    )
    metrics = json.loads(metrics_json.read_text())
    print(json.dumps(metrics, indent=2))
    for name in ('Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L'):
        assert 0.0 <= metrics[f'write_paint/{name}'] <= 1.0, name
    assert metrics['write_paint/CIDEr'] >= 0.0
    # mean log-probability per caption token of its own painting (uniform: -log 30522 = -10.3)
    assert -30 < metrics['write_paint/self_likelihood'] < 0
    assert metrics['write_paint/count'] == 4
    written = (davinci_dir / 'captions.tsv').read_text().splitlines()
    assert len(written) == 1 + 4 and (davinci_dir / 'paintings.png').is_file()
