"""The paper-scale configs build and step; without data they stop with one line."""

import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config

from davinci_zoo.registry import MODELS
from davinci_zoo.text import tokenize_texts


def build_without_weights(config_name, **model_overrides):
    cfg = Config.fromfile(str(REPO / 'configs' / config_name))
    cfg.model.image_tokenizer.checkpoint = None  # published weights are not downloadable here
    cfg.model.update(model_overrides)
    return MODELS.build(cfg.model)


def one_step(model, image_size):
    """One training step on a tiny CPU batch: finite losses, gradients everywhere trainable."""
    torch.manual_seed(0)
    images = model.data_preprocessor.normalize(torch.rand(2, 3, image_size, image_size))
    codes = torch.randint(0, model.vocab.codebook_size, (2, *model.vocab.code_grid))
    batch = dict(
        images=images,
        codes=codes,
        caption=tokenize_texts(model.text_tokenizer, ['a dog runs on the grass', 'two cats']),
        text=tokenize_texts(model.text_tokenizer, ['a text only document for the corpus']),
    )
    losses = model.loss(batch)
    assert set(losses) == {'loss_prefixlm', 'loss_prefiximage', 'loss_textprefixlm'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(torch.isfinite(p.grad).all() for p in trainable if p.grad is not None)
    return sum(p.numel() for p in model.parameters())


def _leaf_configs():
    return sorted(p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)


@pytest.mark.slow(budget_s=240)
def test_davinci_base_builds_at_full_size_and_steps():
    torch.set_num_threads(2)
    model = build_without_weights('davinci_base.py')
    assert model.vocab.size == 30522 + 1024 and model.vocab.code_grid == (16, 16)
    assert model.decoder.embeddings.max_positions == 257
    assert model.image_embedder.grid == (16, 16)
    parameters = one_step(model, 256)
    tokenizer = sum(p.numel() for p in model.image_tokenizer.parameters())
    print(
        f'davinci_base: {parameters / 1e6:.1f}M parameters, {tokenizer / 1e6:.1f}M in the '
        'frozen tokenizer'
    )
    assert 150e6 < parameters - tokenizer < 160e6  # docs/original.md section 1.1: about 153M


@pytest.mark.slow(budget_s=400)
def test_davinci_large_builds_and_steps():
    torch.set_num_threads(2)
    model = build_without_weights('davinci_large.py')
    assert model.image_embedder.feature_dim == 1024 and len(model.decoder.layers) == 12
    parameters = one_step(model, 256)
    print(f'davinci_large: {parameters / 1e6:.1f}M parameters')


@pytest.mark.parametrize('config', ['davinci_base.py', 'davinci_large.py'])
def test_configs_without_data_stop_with_one_line(config, tmp_path):
    result = run_tool('tools/train.py', str(REPO / 'configs' / config), '--work-dir', str(tmp_path))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'does not exist' in last and 'docs/data.md' in last
    assert 'Traceback' not in result.stderr


def test_every_shipped_config_reads_and_names_a_model():
    """Every leaf config (not _base_) parses with its inheritance and builds from registered
    names only (checked by looking the model's type up)."""
    leaves = _leaf_configs()
    assert len(leaves) >= 7
    for path in leaves:
        cfg = Config.fromfile(str(path))
        if 'probe' in cfg:  # a linear-probe recipe: the model is the probed checkpoint's
            continue
        if 'mixes' in cfg:  # an ablation grid (tools/ablate.py): its mix configs have models
            continue
        assert 'model' in cfg and MODELS.get(cfg.model.type) is not None, path


def test_checkpoints_and_logs_follow_the_loop():
    """An epoch loop checkpoints and logs by epoch, an iteration loop by iteration (a
    CheckpointHook with by_epoch=False under an epoch loop saves every `interval` steps)."""
    for path in _leaf_configs():
        cfg = Config.fromfile(str(path))
        if cfg.get('train_cfg') is None or cfg.get('default_hooks') is None:
            continue
        by_epoch = cfg.train_cfg.type == 'EpochBasedTrainLoop'
        checkpoint = cfg.default_hooks.checkpoint
        assert checkpoint.get('by_epoch', True) == by_epoch, path
        assert cfg.log_processor.by_epoch == by_epoch, path


# What makes a checkpoint fit a model: the quick start's architecture, repeated in each scene
# task config (mmengine cannot merge one model dict from two bases)
ARCHITECTURE_KEYS = (
    'image_size',
    'hidden_size',
    'num_heads',
    'intermediate_size',
    'encoder_layers',
    'decoder_layers',
    'max_text_positions',
    'visual_vocab_size',
    'image_code_grid',
    'image_embedder',
    'image_grid_embeddings',
    'painting_relative_bias',
)


def test_scene_task_models_are_the_quick_start_model():
    """Every configs/downstream/*/*_scenes32.py states the quick start's architecture, so the
    quick start's checkpoint loads into each (a drifted copy would fail only at run time)."""
    quick_start = Config.fromfile(str(REPO / 'configs' / 'davinci_tiny_scenes32.py')).model
    scene_tasks = sorted((REPO / 'configs' / 'downstream').glob('*/*_scenes32*.py'))
    assert len(scene_tasks) >= 5
    for path in scene_tasks:
        model = Config.fromfile(str(path)).model
        for key in ARCHITECTURE_KEYS:
            assert model.get(key) == quick_start.get(key), (path.name, key)


def test_the_write_and_paint_recipe_is_the_quick_start_without_its_matching_objectives():
    """configs/davinci_tiny_scenes32_plm_pim.py repeats the quick start's first two objectives
    (a list is not merged from the base): a drifted copy would measure another change."""
    quick_start = Config.fromfile(str(REPO / 'configs' / 'davinci_tiny_scenes32.py'))
    plm_pim = Config.fromfile(str(REPO / 'configs' / 'davinci_tiny_scenes32_plm_pim.py'))
    *kept, itc, itm = quick_start.model.objectives
    assert plm_pim.model.objectives == kept
    assert [o.type for o in kept] == ['PrefixLM', 'PrefixImage']
    assert (itc.type, itm.type) == ('ImageTextContrastive', 'ImageTextMatching')
    rest = {k: v for k, v in plm_pim.model.items() if k != 'objectives'}
    assert rest == {k: v for k, v in quick_start.model.items() if k != 'objectives'}
    assert plm_pim.train_cfg == quick_start.train_cfg
    assert plm_pim.optim_wrapper == quick_start.optim_wrapper
