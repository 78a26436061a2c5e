"""TrainingSamplesHook: files and TensorBoard entries at the right steps, training untouched.

A tiny DaVinci (dropout 0.1, so every random draw matters) trains for 4 iterations through
mmengine's Runner, sampling every 2; the TensorBoard event file is read back with
tensorboard's EventAccumulator. A run without the hook must end with bitwise the same weights,
and a hook that draws once from torch's global generator must not (so that check can fail).
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_davinci_config
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from PIL import Image

from davinci_zoo.engine.runtime import setup_runtime
from davinci_zoo.engine.sample_hooks import (
    TrainingSamplesHook,
    captions_markdown,
    evaluation_mode,
)
from davinci_zoo.registry import MODELS

pytestmark = pytest.mark.slow(budget_s=120)

MAX_ITERS, INTERVAL, NUM_IMAGES = 4, 2, 3
SCENES = dict(
    type='ProceduralScenes',
    num_scenes=16,
    image_size=32,
    two_object_prob=0.5,
    pipeline=[dict(type='TokenizeText', keys=['caption']), dict(type='PackDaVinciInputs')],
)
TINY_DAVINCI = tiny_davinci_config(dropout=0.1, head=dict(type='WritePaintHead'))
SAMPLES_HOOK = dict(
    type='TrainingSamplesHook',
    interval=INTERVAL,
    images='test',
    num_images=NUM_IMAGES,
    max_caption_tokens=8,
    sampling=dict(do_sample=True, top_k=8),  # the private generator is really used
    seed=3,
)


def tiny_config(work_dir, name: str, with_samples: bool) -> Config:
    cfg = Config.fromfile(str(REPO / 'configs' / '_base_' / 'default_runtime.py'))
    loader = dict(num_workers=0, collate_fn=dict(type='davinci_zoo.mixed_collate'))
    cfg.merge_from_dict(
        dict(
            work_dir=str(work_dir),
            experiment_name=name,
            model=TINY_DAVINCI,
            train_dataloader=dict(
                loader,
                batch_size=4,
                sampler=dict(type='DefaultSampler', shuffle=True),
                dataset=dict(SCENES, seed=1),
            ),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS),
            optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
            test_dataloader=dict(
                loader,
                batch_size=4,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(SCENES, seed=20_000),
            ),
            test_cfg=dict(type='TestLoop'),
            test_evaluator=dict(type='SceneWritePaintMetric'),
            default_hooks=dict(
                checkpoint=dict(interval=1000, save_last=False), logger=dict(interval=1)
            ),
            custom_hooks=[dict(type='RNGStateHook')] + ([SAMPLES_HOOK] if with_samples else []),
            visualizer=dict(type='Visualizer', vis_backends=[dict(type='TensorboardVisBackend')]),
            randomness=dict(seed=0),
        )
    )
    return cfg


class FlagProbe(Hook):
    """Runs after every other hook: records each module's train flag around every iteration."""

    priority = 'LOWEST'

    def __init__(self):
        self.before, self.after = [], []

    @staticmethod
    def flags(runner):
        return [module.training for module in runner.model.modules()]

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before.append(self.flags(runner))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.after.append(self.flags(runner))


