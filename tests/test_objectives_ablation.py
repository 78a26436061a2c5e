"""The ablation objectives Captioning, MaskedLM and MaskedImageModeling (issue 21).

Each is built by config on the tiny model; each loss must depend on what it claims to read:
after a few Adam steps on a fixed batch of solid-colour images (captions naming the colour),
the loss on the true pairing is far below the loss with images (or captions) shuffled across
the batch. The pieces (block masks, BERT's corruption) are checked alone, statistically.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_davinci_config

from davinci_zoo.checkpoint import save_checkpoint_file
from davinci_zoo.models.davinci.masked_image import MaskedImageModeling, block_mask, patch_codes
from davinci_zoo.models.davinci.masked_lm import MASK_ID, MaskedLM, choose_masked, corrupt
from davinci_zoo.models.davinci.objectives import Captioning
from davinci_zoo.models.davinci.pretrained import load_pretrained
from davinci_zoo.registry import MODELS, OBJECTIVES
from davinci_zoo.text import sequences, tokenize_texts
from davinci_zoo.text.batch import CLS_ID, SEP_ID

COLOURS = {
    'red': (1.0, 0.0, 0.0),
    'green': (0.0, 1.0, 0.0),
    'blue': (0.0, 0.0, 1.0),
    'yellow': (1.0, 1.0, 0.0),
}


def build(objectives: list[dict], seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return MODELS.build(tiny_davinci_config(objectives=objectives, **overrides))


def solid_batch(model, captions: list[str] | None = None) -> dict:
    """One solid-colour image per colour (normalised) with the caption 'a <colour> square'."""
    rgb = torch.tensor(list(COLOURS.values()))[:, :, None, None].expand(-1, -1, 32, 32)
    if captions is None:
        captions = [f'a {name} square' for name in COLOURS]
    return dict(
        images=model.data_preprocessor.normalize(rgb.contiguous()),
        caption=tokenize_texts(model.text_tokenizer, captions),
    )


def overfit(model, inputs: dict, steps: int, lr: float = 3e-3) -> None:
    """Adam on the model's summed losses over one fixed batch; leaves the model in eval mode."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    model.train()
    for _ in range(steps):
        loss = sum(model.loss(dict(inputs)).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@torch.no_grad()
def mean_loss(model, inputs: dict, seeds=range(4)) -> float:
    """The summed losses averaged over draws (masks) seeded alike for every call."""
    total = 0.0
    for seed in seeds:
        torch.manual_seed(seed)
        np.random.seed(seed)
        total += float(sum(model.loss(dict(inputs)).values()))
    return total / len(seeds)


def rolled(inputs: dict, key: str) -> dict:
    """The batch with ``key`` (images or captions) moved one row on: every pair mismatched."""
    shuffled = dict(inputs)
    value = inputs[key]
    if key == 'images':
        shuffled[key] = value.roll(1, 0)
    else:
        order = torch.arange(value.num_texts).roll(1)
        shuffled[key] = value.select(order)._replace(owner=value.owner)
    return shuffled


# --------------------------------------------------------------------------------------------
# Registry, parameters, contract
# --------------------------------------------------------------------------------------------
def test_the_objectives_are_registered_with_what_they_read_need_and_teach():
    assert OBJECTIVES.get('Captioning') is Captioning
    assert OBJECTIVES.get('MaskedLM') is MaskedLM
    assert OBJECTIVES.get('MaskedImageModeling') is MaskedImageModeling
    assert Captioning.teaches == ('write',) and Captioning.parts == ()
    assert MaskedLM.teaches == () and MaskedLM.parts == ()
    assert MaskedImageModeling.teaches == () and MaskedImageModeling.parts == ('image_tokenizer',)
    for cls in (Captioning, MaskedLM, MaskedImageModeling):
        assert cls.inputs == ('images', 'caption')


def test_all_three_train_together_and_give_grads_to_their_own_parameters():
    model = build(
        [dict(type='Captioning'), dict(type='MaskedLM'), dict(type='MaskedImageModeling')]
    )
    state = model.state_dict()
    assert {'objectives.1.bias', 'objectives.1.transform.dense.weight'} <= set(state)
    assert state['objectives.1.bias'].shape == (model.vocab.text_size,)
    assert state['objectives.2.mask_token'].shape == (32,)
    assert state['objectives.2.head.weight'].shape == (2 * 2 * 64, 32)  # r = 8 px / 4 px
    assert not [key for key in state if key.startswith('objectives.0.')]  # Captioning owns none

    model.train()
    losses = model.loss(solid_batch(model))
    assert sorted(losses) == ['loss_captioning', 'loss_maskedimagemodeling', 'loss_maskedlm']
    assert all(torch.isfinite(value) for value in losses.values())
    sum(losses.values()).backward()
    for name, param in model.objectives.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # MLM's output weights are the word embeddings (tied): they get MLM's gradient too
    model.zero_grad()
    model.objectives[1](model, solid_batch(model))['loss_maskedlm'].backward()
    assert model.encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_objective_weights_scale_their_losses():
    inputs = None
    values = []
    for weight in (1.0, 0.25):
        model = build([dict(type='MaskedLM', weight=weight)])
        inputs = inputs or solid_batch(model)
        torch.manual_seed(3)
        values.append(model.loss(dict(inputs))['loss_maskedlm'].item())
    assert values[1] == pytest.approx(0.25 * values[0], rel=1e-5)


def test_empty_captions_give_no_text_loss():
    model = build([dict(type='Captioning'), dict(type='MaskedLM')])
    inputs = solid_batch(model, captions=['', '', '', ''])
    assert model.objectives[0](model, inputs) == {}
    assert model.objectives[1](model, inputs) == {}


# --------------------------------------------------------------------------------------------
# Captioning: the split point is always 0
# --------------------------------------------------------------------------------------------
def test_captioning_writes_the_whole_caption_from_the_image_alone():
    model = build([dict(type='Captioning')])
    objective = model.objectives[0]
    state = np.random.get_state()
    assert [objective.split_point(n) for n in range(1, 40)] == [0] * 39
    assert np.array_equal(np.random.get_state()[1], state[1])  # no draw at all

    inputs = solid_batch(model, captions=['a red square', 'blue', 'a big green round thing', ''])
    seen = {}
    encode, decoder_loss = model.encode, model.decoder_loss

    def spy_encode(images, ids, mask, *args, **kwargs):
        seen['encoder_ids'], seen['encoder_images'] = ids, images
        return encode(images, ids, mask, *args, **kwargs)

    def spy_decoder_loss(ids, positions, memory, memory_mask, targets, *args, **kwargs):
        seen['targets'] = targets
        return decoder_loss(ids, positions, memory, memory_mask, targets, *args, **kwargs)

    model.encode, model.decoder_loss = spy_encode, spy_decoder_loss
    loss = objective(model, inputs)['loss_captioning']
    assert torch.isfinite(loss)
    assert seen['encoder_ids'].tolist() == [[CLS_ID]] * 3  # no text prefix; the empty one is out
    assert torch.equal(seen['encoder_images'], inputs['images'][:3])
    whole, _ = sequences(inputs['caption'].select(torch.arange(3)))
    targets = seen['targets']
    expected = whole[:, 1:].masked_fill(whole[:, 1:] == 0, -100)
    assert torch.equal(targets, expected)  # every caption token and [SEP] is predicted


# --------------------------------------------------------------------------------------------
# MaskedLM
# --------------------------------------------------------------------------------------------
def test_bert_choice_takes_15_percent_of_maskable_tokens_and_at_least_one_per_caption():
    torch.manual_seed(0)
    lengths = torch.randint(0, 30, (4000,))
    maskable = torch.arange(30)[None] < lengths[:, None]
    chosen = choose_masked(maskable, 0.15)
    assert not (chosen & ~maskable).any()
    assert torch.equal(chosen.any(1), lengths > 0)  # one at least; none where none is maskable
    long = lengths >= 20  # few rows where the "at least one" rule adds a token
    share = chosen[long].sum() / maskable[long].sum()
    assert abs(float(share) - 0.15) < 0.005
    single = maskable & (lengths[:, None] == 1)
    assert torch.equal(chosen & single, single)


def test_bert_corruption_is_80_10_10():
    torch.manual_seed(0)
    ids = torch.randint(2000, 3000, (1000, 200))
    chosen = torch.rand(ids.shape) < 0.5
    out = corrupt(ids, chosen, random_ids=(MASK_ID + 1, 30522))
    assert torch.equal(out[~chosen], ids[~chosen])
    picked, original = out[chosen], ids[chosen]
    masked = (picked == MASK_ID).float().mean()
    kept = (picked == original).float().mean()
    random = ((picked != MASK_ID) & (picked != original)).float().mean()
    assert abs(float(masked) - 0.8) < 0.005  # ~100k draws: sd 0.0013
    assert abs(float(kept) - 0.1) < 0.004
    assert abs(float(random) - 0.1) < 0.004
    replaced = picked[(picked != MASK_ID) & (picked != original)]
    assert replaced.min() > MASK_ID and replaced.max() < 30522
    assert replaced.float().std() > 5000  # spread over the vocabulary, not one id


def test_masked_lm_masks_caption_tokens_only_and_predicts_the_originals():
    model = build([dict(type='MaskedLM', mask_prob=0.5)])
    objective = model.objectives[0]
    inputs = solid_batch(model, captions=['a red square on the left of a blue circle'] * 64)
    original, mask = sequences(inputs['caption'], max_tokens=objective.max_tokens)
    seen = {}
    encode = model.encode

    def spy_encode(images, ids, text_mask, *args, **kwargs):
        seen['ids'] = ids
        return encode(images, ids, text_mask, *args, **kwargs)

    model.encode = spy_encode
    inputs['images'] = inputs['images'][:1].expand(64, -1, -1, -1)
    torch.manual_seed(0)
    objective(model, inputs)
    changed = seen['ids'] != original
    special = (original == CLS_ID) | (original == SEP_ID) | (mask == 0)
    assert changed.any() and not (changed & special).any()
    assert (seen['ids'] == MASK_ID).sum() > 0.3 * (mask.sum() - 2 * 64)  # ~0.5 * 0.8 of tokens


def test_masked_lm_reads_the_image():
    """Captions that differ only in the colour word, images of those colours: overfit, then
    mismatched images must cost MLM clearly more (it guesses the colour from the image)."""
    model = build([dict(type='MaskedLM')])
    inputs = solid_batch(model, captions=list(COLOURS))  # the caption is the colour word
    overfit(model, inputs, steps=150)
    matched = mean_loss(model, inputs)
    mismatched = mean_loss(model, rolled(inputs, 'images'))
    assert matched < 0.3 and mismatched > matched + 2.0, (matched, mismatched)


# --------------------------------------------------------------------------------------------
# MaskedImageModeling
# --------------------------------------------------------------------------------------------
def test_block_mask_masks_exactly_count_cells():
    rng = np.random.RandomState(0)
    for height, width, count in [(4, 4, 6), (4, 4, 1), (4, 4, 16), (14, 14, 75), (3, 7, 20)]:
        for _ in range(20):
            mask = block_mask(height, width, count, rng)
            assert mask.shape == (height, width) and mask.dtype == bool
            assert mask.sum() == count
    again = [block_mask(8, 8, 20, np.random.RandomState(5)) for _ in range(2)]
    assert np.array_equal(*again)
    for count in (0, 17):
        with pytest.raises(ValueError, match=r'count must lie in \[1, 16\]'):
            block_mask(4, 4, count, rng)


def adjacent_pairs(mask: np.ndarray) -> int:
    """Pairs of horizontally or vertically neighbouring masked cells."""
    return int((mask[1:] & mask[:-1]).sum() + (mask[:, 1:] & mask[:, :-1]).sum())


def test_block_masks_are_blocks_not_scattered_cells():
    rng = np.random.RandomState(0)
    blocks = [adjacent_pairs(block_mask(14, 14, 75, rng)) for _ in range(200)]
    scattered = []
    for _ in range(200):
        mask = np.zeros(196, dtype=bool)
        mask[rng.permutation(196)[:75]] = True
        scattered.append(adjacent_pairs(mask.reshape(14, 14)))
    # scattered: 364 edges * (75 * 74) / (196 * 195) = 52.8 pairs expected
    assert abs(np.mean(scattered) - 52.8) < 3
    assert np.mean(blocks) > 1.6 * np.mean(scattered), (np.mean(blocks), np.mean(scattered))


def test_mim_masks_at_least_one_patch_and_keeps_at_least_one():
    objective = MaskedImageModeling(mask_ratio=0.4)
    assert objective.mask_count(16) == 6 and objective.mask_count(2) == 1
    assert MaskedImageModeling(mask_ratio=0.01).mask_count(16) == 1
    assert MaskedImageModeling(mask_ratio=0.99).mask_count(16) == 15
    with pytest.raises(ValueError, match='at least 2 image patches'):
        objective.mask_count(1)
    with pytest.raises(ValueError, match=r'mask_ratio must lie in \(0, 1\)'):
        MaskedImageModeling(mask_ratio=1.0)


def test_patch_codes_groups_each_patch_r_by_r_codes():
    codes = torch.arange(64).view(1, 8, 8)
    grouped = patch_codes(codes, 2)
    assert grouped.shape == (1, 16, 4)
    assert grouped[0, 0].tolist() == [0, 1, 8, 9]
    assert grouped[0, 5].tolist() == [18, 19, 26, 27]  # patch row 1, column 1
    assert torch.equal(patch_codes(codes, 1), codes.view(1, 64, 1))


def test_mim_refuses_patches_finer_than_a_code_cell():
    finer = dict(
        type='ResNetImageEmbedder',
        stage_blocks=(1, 1),
        base_planes=8,
        stem_channels=8,
        stem_pool=False,
        stem_stride=1,
    )  # stride 2 px < the tokenizer's 4 px cell
    with pytest.raises(ValueError, match=r'image patches \(2 px.*code cells \(4 px'):
        build([dict(type='MaskedImageModeling')], image_embedder=finer)
    same = dict(finer, stage_blocks=(1, 1, 1))  # stride 4 px: one code per patch
    model = build([dict(type='MaskedImageModeling')], image_embedder=same)
    assert model.objectives[0].ratio == 1 and model.objectives[0].head.out_features == 64
    loss = model.loss(solid_batch(model))['loss_maskedimagemodeling']
    assert torch.isfinite(loss)


def test_mim_codes_of_another_resolution_are_refused():
    model = build([dict(type='MaskedImageModeling')])
    inputs = dict(solid_batch(model), codes=torch.zeros(4, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r'do not cover the 4x4 patch grid at 2x2 codes'):
        model.loss(inputs)


def test_mim_with_blank_pixels_never_sees_the_masked_patches():
    """Eval mode, same masks: changing the masked patches' pixels changes nothing, unless the
    pixels are left in (the embedder's convolutions then leak them into visible tokens)."""
    losses = {}
    for blank in (True, False):
        model = build([dict(type='MaskedImageModeling', blank_pixels=blank)]).eval()
        objective = model.objectives[0]
        with torch.no_grad():  # a head far from its small start, so the states matter
            objective.head.weight.normal_(std=1.0)
        inputs = solid_batch(model)
        inputs['codes'] = torch.randint(0, 64, (4, 8, 8))
        np.random.seed(0)
        masks = objective.draw_masks(4, 4, 4, 'cpu')
        pixels = masks.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, None]
        altered = dict(
            inputs, images=torch.where(pixels, 5 * torch.randn(4, 3, 32, 32), inputs['images'])
        )
        values = []
        with torch.no_grad():
            for batch in (inputs, altered):
                np.random.seed(0)
                values.append(float(objective(model, batch)['loss_maskedimagemodeling']))
        losses[blank] = values
    assert losses[True][0] == losses[True][1]
    assert abs(losses[False][0] - losses[False][1]) > 1e-3, losses


def test_mim_predicts_masked_codes_from_the_visible_patches():
    """Codes = the image's colour (given as inputs['codes']); image only: after overfitting,
    visible patches of another colour make the masked codes clearly harder to predict."""
    model = build([dict(type='MaskedImageModeling', with_caption=False)])
    inputs = solid_batch(model)
    inputs['codes'] = torch.arange(4)[:, None, None].expand(4, 8, 8).contiguous()
    overfit(model, inputs, steps=60)
    matched = mean_loss(model, inputs)
    mismatched = mean_loss(model, rolled(inputs, 'images'))
    assert matched < 0.3 and mismatched > matched + 2.0, (matched, mismatched)


def test_mim_with_caption_reads_the_caption():
    """Grey images, codes given by the colour the caption names: only the caption tells."""
    model = build([dict(type='MaskedImageModeling')])
    inputs = solid_batch(model)
    inputs['images'] = torch.zeros_like(inputs['images'])
    inputs['codes'] = torch.arange(4)[:, None, None].expand(4, 8, 8).contiguous()
    overfit(model, inputs, steps=60)
    matched = mean_loss(model, inputs)
    mismatched = mean_loss(model, rolled(inputs, 'caption'))
    assert matched < 0.3 and mismatched > matched + 2.0, (matched, mismatched)


# --------------------------------------------------------------------------------------------
# A pretraining checkpoint with objective parameters starts a task
# --------------------------------------------------------------------------------------------
def test_a_task_model_loads_a_checkpoint_with_objective_parameters(tmp_path):
    pretraining = build(
        [dict(type='Captioning'), dict(type='MaskedLM'), dict(type='MaskedImageModeling')]
    )
    state = pretraining.state_dict()
    owned = sorted(key for key in state if key.startswith('objectives.'))
    assert owned
    path = tmp_path / 'iter_10.pth'
    save_checkpoint_file({'state_dict': state, 'meta': {'iter': 10}}, path)

    task = build(
        [], seed=1, head=dict(type='SequenceClassificationHead', num_classes=3, text_key='caption')
    )
    report = load_pretrained(task, str(path))
    assert set(owned) <= set(report.dropped)
    assert all(key.startswith(('objectives.', 'image_tokenizer.')) for key in report.dropped)
    assert report.new and all(key.startswith('head.') for key in report.new)
    for key, value in task.state_dict().items():
        if key in state:
            assert torch.equal(value, state[key]), key
