"""A task model starts from a pretraining checkpoint: strictly, except for the head and the
image resolution (``DaVinci(pretrained=...)``)."""

import pytest
import torch
from conftest import REPO, run_tool, tiny_davinci_config

from davinci_zoo.checkpoint import CheckpointMismatchError, save_checkpoint_file
from davinci_zoo.models.davinci.attention import resize_relative_table
from davinci_zoo.models.davinci.original_weights import resize_pos_embed
from davinci_zoo.registry import MODELS

CLASSIFY = dict(type='SequenceClassificationHead', num_classes=3, text_key='caption')


def task_config(**overrides) -> dict:
    """The tiny model as a classification task: no objectives, no tokenizer built."""
    return tiny_davinci_config(objectives=[], head=CLASSIFY, **overrides)


@pytest.fixture(scope='module')
def pretraining_checkpoint(tmp_path_factory):
    """A tiny pretraining model (with its tokenizer and the 2-D relative bias in the encoder's
    prefix image) saved as tools/train.py saves it."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_davinci_config(relative_bias_in_prefix_image=True))
    path = tmp_path_factory.mktemp('pretrained') / 'iter_10.pth'
    save_checkpoint_file({'state_dict': model.state_dict(), 'meta': {'iter': 10}}, path)
    return path, model.state_dict()


def test_a_task_starts_from_pretraining_with_only_its_head_new(pretraining_checkpoint):
    path, pretrained = pretraining_checkpoint
    torch.manual_seed(1)
    # the codebook start of the visual embeddings is moot when a checkpoint replaces them, so
    # it does not make the task build (and read) the image tokenizer
    model = MODELS.build(task_config(image_embedding_init='codebook', pretrained=str(path)))
    state = model.state_dict()
    assert model.image_tokenizer is None  # its keys in the checkpoint are dropped
    new = sorted(key for key in state if key not in pretrained)
    assert new and all(key.startswith('head.') for key in new)
    for key, value in state.items():
        if key in pretrained:
            assert torch.equal(value, pretrained[key]), key


def test_a_larger_resolution_gets_the_resized_image_tables(pretraining_checkpoint):
    """32 px checkpoint -> 64 px task: the 4x4 token grid's position table and relative bias
    tables become the 8x8 grid's, bicubically (else loading would refuse their shapes)."""
    path, pretrained = pretraining_checkpoint
    model = MODELS.build(task_config(image_size=64, pretrained=str(path)))
    old_grid, grid = (4, 4), model.image_embedder.grid
    assert grid == (8, 8) and pretrained['image_embedder.pos_embed'].shape[1] == 1 + 16
    expected = resize_pos_embed(pretrained['image_embedder.pos_embed'], grid)
    assert torch.equal(model.image_embedder.pos_embed.detach(), expected)
    tables = [key for key in pretrained if key.endswith('relative_bias_table')]
    assert tables
    state = model.state_dict()
    for key in tables:
        assert pretrained[key].shape[0] == (2 * old_grid[0] - 1) ** 2
        assert torch.equal(state[key], resize_relative_table(pretrained[key], grid)), key

    model.eval()
    with torch.no_grad():
        tokens = model.image_embedder(torch.rand(2, 3, 64, 64))
    assert tokens.shape == (2, 1 + 64, 32)  # the 8x8 grid, with the resized table


def test_a_checkpoint_that_does_not_fit_names_the_keys(pretraining_checkpoint, tmp_path):
    path, pretrained = pretraining_checkpoint
    with pytest.raises(CheckpointMismatchError) as wider:
        MODELS.build(task_config(hidden_size=64, num_heads=4, pretrained=str(path)))
    message = str(wider.value)
    assert 'only the head may be new' in message and 'shape mismatches' in message
    assert 'decoder.head.transform.LayerNorm.bias (32,) vs (64,)' in message

    dropped = 'encoder.layers.0.attention.self.query.weight'
    partial = {k: v for k, v in pretrained.items() if k != dropped}
    broken = tmp_path / 'partial.pth'
    save_checkpoint_file({'state_dict': partial}, broken)
    with pytest.raises(CheckpointMismatchError, match=rf'missing keys \(1\): {dropped}'):
        MODELS.build(task_config(pretrained=str(broken)))