class DrawsOnce(Hook):
    """A careless sampler: one draw from torch's global generator after iteration 2."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == INTERVAL:
            torch.rand(1)


def train(work_dir, name, with_samples=False, extra_hooks=()):
    """Train the tiny config in this process; -> (final weights, runner)."""
    torch.set_num_threads(1)
    setup_runtime()
    runner = Runner.from_cfg(tiny_config(work_dir, name, with_samples))
    for hook in extra_hooks:
        runner.register_hook(hook)
    runner.train()
    weights = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
    return weights, runner


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    probe = FlagProbe()
    sampled_dir = tmp_path_factory.mktemp('sampled')
    sampled, _ = train(sampled_dir, 'samples_on', with_samples=True, extra_hooks=[probe])
    plain, _ = train(tmp_path_factory.mktemp('plain'), 'samples_off')
    careless, _ = train(tmp_path_factory.mktemp('careless'), 'careless', extra_hooks=[DrawsOnce()])
    return SimpleNamespace(
        sampled=sampled, plain=plain, careless=careless, work_dir=sampled_dir, probe=probe
    )


def read_events(work_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(work_dir.rglob('events.out.tfevents.*'))
    assert len(files) == 1, files
    events = EventAccumulator(str(files[0].parent), size_guidance={'images': 0, 'tensors': 0})
    events.Reload()
    return events


def read_captions(path):
    lines = path.read_text().splitlines()
    assert lines[0] == 'image\ttruth\twritten'
    rows = [line.split('\t') for line in lines[1:]]
    assert [int(r[0]) for r in rows] == list(range(NUM_IMAGES))
    return [r[1] for r in rows], [r[2] for r in rows]


def test_samples_are_written_to_files_and_tensorboard_at_their_steps(runs):
    samples = runs.work_dir / 'samples'
    steps = list(range(INTERVAL, MAX_ITERS + 1, INTERVAL))
    assert sorted(p.name for p in samples.iterdir()) == sorted(
        ['prompts.txt']
        + [f'iter_{s}_captions.txt' for s in steps]
        + [f'iter_{s}_paintings.png' for s in steps]
    )
    truths, _ = read_captions(samples / f'iter_{steps[0]}_captions.txt')
    # default prompts: the true captions of the first test scenes
    assert samples.joinpath('prompts.txt').read_text().splitlines() == truths
    assert len(set(truths)) == NUM_IMAGES and all(truths)

    events = read_events(runs.work_dir)
    images = events.Images('samples/paintings')
    texts = events.Tensors('samples/captions/text_summary')
    scalars = events.Scalars('samples/caption_exact_match')
    assert [e.step for e in images] == steps
    assert [e.step for e in texts] == steps
    assert [e.step for e in scalars] == steps
    for step, image, text, scalar in zip(steps, images, texts, scalars):
        on_disk = np.asarray(Image.open(samples / f'iter_{step}_paintings.png'))
        logged = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert('RGB'))
        np.testing.assert_array_equal(logged, on_disk)
        # originals (top row) above paintings (bottom row), 32 px each plus 2 px padding
        assert on_disk.shape == (2 * 34 + 2, NUM_IMAGES * 34 + 2, 3)
        truths_now, written = read_captions(samples / f'iter_{step}_captions.txt')
        assert truths_now == truths and all(isinstance(w, str) for w in written)
        assert text.tensor_proto.string_val[0].decode() == captions_markdown(truths, written)
        exact = sum(t == w for t, w in zip(truths, written)) / NUM_IMAGES
        assert scalar.value == pytest.approx(exact)


def test_training_is_bitwise_the_same_with_and_without_the_hook(runs):
    assert runs.sampled.keys() == runs.plain.keys()
    for key in runs.plain:
        assert torch.equal(runs.sampled[key], runs.plain[key]), key


def test_one_global_draw_changes_training_so_the_check_above_can_fail(runs):
    assert any(not torch.equal(runs.careless[k], runs.plain[k]) for k in runs.plain)


def test_module_modes_are_the_same_after_the_hook(runs):
    probe = runs.probe
    assert len(probe.before) == len(probe.after) == MAX_ITERS
    assert probe.before == probe.after
    assert any(probe.before[0]) and not all(probe.before[0])  # trainable on, tokenizer frozen


def test_evaluation_mode_switches_off_dropout_and_restores_each_flag():
    model = MODELS.build(TINY_DAVINCI).train()
    model.decoder.layers[0].attention.output.dropout.eval()  # an odd flag must come back too
    before = [m.training for m in model.modules()]
    with evaluation_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before


def test_bad_settings_fail_with_one_clear_line(tmp_path):
    with pytest.raises(ValueError, match='interval must be >= 1'):
        TrainingSamplesHook(interval=0)
    with pytest.raises(ValueError, match="one of \\('train', 'val', 'test'\\)"):
        TrainingSamplesHook(images='validation')
    runner = SimpleNamespace(cfg=Config(dict(train_dataloader=dict())), work_dir=str(tmp_path))
    with pytest.raises(ValueError, match='val_dataloader.dataset'):
        TrainingSamplesHook(images='val').before_train(runner)
    folder = tmp_path / 'folder'
    folder.mkdir()
    Image.new('RGB', (40, 40), (200, 10, 10)).save(folder / 'red.png')
    pipeline = [
        dict(type='LoadImageFromFile', imdecode_backend='pillow'),
        dict(type='ResizeEdge', scale=32, edge='short'),
        dict(type='PackDaVinciInputs'),
    ]
    unlabeled = dict(type='ImageFolderImages', data_root=str(folder), pipeline=pipeline)
    with pytest.raises(ValueError, match='give prompts='):
        TrainingSamplesHook(images=unlabeled).before_train(runner)
    unpacked = dict(unlabeled, pipeline=pipeline[:2])
    with pytest.raises(ValueError, match='PackDaVinciInputs'):
        TrainingSamplesHook(images=unpacked, prompts=['a']).before_train(runner)
    hook = TrainingSamplesHook(images=unlabeled, prompts=['a small red square'])
    hook.before_train(runner)
    assert hook.fixed_batch['inputs']['images'].shape == (1, 3, 32, 32) and hook.truths is None
    assert (tmp_path / 'samples' / 'prompts.txt').read_text() == 'a small red square\n'
