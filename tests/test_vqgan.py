"""The VQGAN plugin: layouts, codes, straight-through training, codebook upkeep, conversion.

The conversion test checks our model against an independent functional restatement of
taming-transformers' VQGAN math (``Reference*`` below, written with torch.nn.functional on
the raw state-dict tensors), fed by a checkpoint laid out like a real taming Lightning
``.ckpt``, including pickled objects that would run code if the converter unpickled them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import types
from collections import OrderedDict
from importlib import metadata

import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import REPO, tool_env
from mmengine.config import Config

try:
    import davinci_zoo_vqgan  # noqa: F401  (installed: pip install -e plugins/vqgan)
except ImportError:  # a checkout where the plugin is not installed: import it from source
    sys.path.insert(0, str(REPO / 'plugins' / 'vqgan'))

from davinci_zoo_vqgan.vqgan import VQGAN

from davinci_zoo.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint_file,
    save_checkpoint_file,
)
from davinci_zoo.registry import IMAGE_TOKENIZERS

CONVERTER = REPO / 'tools' / 'model_converters' / 'taming_vqgan.py'

TINY_F4 = dict(
    type='VQGAN',
    ch=32,
    ch_mult=(1, 2, 2),
    num_res_blocks=1,
    attn_resolutions=(8,),
    z_channels=16,
    embed_dim=16,
    codebook_size=64,
    resolution=32,
    norm_groups=8,
)
TINY_F8 = dict(TINY_F4, ch_mult=(1, 1, 2, 2))


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """The tiny convolutions here gain nothing from threads, and lose a lot on a busy host."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(cfg: dict, **overrides) -> VQGAN:
    return IMAGE_TOKENIZERS.build(dict(cfg, **overrides))


def images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1] (low-frequency noise, upsampled)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, size // 4, size // 4, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode='bilinear', align_corners=False)


# -- layouts ---------------------------------------------------------------------------------
def test_published_f16_layout_has_taming_names_and_size():
    model = build(dict(type='VQGAN')).eval()
    assert model.downsample_factor == 16 and model.codebook_size == 1024
    assert model.code_grid(256, 256) == (16, 16)
    assert sum(p.numel() for p in model.parameters()) == 72_141_699  # taming's f16/1024 VQGAN
    state = model.state_dict()
    assert state['quantize.embedding.weight'].shape == (1024, 256)
    for key in (
        'encoder.down.2.block.0.nin_shortcut.weight',  # 128 -> 256 channels
        'encoder.down.3.downsample.conv.weight',
        'encoder.down.4.attn.1.proj_out.weight',  # attention at resolution 16 only
        'encoder.mid.attn_1.q.weight',
        'decoder.conv_in.weight',
        'decoder.up.4.attn.2.k.weight',
        'decoder.up.1.upsample.conv.weight',
        'decoder.up.0.block.2.conv2.weight',
        'quant_conv.weight',
        'post_quant_conv.bias',
    ):
        assert key in state, key
    assert state['decoder.conv_in.weight'].shape == (512, 256, 3, 3)
    assert not any('.attn.' in key for key in state if key.startswith('encoder.down.3.'))
    assert 'decoder.up.0.upsample.conv.weight' not in state
    assert 'encoder.down.4.downsample.conv.weight' not in state
    assert not any(key.startswith('quantize.') and 'embedding' not in key for key in state)
    codes = model.encode(images(1, 64))
    assert codes.shape == (1, 4, 4) and codes.dtype == torch.int64