@pytest.mark.slow(budget_s=60)
@pytest.mark.subprocess
def test_tools_report_a_pretrained_checkpoint_that_does_not_fit_in_one_line(
    pretraining_checkpoint, tmp_path
):
    path, _ = pretraining_checkpoint
    config = tmp_path / 'task.py'
    model = dict(task_config(hidden_size=64, pretrained=str(path)), _delete_=True)
    config.write_text(
        f"_base_ = ['{REPO / 'tests' / 'fixtures' / 'configs' / 'toy_regression.py'}']\n"
        f'model = {model!r}\n'
    )
    result = run_tool('tools/train.py', str(config), '--work-dir', str(tmp_path / 'w'))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error: model.pretrained') and 'shape mismatches' in last
    assert 'Traceback' not in result.stderr


FINETUNE_OPTIM = dict(
    constructor='GroupedOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.02),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)


def test_frozen_parts_keep_their_weights_and_statistics_while_the_rest_trains():
    """``frozen_parts``: no gradients, no optimizer slot, BatchNorm statistics fixed in train
    mode; the tied word embeddings freeze the decoder's output projection with them."""
    from mmpretrain.structures import DataSample

    from davinci_zoo.engine.optim import build_optim_wrapper
    from davinci_zoo.text import tokenize_texts

    frozen = ['image_embedder', 'encoder.embeddings.word_embeddings', 'encoder.layers.0']
    torch.manual_seed(0)
    model = MODELS.build(task_config(encoder_layers=2, frozen_parts=frozen))
    wrapper = build_optim_wrapper(model, dict(FINETUNE_OPTIM))
    optimized = {id(p) for group in wrapper.optimizer.param_groups for p in group['params']}
    by_name = dict(model.named_parameters())
    is_frozen = lambda key: key.startswith(tuple(f'{part}.' for part in frozen))  # noqa: E731
    assert sum(map(is_frozen, by_name)) > 20
    assert model.decoder.head.word_embeddings[0].weight.requires_grad is False  # tied
    for name, param in by_name.items():
        trains = not is_frozen(name)
        assert param.requires_grad == trains and (id(param) in optimized) == trains, name

    before = {key: value.clone() for key, value in model.state_dict().items()}
    model.train()
    assert not model.image_embedder.training and not model.encoder.layers[0].training
    assert model.encoder.layers[1].training and model.head.training
    samples = [DataSample().set_gt_label(label) for label in (0, 2)]
    inputs = dict(
        images=torch.randn(2, 3, 32, 32),
        caption=tokenize_texts(model.text_tokenizer, ['a red circle', 'two squares']),
    )
    wrapper.update_params(model(inputs, samples, mode='loss')['loss_cls'])
    after = model.state_dict()
    assert by_name['image_embedder.conv1.weight'].grad is None
    running = [key for key in before if 'running_mean' in key]
    assert running and all(is_frozen(key) for key in running)
    for key in before:  # weights and BatchNorm statistics alike
        unchanged = torch.equal(before[key], after[key])
        if is_frozen(key):
            assert unchanged, key
        elif key.startswith(('encoder.layers.1.', 'head.')):
            assert not unchanged, key
    with pytest.raises(ValueError, match=r"no submodule 'encoder\.layer\.0'.*image_embedder"):
        MODELS.build(task_config(frozen_parts=['encoder.layer.0']))
    with pytest.raises(ValueError, match="no submodule ''"):  # not the whole model
        MODELS.build(task_config(frozen_parts=['']))
    with pytest.raises(ValueError, match=r"got the string 'encoder': write \['encoder'\]"):
        MODELS.build(task_config(frozen_parts='encoder'))