@pytest.mark.parametrize('cfg, factor', [(TINY_F4, 4), (TINY_F8, 8)])
def test_tiny_layout_codes_and_images(cfg, factor):
    model = build(cfg).eval()
    assert model.downsample_factor == factor
    batch = images(2, 32)
    codes = model.encode(batch)
    assert codes.shape == (2, 32 // factor, 32 // factor) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < 64
    restored = model.decode(codes)
    assert restored.shape == (2, 3, 32, 32) and not restored.requires_grad
    assert float(restored.min()) >= 0 and float(restored.max()) <= 1
    assert model.encode(images(1, 64)).shape == (1, 64 // factor, 64 // factor)


def test_code_vectors_are_a_copy_of_what_decode_looks_up():
    model = build(TINY_F4).eval()
    vectors = model.code_vectors()
    assert vectors.shape == (64, model.quantize.codebook.shape[1])
    codes = model.encode(images(2, 32))
    latents = vectors[codes].permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = model.to_unit_range(model.decode_from_latents(latents))
    torch.testing.assert_close(model.decode(codes), expected)
    vectors.zero_()  # a copy: the codebook is untouched
    assert model.quantize.codebook.abs().sum() > 0


def test_cell_local_encoder_codes_each_cell_from_its_own_pixels():
    torch.manual_seed(0)
    model = build(TINY_F4, attn_resolutions=(), cell_local_encoder=True).eval()
    assert 'encoder.mid.attn_1.q.weight' not in model.state_dict()
    assert 'decoder.mid.attn_1.q.weight' in model.state_dict()  # the decoder stays taming's
    batch = images(2, 32)
    changed = batch.clone()
    changed[:, :, 8:] = torch.rand_like(changed[:, :, 8:])  # everything below code row 2
    with torch.no_grad():
        before, after = model.encode_to_latents(batch), model.encode_to_latents(changed)
    assert torch.equal(before[:, :, :2], after[:, :, :2])
    assert not torch.allclose(before[:, :, 2:], after[:, :, 2:])
    # a plain cell gets one code wherever it is and whatever surrounds it
    scene = torch.zeros(1, 3, 32, 32)
    scene[:, 0, 4:20, 8:24] = 1.0
    codes = model.encode(scene)[0]
    black = torch.ones(8, 8, dtype=torch.bool)
    black[1:5, 2:6] = False
    assert len(set(codes[black].tolist())) == 1
    # the reference taming encoder does not have this property
    taming = build(TINY_F4, attn_resolutions=()).eval()
    with torch.no_grad():
        latents = taming.encode_to_latents(scene)[0].permute(1, 2, 0)[black]
    assert float((latents - latents[0]).abs().max()) > 1e-3


def test_cell_local_encoder_refuses_attention():
    with pytest.raises(ValueError, match=r'set attn_resolutions=\(\)'):
        build(TINY_F4, cell_local_encoder=True)


def test_sizes_not_divisible_by_the_factor_and_bad_codes_are_refused():
    model = build(TINY_F8)
    with pytest.raises(ValueError, match='multiples of 8'):
        model.encode(torch.rand(1, 3, 36, 32))
    with pytest.raises(ValueError, match=r'\[0, 64\)'):
        model.decode(torch.full((1, 2, 2), 64))
    with pytest.raises(ValueError, match='norm_groups'):
        VQGAN(ch=24, ch_mult=(1, 2), norm_groups=32)


# -- training behaviour ------------------------------------------------------------------------
def test_reconstruction_gradients_pass_straight_through_to_the_encoder():
    torch.manual_seed(0)
    model = build(TINY_F4).train()
    batch = images(2, 32)
    output = model.forward_train(batch, step=0)
    assert output.reconstruction.shape == batch.shape
    assert output.codes.shape == (2, 8, 8)
    F.mse_loss(output.reconstruction, batch).backward(retain_graph=True)
    for name in ('encoder.conv_in.weight', 'quant_conv.weight', 'post_quant_conv.weight'):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.quantize.embedding.weight.grad is None  # only the VQ loss trains the codebook

    loss_vq = output.losses['loss_vq']
    assert torch.isfinite(loss_vq) and loss_vq > 0
    latents = model.encode_to_latents(batch).detach()
    distance = F.mse_loss(latents, model.quantize.lookup(output.codes).detach())
    # 'loss' mode: beta * commitment + codebook term, both equal to the same mean distance.
    torch.testing.assert_close(loss_vq.detach(), (1 + 0.25) * distance)
    loss_vq.backward()
    assert model.quantize.embedding.weight.grad.abs().sum() > 0
    assert set(output.stats) == {'perplexity', 'dead_codes'}


def test_training_reconstruction_is_not_clamped_so_an_overshooting_decoder_still_learns():
    torch.manual_seed(0)
    model = build(TINY_F4).train()
    batch = images(2, 32)
    with torch.no_grad():  # every output pixel far below black: a clamp would stop all gradients
        model.decoder.conv_out.bias.fill_(-5.0)
    output = model.forward_train(batch, step=0)
    # on the [0, 1] scale, not clamped into it
    assert float(output.reconstruction.detach().max()) < 0
    F.l1_loss(output.reconstruction, batch).backward()
    assert float(model.decoder.conv_out.bias.grad.abs().sum()) > 0
    decoded = model.decode(output.codes)  # inference still clamps into [0, 1]
    assert float(decoded.min()) >= 0 and float(decoded.max()) <= 1


def _start_far_from_the_encoder(model: VQGAN) -> None:
    with torch.no_grad():
        weight = model.quantize.embedding.weight
        weight.copy_(50 + torch.randn_like(weight))


def _run_steps(model: VQGAN, batch: torch.Tensor, steps: int):
    return [model.forward_train(batch, step=step) for step in range(steps)]


def test_dead_codes_are_restarted_and_then_used():
    torch.manual_seed(0)
    model = build(TINY_F4, restart_interval=2).train()
    _start_far_from_the_encoder(model)
    batch = images(4, 32)
    first = model.forward_train(batch, step=0)  # no restart at step 0 (interval 2)
    used_before = set(first.codes.unique().tolist())
    assert len(used_before) <= 3 and first.stats['dead_codes'] >= 64 - len(used_before)
    dead_before = model.quantize.dead_codes().nonzero().flatten().tolist()

    second = model.forward_train(batch, step=1)  # ends the interval: restarts
    assert second.stats['dead_codes'] < first.stats['dead_codes'] / 4
    third = model.forward_train(batch, step=2)
    revived_in_use = set(third.codes.unique().tolist()) & set(dead_before)
    assert len(revived_in_use) >= 32
    assert third.stats['perplexity'] > 4 * first.stats['perplexity']


def test_restarts_go_to_the_worst_represented_latents():
    """Dead codes move to latents drawn by quantisation error, never to well-served ones."""
    from davinci_zoo_vqgan.quantizer import VectorQuantizer

    torch.manual_seed(0)
    quantizer = VectorQuantizer(8, 2, dead_code_threshold=1.0)
    quantizer.usage[5:] = 0.0  # codes 5, 6, 7 are dead
    latents = torch.zeros(100, 2)
    latents[[7, 42, 77]] = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    errors = torch.zeros(100)
    errors[[7, 42, 77]] = 1.0  # every other latent sits exactly on its code
    assert quantizer.restart_dead_codes(latents, errors) == 3
    revived = quantizer.codebook[5:].detach()
    distances = torch.cdist(revived, latents[[7, 42, 77]])
    assert distances.min(1).values.max() < 0.5  # each revived code sits on a badly served latent
    assert sorted(distances.argmin(1).tolist()) == [0, 1, 2]  # ... a different one each


def test_dead_codes_stay_dead_without_restarts():
    torch.manual_seed(0)
    model = build(TINY_F4, restart_interval=0).train()
    _start_far_from_the_encoder(model)
    outputs = _run_steps(model, images(4, 32), 4)
    used = set().union(*(set(o.codes.unique().tolist()) for o in outputs))
    assert len(used) <= 3
    assert all(o.stats['dead_codes'] >= 61 for o in outputs[1:])


def test_restarts_repeat_under_the_same_seed():
    def restarted_codebook(seed: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = build(TINY_F4, restart_interval=1).train()
        _start_far_from_the_encoder(model)
        torch.manual_seed(seed)
        model.forward_train(images(2, 32), step=0)
        return model.quantize.embedding.weight.detach().clone()

    torch.testing.assert_close(restarted_codebook(1), restarted_codebook(1), rtol=0, atol=0)
    assert not torch.equal(restarted_codebook(1), restarted_codebook(2))


def test_ema_mode_moves_the_codebook_without_gradients():
    torch.manual_seed(0)
    model = build(TINY_F4, codebook_update='ema', ema_decay=0.5).train()
    assert {'quantize.ema_cluster_size', 'quantize.ema_embed_sum'} <= set(model.state_dict())
    batch = images(2, 32)

    @torch.no_grad()
    def quantisation_error() -> float:
        latents = model.encode_to_latents(batch)
        return float(F.mse_loss(latents, model.quantize.lookup(model.encode(batch))))

    error_before = quantisation_error()
    codebook_before = model.quantize.embedding.weight.detach().clone()
    for step in range(3):
        output = model.forward_train(batch, step=step)
        (output.losses['loss_vq'] + F.mse_loss(output.reconstruction, batch)).backward()
    assert model.quantize.embedding.weight.grad is None
    assert not torch.equal(model.quantize.embedding.weight, codebook_before)
    assert quantisation_error() < 0.5 * error_before
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0
    # Only the commitment term is a loss in EMA mode.
    latents = model.encode_to_latents(batch).detach()
    chosen = model.quantize.lookup(model.quantize.nearest_codes(latents))
    loss_vq = model.forward_train(batch, step=3).losses['loss_vq'].detach()
    torch.testing.assert_close(loss_vq, 0.25 * F.mse_loss(latents, chosen))


# -- checkpoints -------------------------------------------------------------------------------
def test_weights_round_trip_and_mismatches_name_the_keys(tmp_path):
    torch.manual_seed(0)
    source = build(TINY_F4).eval()
    state = source.state_dict()
    good = tmp_path / 'good.safetensors'
    save_checkpoint_file({'state_dict': state}, good)
    loaded = build(TINY_F4, checkpoint=str(good)).eval()
    batch = images(2, 32)
    assert torch.equal(loaded.encode(batch), source.encode(batch))

    missing = dict(state)
    del missing['decoder.conv_out.bias']
    extra = dict(state, **{'loss.discriminator.main.0.weight': torch.zeros(2)})
    cases = {
        'missing': (missing, TINY_F4, 'decoder.conv_out.bias'),
        'extra': (extra, TINY_F4, 'loss.discriminator.main.0.weight'),
        'codebook': (state, dict(TINY_F4, codebook_size=32), 'quantize.embedding.weight'),
        'ema into loss': (build(TINY_F4, codebook_update='ema').state_dict(), TINY_F4, 'ema_'),
    }
    for name, (weights, cfg, key) in cases.items():
        path = tmp_path / f'{name.replace(" ", "_")}.safetensors'
        save_checkpoint_file({'state_dict': weights}, path)
        with pytest.raises(CheckpointMismatchError, match=key):
            build(cfg, checkpoint=str(path))


# -- the taming converter ----------------------------------------------------------------------
DDCONFIG = dict(
    double_z=False,
    z_channels=8,
    resolution=16,
    in_channels=3,
    out_ch=3,
    ch=32,  # taming's GroupNorm has 32 groups: 32 and 64 channels divide
    ch_mult=[1, 2, 2],
    num_res_blocks=1,
    attn_resolutions=[8],
    dropout=0.0,
)
EMBED_DIM, N_EMBED = 8, 32


def taming_yaml(**params_overrides) -> dict:
    params = dict(
        embed_dim=EMBED_DIM,
        n_embed=N_EMBED,
        ddconfig=DDCONFIG,
        lossconfig=dict(
            target='taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator',
            params=dict(disc_start=250001, disc_weight=0.8, codebook_weight=1.0),
        ),
    )
    params.update(params_overrides)
    return dict(
        model=dict(base_learning_rate=4.5e-6, target='taming.models.vqgan.VQModel', params=params)
    )


def taming_shapes(dd: dict, embed_dim: int, n_embed: int) -> dict[str, tuple]:
    """The state-dict names and shapes of taming's VQModel, from its constructor's logic."""
    shapes: dict[str, tuple] = {}

    def conv(name, c_in, c_out, k):
        shapes[f'{name}.weight'] = (c_out, c_in, k, k)
        shapes[f'{name}.bias'] = (c_out,)

    def norm(name, c):
        shapes[f'{name}.weight'] = shapes[f'{name}.bias'] = (c,)

    def resnet(name, c_in, c_out):
        norm(f'{name}.norm1', c_in)
        conv(f'{name}.conv1', c_in, c_out, 3)
        norm(f'{name}.norm2', c_out)
        conv(f'{name}.conv2', c_out, c_out, 3)
        if c_in != c_out:
            conv(f'{name}.nin_shortcut', c_in, c_out, 1)

    def attn(name, c):
        norm(f'{name}.norm', c)
        for part in ('q', 'k', 'v', 'proj_out'):
            conv(f'{name}.{part}', c, c, 1)

    def mid(name, c):
        resnet(f'{name}.block_1', c, c)
        attn(f'{name}.attn_1', c)
        resnet(f'{name}.block_2', c, c)

    ch, mult, levels = dd['ch'], dd['ch_mult'], len(dd['ch_mult'])
    conv('encoder.conv_in', dd['in_channels'], ch, 3)
    res, block_in = dd['resolution'], ch
    in_mult = (1, *mult)
    for i in range(levels):
        block_in, block_out = ch * in_mult[i], ch * mult[i]
        for j in range(dd['num_res_blocks']):
            resnet(f'encoder.down.{i}.block.{j}', block_in, block_out)
            block_in = block_out
            if res in dd['attn_resolutions']:
                attn(f'encoder.down.{i}.attn.{j}', block_in)
        if i != levels - 1:
            conv(f'encoder.down.{i}.downsample.conv', block_in, block_in, 3)
            res //= 2
    mid('encoder.mid', block_in)
    norm('encoder.norm_out', block_in)
    conv('encoder.conv_out', block_in, dd['z_channels'], 3)

    block_in, res = ch * mult[-1], dd['resolution'] // 2 ** (levels - 1)
    conv('decoder.conv_in', dd['z_channels'], block_in, 3)
    mid('decoder.mid', block_in)
    for i in reversed(range(levels)):
        block_out = ch * mult[i]
        for j in range(dd['num_res_blocks'] + 1):
            resnet(f'decoder.up.{i}.block.{j}', block_in, block_out)
            block_in = block_out
            if res in dd['attn_resolutions']:
                attn(f'decoder.up.{i}.attn.{j}', block_in)
        if i != 0:
            conv(f'decoder.up.{i}.upsample.conv', block_in, block_in, 3)
            res *= 2
    norm('decoder.norm_out', block_in)
    conv('decoder.conv_out', block_in, dd['out_ch'], 3)
    conv('quant_conv', dd['z_channels'], embed_dim, 1)
    conv('post_quant_conv', embed_dim, dd['z_channels'], 1)
    shapes['quantize.embedding.weight'] = (n_embed, embed_dim)
    return shapes


def random_taming_weights(seed: int = 0) -> OrderedDict:
    """Taming's VQModel weights at a well-conditioned random point, plus loss.* extras."""
    generator = torch.Generator().manual_seed(seed)
    weights = OrderedDict()
    for name, shape in taming_shapes(DDCONFIG, EMBED_DIM, N_EMBED).items():
        noise = torch.randn(shape, generator=generator)
        if name.endswith('.bias'):
            tensor = 0.05 * noise
        elif len(shape) == 1:  # GroupNorm scale
            tensor = 1 + 0.1 * noise
        elif name == 'quantize.embedding.weight':
            tensor = noise
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            gain = 0.3 if name == 'decoder.conv_out.weight' else 1.0
            tensor = gain * noise / fan_in**0.5
        weights[name] = tensor
    weights['loss.perceptual_loss.net.slice1.0.weight'] = torch.randn(64, 3, 3, 3)
    weights['loss.perceptual_loss.lin0.model.1.weight'] = torch.randn(1, 64, 1, 1)
    weights['loss.discriminator.main.0.weight'] = torch.randn(64, 3, 4, 4)
    weights['loss.discriminator.main.0.bias'] = torch.randn(64)
    return weights


class Reference:
    """taming's VQModel forward, restated with torch.nn.functional on the raw tensors."""

    def __init__(self, weights: dict, dd: dict):
        self.w = {k: v.double() for k, v in weights.items() if not k.startswith('loss.')}
        self.dd = dd

    def conv(self, name, x, stride=1, padding=None):
        weight = self.w[f'{name}.weight']
        pad = weight.shape[-1] // 2 if padding is None else padding
        return F.conv2d(x, weight, self.w[f'{name}.bias'], stride=stride, padding=pad)

    def norm(self, name, x):
        return F.group_norm(x, 32, self.w[f'{name}.weight'], self.w[f'{name}.bias'], eps=1e-6)

    def resnet(self, name, x):
        h = self.conv(f'{name}.conv1', F.silu(self.norm(f'{name}.norm1', x)))
        h = self.conv(f'{name}.conv2', F.silu(self.norm(f'{name}.norm2', h)))
        if f'{name}.nin_shortcut.weight' in self.w:
            x = self.conv(f'{name}.nin_shortcut', x)
        return x + h

    def attn(self, name, x):
        b, c, height, width = x.shape
        h = self.norm(f'{name}.norm', x)
        q = self.conv(f'{name}.q', h).reshape(b, c, -1).permute(0, 2, 1)  # [b, hw, c]
        k = self.conv(f'{name}.k', h).reshape(b, c, -1)  # [b, c, hw]
        v = self.conv(f'{name}.v', h).reshape(b, c, -1)
        weights = torch.softmax(torch.bmm(q, k) * c**-0.5, dim=2)  # [b, hw_q, hw_k]
        h = torch.bmm(v, weights.permute(0, 2, 1)).reshape(b, c, height, width)
        return x + self.conv(f'{name}.proj_out', h)

    def blocks(self, prefix, x, count):
        for j in range(count):
            x = self.resnet(f'{prefix}.block.{j}', x)
            if f'{prefix}.attn.{j}.q.weight' in self.w:
                x = self.attn(f'{prefix}.attn.{j}', x)
        return x

    def mid(self, prefix, x):
        x = self.resnet(f'{prefix}.block_1', x)
        return self.resnet(f'{prefix}.block_2', self.attn(f'{prefix}.attn_1', x))

    def encode(self, images):
        levels = len(self.dd['ch_mult'])
        h = self.conv('encoder.conv_in', images.double() * 2 - 1)
        for i in range(levels):
            h = self.blocks(f'encoder.down.{i}', h, self.dd['num_res_blocks'])
            if i != levels - 1:
                h = self.conv(f'encoder.down.{i}.downsample.conv', F.pad(h, (0, 1, 0, 1)), 2, 0)
        h = self.mid('encoder.mid', h)
        h = self.conv('encoder.conv_out', F.silu(self.norm('encoder.norm_out', h)))
        z = self.conv('quant_conv', h)
        b, d, height, width = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        distances = torch.cdist(flat, self.w['quantize.embedding.weight'])  # [N, K]
        return distances.argmin(1).reshape(b, height, width), distances

    def decode(self, codes):
        levels = len(self.dd['ch_mult'])
        z = self.w['quantize.embedding.weight'][codes].permute(0, 3, 1, 2)
        h = self.conv('decoder.conv_in', self.conv('post_quant_conv', z))
        h = self.mid('decoder.mid', h)
        for i in reversed(range(levels)):
            h = self.blocks(f'decoder.up.{i}', h, self.dd['num_res_blocks'] + 1)
            if i != 0:
                h = F.interpolate(h, scale_factor=2.0, mode='nearest')
                h = self.conv(f'decoder.up.{i}.upsample.conv', h)
        h = self.conv('decoder.conv_out', F.silu(self.norm('decoder.norm_out', h)))
        return (h.clamp(-1, 1) + 1) / 2


ARMED_MODULE = '''
"""Stands in for Lightning; unpickling its objects with a plain unpickler runs code."""


def leave_mark(path):
    with open(path, 'w') as stream:
        stream.write('code from the checkpoint ran')
    return path


class ModelCheckpoint:
    def __init__(self, dirpath):
        self.dirpath = dirpath
        self.best_model_score = 0.25


class Trap:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (leave_mark, (self.path,))


class AttributeDict(dict):
    pass
'''
ARMED_NAME = 'pytorch_lightning.callbacks.model_checkpoint'


def write_armed_package(root) -> None:
    """Write the fake Lightning package under ``root`` (importable with root on the path)."""
    package = root / 'pytorch_lightning'
    (package / 'callbacks').mkdir(parents=True)
    (package / '__init__.py').write_text('')
    (package / 'callbacks' / '__init__.py').write_text('')
    (package / 'callbacks' / 'model_checkpoint.py').write_text(ARMED_MODULE)


@contextlib.contextmanager
def fake_lightning_importable():
    """Put the fake Lightning modules in sys.modules for the block; yields the armed one."""
    names = ['pytorch_lightning', 'pytorch_lightning.callbacks', ARMED_NAME]
    saved = {name: sys.modules.get(name) for name in names}
    modules = {name: types.ModuleType(name) for name in names}
    exec(ARMED_MODULE, modules[ARMED_NAME].__dict__)
    sys.modules.update(modules)
    try:
        yield modules[ARMED_NAME]
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def save_lightning_checkpoint(path, state_dict, canary) -> None:
    """torch.save a dict laid out like a taming Lightning .ckpt, with armed pickled objects."""
    with fake_lightning_importable() as lightning:
        checkpoint = {
            'epoch': 3,
            'global_step': 1234,
            'pytorch-lightning_version': '1.0.8',
            'state_dict': state_dict,
            'callbacks': {lightning.ModelCheckpoint: lightning.ModelCheckpoint('/logs/ckpts')},
            'optimizer_states': [
                {'state': {0: {'exp_avg': torch.zeros(3)}}, 'param_groups': [{'lr': 4.5e-6}]}
            ],
            'lr_schedulers': [],
            'hyper_parameters': lightning.AttributeDict(
                ddconfig=DDCONFIG, trap=lightning.Trap(str(canary))
            ),
        }
        torch.save(checkpoint, path)
    assert ARMED_NAME not in sys.modules


@pytest.fixture(scope='module')
def taming_files(tmp_path_factory):
    """A taming .ckpt + YAML pair, the armed package's root and the canary it would write."""
    root = tmp_path_factory.mktemp('taming')
    armed = root / 'armed'
    write_armed_package(armed)
    canary = root / 'canary'
    weights = random_taming_weights()
    ckpt = root / 'last.ckpt'
    save_lightning_checkpoint(ckpt, weights, canary)
    config = root / 'model.yaml'
    config.write_text(yaml.safe_dump(taming_yaml()))
    return dict(root=root, armed=armed, canary=canary, ckpt=ckpt, yaml=config, weights=weights)


def run_converter(*args, pythonpath: str = '') -> subprocess.CompletedProcess:
    env = tool_env()
    env['PYTHONPATH'] = f'{pythonpath}:{env["PYTHONPATH"]}' if pythonpath else env['PYTHONPATH']
    return subprocess.run(
        [sys.executable, str(CONVERTER), *map(str, args)],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.subprocess
def test_converted_taming_checkpoint_matches_taming_math(taming_files, tmp_path):
    files = taming_files
    # The fixture is armed: a plain unpickler, with the fake Lightning importable, runs code.
    with fake_lightning_importable():
        torch.load(files['ckpt'], weights_only=False)
    assert files['canary'].exists()
    files['canary'].unlink()

    out_dir = tmp_path / 'converted'
    result = run_converter(files['ckpt'], files['yaml'], out_dir, pythonpath=str(files['armed']))
    assert result.returncode == 0, result.stderr
    assert not files['canary'].exists(), 'the converter ran code from the checkpoint'
    assert 'TRUSTED INPUT' in result.stdout
    assert 'dropped 2 key(s) under loss.perceptual_loss' in result.stdout
    assert 'dropped 2 key(s) under loss.discriminator' in result.stdout

    converted = load_checkpoint_file(out_dir / 'vqgan.safetensors')
    assert set(converted['state_dict']) == {
        k for k in files['weights'] if not k.startswith('loss.')
    }
    assert converted['meta']['config']['codebook_size'] == N_EMBED
    cfg = Config.fromfile(str(out_dir / 'vqgan_config.py'))
    assert cfg.image_tokenizer.checkpoint == str(out_dir / 'vqgan.safetensors')
    model = IMAGE_TOKENIZERS.build(cfg.image_tokenizer).eval()
    assert model.downsample_factor == 4 and model.codebook_size == N_EMBED

    reference = Reference(files['weights'], DDCONFIG)
    batch = images(2, 16, seed=3)
    expected_codes, distances = reference.encode(batch)
    nearest_two = distances.topk(2, dim=1, largest=False).values
    assert float((nearest_two[:, 1] - nearest_two[:, 0]).min()) > 1e-4  # no near-ties
    assert len(expected_codes.unique()) >= 4  # the comparison covers several codes
    assert torch.equal(model.encode(batch), expected_codes)

    codes = torch.randint(N_EMBED, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    expected_images = reference.decode(codes).float()
    inside = ((expected_images > 0.01) & (expected_images < 0.99)).float().mean()
    assert inside > 0.5  # mostly unclamped, so the comparison is not trivially 0 vs 0
    torch.testing.assert_close(model.decode(codes), expected_images, rtol=1e-5, atol=1e-5)


@pytest.mark.subprocess
def test_converter_error_is_one_line_with_status_2(tmp_path):
    result = run_converter(tmp_path / 'absent.ckpt', tmp_path / 'absent.yaml', tmp_path / 'out')
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'absent' in lines[0]
    assert not (tmp_path / 'out').exists()


@pytest.fixture(scope='module')
def converter_main():
    spec = importlib.util.spec_from_file_location('taming_vqgan_tool', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def convert_in_process(converter_main, capsys, *args) -> tuple[int, str]:
    from davinci_zoo.cli import run_tool

    with pytest.raises(SystemExit) as stop:
        run_tool(converter_main.main, [str(a) for a in args])
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1, error
    return stop.value.code, error[0]


def test_converter_refuses_what_is_not_a_taming_vqgan(
    taming_files, converter_main, capsys, tmp_path
):
    files = taming_files
    no_codebook_size = tmp_path / 'no_n_embed.yaml'
    params = taming_yaml()['model']['params']
    del params['n_embed']
    no_codebook_size.write_text(yaml.safe_dump(dict(model=dict(params=params))))
    no_state_dict = tmp_path / 'no_state_dict.ckpt'
    torch.save({'epoch': 1, 'global_step': 5}, no_state_dict)
    missing_key = tmp_path / 'missing_key.ckpt'
    weights = OrderedDict(files['weights'])
    del weights['decoder.up.1.upsample.conv.weight']
    torch.save({'state_dict': weights}, missing_key)
    wrong_size = tmp_path / 'n_embed_64.yaml'
    wrong_size.write_text(yaml.safe_dump(taming_yaml(n_embed=64)))
    cases = [
        (files['ckpt'], no_codebook_size, 'model.params.n_embed'),
        (no_state_dict, files['yaml'], 'no state_dict'),
        (missing_key, files['yaml'], 'decoder.up.1.upsample.conv.weight'),
        (files['ckpt'], wrong_size, 'quantize.embedding.weight'),
    ]
    for ckpt, config, expected in cases:
        status, message = convert_in_process(converter_main, capsys, ckpt, config, tmp_path / 'o')
        assert status == 2 and message.startswith('error: ') and expected in message, message
    assert not (tmp_path / 'o').exists()


def test_converter_reads_davinci_checkpoints(taming_files, converter_main, tmp_path):
    weights = taming_files['weights']
    davinci = {f'd_vae.model.{k}': v for k, v in weights.items() if not k.startswith('loss.')}
    davinci['visual_encoder.cls_token'] = torch.zeros(1, 1, 4)
    ckpt = tmp_path / 'davinci.pth'
    torch.save({'model': davinci, 'epoch': 9}, ckpt)
    converter_main.main([str(ckpt), str(taming_files['yaml']), str(tmp_path / 'out')])
    converted = load_checkpoint_file(tmp_path / 'out' / 'vqgan.safetensors')['state_dict']
    assert converted.keys() == {k for k in weights if not k.startswith('loss.')}
    assert torch.equal(converted['quantize.embedding.weight'], weights['quantize.embedding.weight'])


def test_plugin_entry_point_provides_vqgan():
    try:
        distribution = metadata.distribution('davinci-zoo-vqgan')
    except metadata.PackageNotFoundError:
        pytest.skip('davinci-zoo-vqgan is not installed (pip install -e plugins/vqgan)')
    entry_points = [ep for ep in distribution.entry_points if ep.group == 'davinci_zoo.plugins']
    assert [(ep.name, ep.value) for ep in entry_points] == [('vqgan', 'davinci_zoo_vqgan.plugin')]
    import davinci_zoo

    (row,) = davinci_zoo.list_components('image tokenizer', 'VQGAN')
    assert (row.provider, row.version) == ('davinci-zoo-vqgan', '0.1.0')
