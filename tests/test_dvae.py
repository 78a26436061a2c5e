"""The DALL-E dVAE plugin (plugins/dvae) and OpenAI's encoder.pkl/decoder.pkl converter.

The converter tests compare against OpenAI's own ``dall_e`` package (``pip install --no-deps
dall-e==0.1``) built at tiny sizes; they are skipped when it is not installed.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from importlib import metadata

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, run_tool

from davinci_zoo import cli
from davinci_zoo.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint_file,
    save_checkpoint_file,
)
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import IMAGE_TOKENIZERS

if importlib.util.find_spec('davinci_zoo_dvae') is None:  # not pip-installed: the checkout's
    sys.path.insert(0, str(REPO / 'plugins' / 'dvae'))
    import davinci_zoo_dvae.plugin  # noqa: F401  (registers DVAE without the entry point)

from davinci_zoo_dvae.dvae import DVAE  # noqa: E402
from davinci_zoo_dvae.relaxation import (  # noqa: E402
    CodeUsage,
    gumbel_softmax_codes,
    kl_to_uniform,
    perplexity,
)
from davinci_zoo_dvae.schedules import build_schedule  # noqa: E402

CONVERTER = REPO / 'tools' / 'model_converters' / 'openai_dvae.py'
PUBLISHED_PARAMETERS = 97_616_006  # dall_e's Encoder() + Decoder(): 53,786,240 + 43,829,766
TINY = dict(codebook_size=64, n_hid=16, n_blk_per_group=1, group_count=2, n_init=16)


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_dvae(**overrides) -> DVAE:
    return DVAE(**{**TINY, **overrides})


def colour_blocks(count: int, size: int = 16, cell: int = 4, generator=None) -> torch.Tensor:
    """[count, 3, size, size] images of cell x cell squares, each one of the 8 RGB-cube corners."""
    corners = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)]).float()
    grid = size // cell
    choice = torch.randint(0, 8, (count, grid, grid), generator=generator)
    colours = corners[choice].permute(0, 3, 1, 2)
    return colours.repeat_interleave(cell, 2).repeat_interleave(cell, 3)


# -- building ----------------------------------------------------------------------------------
def test_plugin_distribution_declares_the_entry_point():
    try:
        distribution = metadata.distribution('davinci-zoo-dvae')
    except metadata.PackageNotFoundError:
        pytest.skip('davinci-zoo-dvae is not installed (pip install -e plugins/dvae)')
    points = {ep.name: ep.value for ep in distribution.entry_points}
    assert points == {'dvae': 'davinci_zoo_dvae.plugin'}
    assert distribution.version == '0.1.0'
    assert IMAGE_TOKENIZERS.build(dict(type='DVAE', **TINY)).codebook_size == 64
    assert str(IMAGE_TOKENIZERS.providers['DVAE']) == 'davinci-zoo-dvae 0.1.0'


def test_published_layout_builds_from_its_type_name():
    with torch.device('meta'):  # shapes only: no 400 MB of random weights
        tokenizer = IMAGE_TOKENIZERS.build(dict(type='DVAE'))
    assert isinstance(tokenizer, DVAE)
    assert (tokenizer.codebook_size, tokenizer.downsample_factor) == (8192, 8)
    assert tokenizer.code_grid(256, 256) == (32, 32)
    assert sum(p.numel() for p in tokenizer.parameters()) == PUBLISHED_PARAMETERS
    assert tokenizer.encoder.blocks.output.conv.w.shape == (8192, 2048, 1, 1)
    assert tokenizer.decoder.blocks.input.w.shape == (128, 8192, 1, 1)


@pytest.mark.parametrize(
    'layout, grid',
    [
        (dict(codebook_size=64, n_hid=16, n_blk_per_group=1, group_count=2, n_init=16), 32),
        (dict(codebook_size=512, n_hid=16, n_blk_per_group=1, group_count=3, n_init=32), 16),
    ],
)
def test_tiny_layouts_encode_and_decode_64px(layout, grid):
    tokenizer = IMAGE_TOKENIZERS.build(dict(type='DVAE', **layout)).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        codes = tokenizer.encode(images)
        restored = tokenizer.decode(codes)
    assert tokenizer.code_grid(64, 64) == (grid, grid)
    assert codes.shape == (2, grid, grid) and codes.dtype == torch.int64
    assert codes.min() >= 0 and codes.max() < layout['codebook_size']
    assert restored.shape == (2, 3, 64, 64)
    assert restored.min() >= 0 and restored.max() <= 1
    # codes are argmax of the encoder logits; decode is the one-hot path of the decoder
    with torch.no_grad():
        assert torch.equal(codes, tokenizer.logits(images).argmax(1))
        one_hot = F.one_hot(codes, layout['codebook_size']).permute(0, 3, 1, 2).float()
        expected = ((torch.sigmoid(tokenizer.decoder(one_hot)[:, :3]) - 0.1) / 0.8).clamp(0, 1)
    torch.testing.assert_close(restored, expected, atol=1e-5, rtol=0)


def test_code_vectors_are_the_decoder_input_columns():
    tokenizer = tiny_dvae().eval()
    vectors = tokenizer.code_vectors()
    codes = torch.randint(0, tokenizer.codebook_size, (2, 4, 4))
    one_hot = F.one_hot(codes, tokenizer.codebook_size).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        through_conv = tokenizer.decoder.blocks.input(one_hot)
    bias = tokenizer.decoder.blocks.input.b[:, None, None]
    torch.testing.assert_close(vectors[codes].permute(0, 3, 1, 2) + bias, through_conv)


def test_bad_inputs_raise_value_error():
    tokenizer = tiny_dvae()
    with pytest.raises(ValueError, match='multiples of 2 pixels; got 63x64'):
        tokenizer.encode(torch.rand(1, 3, 63, 64))
    with pytest.raises(ValueError, match=r'\[B, 3, H, W\]'):
        tokenizer.encode(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match='multiples of 2'):
        tokenizer.forward_train(torch.rand(1, 3, 15, 16))
    with pytest.raises(ValueError, match=r'codes must lie in \[0, 64\)'):
        tokenizer.decode(torch.full((1, 4, 4), 64))
    with pytest.raises(ValueError, match='integer codes'):
        tokenizer.decode(torch.zeros(1, 4, 4))
    with pytest.raises(ComponentArgumentError, match='multiple of 4'):
        DVAE(n_hid=18)
    with pytest.raises(ComponentArgumentError, match='codebook_size must be at least 2'):
        DVAE(codebook_size=1)
    with pytest.raises(ComponentArgumentError, match='usage decay must be in'):
        DVAE(usage_decay=1.0)


def test_readme_configs_build():
    readme = (REPO / 'plugins' / 'dvae' / 'README.md').read_text()
    blocks = dict(re.findall(r'<!-- dvae-config: (\S+) -->\n```python\n(.*?)```', readme, re.S))
    assert set(blocks) == {'published', 'tiny'}
    grids = {}
    for name, text in blocks.items():
        namespace = {}
        exec(text, namespace)
        config = dict(namespace['image_tokenizer'])
        config.pop('checkpoint', None)
        with torch.device('meta'):
            tokenizer = IMAGE_TOKENIZERS.build(config)
        grids[name] = (tokenizer.codebook_size, tokenizer.code_grid(256, 256))
    assert grids == {'published': (8192, (32, 32)), 'tiny': (512, (64, 64))}


# -- training ----------------------------------------------------------------------------------
def test_forward_train_gradients_reach_every_parameter():
    torch.manual_seed(0)
    tokenizer = tiny_dvae(kl_weight=1.0)
    images = torch.rand(2, 3, 16, 16)
    output = tokenizer.forward_train(images, step=0)
    assert output.reconstruction.shape == images.shape
    assert output.reconstruction.requires_grad
    assert output.reconstruction.min() >= 0 and output.reconstruction.max() <= 1
    assert output.codes.shape == (2, 8, 8) and output.codes.dtype == torch.int64
    assert set(output.losses) == {'loss_kl'}
    assert set(output.stats) == {'temperature', 'kl_weight', 'perplexity', 'dead_codes'}
    loss = (output.reconstruction - torch.rand_like(images)).abs().mean()
    (loss + output.losses['loss_kl']).backward()
    no_gradient = [
        name
        for name, parameter in tokenizer.named_parameters()
        if parameter.grad is None or not parameter.grad.abs().sum() > 0
    ]
    assert no_gradient == []


def test_reconstruction_gradient_reaches_the_encoder_through_the_gumbel_codes():
    torch.manual_seed(0)
    tokenizer = tiny_dvae(kl_weight=0.0)
    output = tokenizer.forward_train(torch.rand(2, 3, 16, 16))
    output.reconstruction.mean().backward()  # no KL term: only the relaxation links them
    assert tokenizer.encoder.blocks.input.w.grad.abs().sum() > 0


def test_temperature_anneals_and_kl_weight_warms_up_with_step():
    tokenizer = tiny_dvae(
        temperature=dict(type='exponential', start=1.0, end=1 / 16, steps=100),
        kl_weight=dict(type='linear', start=0.0, end=0.5, steps=10),
    )
    images = torch.rand(1, 3, 8, 8)
    stats = {step: tokenizer.forward_train(images, step).stats for step in (0, 5, 50, 100, 500)}
    temperatures = [stats[step]['temperature'] for step in (0, 5, 50, 100, 500)]
    assert temperatures[0] == 1.0
    assert temperatures[0] > temperatures[1] > temperatures[2] > temperatures[3]
    assert temperatures[2] == pytest.approx(0.25)  # halfway on the exponential curve
    assert temperatures[3] == temperatures[4] == pytest.approx(1 / 16)
    weights = [stats[step]['kl_weight'] for step in (0, 5, 50)]
    assert weights == [0.0, pytest.approx(0.25), 0.5]
    assert tokenizer.forward_train(images, 0).losses['loss_kl'] == 0


def test_schedules():
    cosine = build_schedule(dict(type='cosine', start=1.0, end=0.0, steps=10))
    assert [cosine(s) for s in (0, 5, 10, 20)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert build_schedule(0.3)(12345) == 0.3
    with pytest.raises(ComponentArgumentError, match='unknown schedule type'):
        build_schedule(dict(type='step', start=1.0, end=0.0, steps=10))
    with pytest.raises(ComponentArgumentError, match='positive'):
        build_schedule(dict(type='exponential', start=1.0, end=0.0, steps=10))


def test_lower_temperature_gives_sharper_codes():
    torch.manual_seed(0)
    logits = torch.randn(4, 64, 8, 8)
    sharpness = {
        tau: float(gumbel_softmax_codes(logits, tau).max(dim=1).values.mean())
        for tau in (1, 1 / 16)
    }
    assert sharpness[1 / 16] > 0.9 > sharpness[1]
    torch.testing.assert_close(gumbel_softmax_codes(logits, 0.5).sum(1), torch.ones(4, 8, 8))


def test_kl_to_uniform():
    assert kl_to_uniform(torch.zeros(2, 64, 4, 4)) == 0
    assert kl_to_uniform(torch.full((2, 64, 4, 4), 3.0)) == 0
    random = kl_to_uniform(torch.randn(2, 64, 4, 4))
    assert 0 < random < math.log(64)
    peaked = torch.zeros(2, 64, 4, 4)
    peaked[:, 5] = 100
    assert kl_to_uniform(peaked) == pytest.approx(math.log(64), abs=1e-4)


def test_forward_train_kl_is_zero_for_uniform_logits():
    tokenizer = tiny_dvae(kl_weight=1.0)
    with torch.no_grad():
        tokenizer.encoder.blocks.output.conv.w.zero_()
        tokenizer.encoder.blocks.output.conv.b.fill_(0.7)
    assert tokenizer.forward_train(torch.rand(2, 3, 8, 8)).losses['loss_kl'] == 0
    with torch.no_grad():
        tokenizer.encoder.blocks.output.conv.w.normal_()
    assert tokenizer.forward_train(torch.rand(2, 3, 8, 8)).losses['loss_kl'] > 0


def test_perplexity_and_dead_codes():
    assert perplexity(torch.tensor([5.0, 5.0, 5.0, 5.0])) == pytest.approx(4)
    assert perplexity(torch.tensor([7.0, 0.0, 0.0, 0.0])) == pytest.approx(1)
    usage = CodeUsage(4, decay=0.5, dead_threshold=0.01)
    assert usage.dead_codes() == 0
    for _ in range(10):
        usage.update(torch.tensor([3.0, 1.0, 0.0, 0.0]))
    assert usage.dead_codes() == 2
    tokenizer = tiny_dvae(usage_decay=0.5)
    for _ in range(12):
        stats = tokenizer.forward_train(torch.rand(1, 3, 4, 4)).stats  # 4 positions a batch
    assert 60 <= stats['dead_codes'] <= 64 - 1
    assert 'usage.share' not in tokenizer.state_dict()  # not part of checkpoints


def test_short_training_run_lowers_the_reconstruction_error():
    """100+ gumbel-softmax steps on colour blocks: the hard codes come to carry the colours."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    tokenizer = tiny_dvae(
        temperature=dict(type='exponential', start=1.0, end=1 / 16, steps=100), kl_weight=1e-3
    )
    optimizer = torch.optim.Adam(tokenizer.parameters(), lr=1e-2)
    held_out = colour_blocks(32, generator=generator)

    def hard_code_error() -> float:
        with torch.no_grad():
            return float(((tokenizer.decode(tokenizer.encode(held_out)) - held_out) ** 2).mean())

    before = hard_code_error()
    for step in range(120):
        images = colour_blocks(16, generator=generator)
        output = tokenizer.forward_train(images, step)
        loss = ((output.reconstruction - images) ** 2).mean() + output.losses['loss_kl']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = hard_code_error()
    assert before > 0.2  # about the variance of the colours: nothing learnt yet
    assert after < 0.4 * before
    assert output.stats['perplexity'] > 3  # several codes in use, not a collapsed codebook


# -- checkpoints -------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_mismatches(tmp_path):
    source = tiny_dvae().eval()
    state_dict = source.state_dict()
    good = tmp_path / 'good.safetensors'
    save_checkpoint_file({'state_dict': state_dict}, good)
    loaded = tiny_dvae(checkpoint=str(good)).eval()
    codes = torch.randint(0, 64, (1, 4, 4))
    with torch.no_grad():
        assert torch.equal(loaded.decode(codes), source.decode(codes))

    missing = tmp_path / 'missing.safetensors'
    save_checkpoint_file(
        {'state_dict': {k: v for k, v in state_dict.items() if k != 'decoder.blocks.input.b'}},
        missing,
    )
    with pytest.raises(
        CheckpointMismatchError, match=r'missing keys \(1\): decoder.blocks.input.b'
    ):
        tiny_dvae(checkpoint=str(missing))

    extra = tmp_path / 'extra.safetensors'
    save_checkpoint_file({'state_dict': {**state_dict, 'encoder.extra.w': torch.zeros(1)}}, extra)
    with pytest.raises(CheckpointMismatchError, match=r'unexpected keys \(1\): encoder.extra.w'):
        tiny_dvae().load_weights(extra)

    with pytest.raises(CheckpointMismatchError) as error:
        tiny_dvae(codebook_size=128).load_weights(good)
    assert 'encoder.blocks.output.conv.w (64, 32, 1, 1) vs (128, 32, 1, 1)' in str(error.value)
    assert 'decoder.blocks.input.w (16, 64, 1, 1) vs (16, 128, 1, 1)' in str(error.value)


# -- the OpenAI converter ----------------------------------------------------------------------
try:
    import attr
    import dall_e
except ImportError:
    attr = dall_e = None
needs_dall_e = pytest.mark.skipif(
    dall_e is None, reason="OpenAI's dall_e is not installed: pip install --no-deps dall-e==0.1"
)

# dall_e's Encoder/Decoder always have 4 groups (f8); its validators ask for n_hid >= 64 and
# vocab_size >= 512, which are switched off to keep these copies tiny.
DALL_E_LAYOUT = dict(codebook_size=64, n_hid=16, n_blk_per_group=1, group_count=4, n_init=8)
DALL_E_RUNS_CODE_GUARD = """
import runpy, sys

class BlockDallE:
    attempts = []
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'dall_e':
            self.attempts.append(name)
            raise ImportError('dall_e is blocked in this test')
        return None

guard = BlockDallE()
sys.meta_path.insert(0, guard)
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name='__main__')
finally:
    print('DALL_E_IMPORTS', guard.attempts, 'dall_e' in sys.modules)
"""


class WritesAFile:
    """Unpickling this with plain pickle writes ``path``: a stand-in for hostile code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f'open({self.path!r}, "w").write("ran")',))


def dall_e_modules(codebook_size=64, n_hid=16, n_blk_per_group=1, n_init=8):
    torch.manual_seed(0)
    with attr.validators.disabled():
        encoder = dall_e.Encoder(
            n_hid=n_hid, n_blk_per_group=n_blk_per_group, vocab_size=codebook_size
        )
        decoder = dall_e.Decoder(
            n_init=n_init, n_hid=n_hid, n_blk_per_group=n_blk_per_group, vocab_size=codebook_size
        )
    with torch.no_grad():  # dall_e starts biases at zero; make them count in the comparison
        for module in (encoder, decoder):
            for name, parameter in module.named_parameters():
                if name.endswith('.b'):
                    parameter.normal_(std=0.1)
    return encoder.eval(), decoder.eval()


def load_converter():
    spec = importlib.util.spec_from_file_location('openai_dvae', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """OpenAI-style pkl files (the encoder carrying a code-running object), converted by the CLI."""
    root = tmp_path_factory.mktemp('openai_dvae')
    encoder, decoder = dall_e_modules()
    marker = root / 'payload_ran.txt'
    encoder.payload = WritesAFile(marker)  # pickled into the module's __dict__
    torch.save(encoder, root / 'encoder.pkl')
    torch.save(decoder, root / 'decoder.pkl')
    del encoder.payload
    result = run_tool(
        '-c',
        DALL_E_RUNS_CODE_GUARD,
        str(CONVERTER),
        str(root / 'encoder.pkl'),
        str(root / 'decoder.pkl'),
        str(root / 'out'),
        timeout=240,
    )
    return dict(
        root=root, marker=marker, result=result, encoder=encoder, decoder=decoder, out=root / 'out'
    )


@pytest.mark.subprocess
@needs_dall_e
def test_converter_writes_checkpoint_and_config(converted):
    result = converted['result']
    assert result.returncode == 0, result.stderr
    assert 'TRUSTED INPUT' in result.stdout and 'restricted unpickler' in result.stdout
    meta = load_checkpoint_file(converted['out'] / 'dvae.safetensors')['meta']
    assert meta['config'] == dict(type='DVAE', input_channels=3, **DALL_E_LAYOUT)
    namespace = {}
    exec((converted['out'] / 'dvae_config.py').read_text(), namespace)
    assert namespace['image_tokenizer'] == dict(
        type='DVAE',
        input_channels=3,
        checkpoint=str(converted['out'] / 'dvae.safetensors'),
        **DALL_E_LAYOUT,
    )


@pytest.mark.subprocess
@needs_dall_e
def test_converter_never_imports_dall_e_nor_runs_pickled_code(converted):
    result = converted['result']
    assert 'DALL_E_IMPORTS [] False' in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    assert not converted['marker'].exists()
    # the payload is live: a plain unpickling of the same file runs it
    torch.load(converted['root'] / 'encoder.pkl', weights_only=False)
    assert converted['marker'].read_text() == 'ran'
    converted['marker'].unlink()


@pytest.mark.subprocess
@needs_dall_e
def test_converted_dvae_matches_dall_e(converted):
    assert converted['result'].returncode == 0, converted['result'].stderr
    namespace = {}
    exec((converted['out'] / 'dvae_config.py').read_text(), namespace)
    tokenizer = IMAGE_TOKENIZERS.build(namespace['image_tokenizer']).eval()
    encoder, decoder = converted['encoder'], converted['decoder']
    generator = torch.Generator().manual_seed(0)
    images = torch.cat([colour_blocks(2, 32, 8, generator), colour_blocks(2, 32, 8, generator)], 3)
    with torch.no_grad():
        their_logits = encoder(dall_e.map_pixels(images))
        torch.testing.assert_close(tokenizer.logits(images), their_logits, atol=1e-5, rtol=0)
        codes = tokenizer.encode(images)
        assert torch.equal(codes, their_logits.argmax(1))
        assert codes.unique().numel() > 1  # not one constant code

        for grid in (codes, torch.randint(0, 64, (2, 4, 8), generator=generator)):
            one_hot = F.one_hot(grid, 64).permute(0, 3, 1, 2).float()
            theirs = dall_e.unmap_pixels(torch.sigmoid(decoder(one_hot)[:, :3]))
            torch.testing.assert_close(tokenizer.decode(grid), theirs, atol=1e-5, rtol=0)
        soft = torch.softmax(torch.randn(2, 64, 4, 8), dim=1)  # the training path
        torch.testing.assert_close(tokenizer.decoder(soft), decoder(soft), atol=1e-5, rtol=0)


@needs_dall_e
def test_state_dict_layout_equals_dall_e():
    encoder, decoder = dall_e_modules(n_blk_per_group=2)
    tokenizer = DVAE(**{**DALL_E_LAYOUT, 'n_blk_per_group': 2})

    def shapes(state_dict):
        return [(key, tuple(value.shape)) for key, value in state_dict.items()]

    assert shapes(tokenizer.encoder.state_dict()) == shapes(encoder.state_dict())
    assert shapes(tokenizer.decoder.state_dict()) == shapes(decoder.state_dict())
    assert shapes(tokenizer.state_dict()) == [
        (f'{role}.{key}', shape)
        for role, module in (('encoder', encoder), ('decoder', decoder))
        for key, shape in shapes(module.state_dict())
    ]


@needs_dall_e
def test_published_state_dict_layout_equals_dall_e():
    meta = torch.device('meta')
    encoder, decoder = dall_e.Encoder(device=meta), dall_e.Decoder(device=meta)
    with meta:
        tokenizer = DVAE()
    theirs = {f'encoder.{k}': v.shape for k, v in encoder.state_dict().items()}
    theirs.update({f'decoder.{k}': v.shape for k, v in decoder.state_dict().items()})
    assert {k: v.shape for k, v in tokenizer.state_dict().items()} == theirs


def convert_in_process(capsys, *argv):
    """Run the converter's main like its CLI; (exit status, stderr lines)."""
    converter = load_converter()
    try:
        cli.run_tool(converter.main, [str(arg) for arg in argv])
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err.strip().splitlines()


@needs_dall_e
def test_converter_user_errors(tmp_path, capsys):
    encoder, decoder = dall_e_modules()
    torch.save(encoder, tmp_path / 'encoder.pkl')
    torch.save(decoder, tmp_path / 'decoder.pkl')
    _, other_decoder = dall_e_modules(codebook_size=128)
    torch.save(other_decoder, tmp_path / 'decoder128.pkl')
    (tmp_path / 'garbage.pkl').write_bytes(b'not a pickle' * 10)
    marker = tmp_path / 'ran.txt'
    torch.save(WritesAFile(marker), tmp_path / 'hostile.pkl')
    encoder.n_hid = 32  # an attrs field that disagrees with the tensors
    torch.save(encoder, tmp_path / 'lying_encoder.pkl')
    out = tmp_path / 'out'

    cases = {
        ('decoder.pkl', 'encoder.pkl'): 'pass the encoder file first',
        ('missing.pkl', 'decoder.pkl'): 'encoder file .* does not exist',
        ('encoder.pkl', 'decoder128.pkl'): r'codebook_size 64 \(encoder\) vs 128 \(decoder\)',
        ('garbage.pkl', 'decoder.pkl'): 'not a readable torch-saved encoder',
        ('hostile.pkl', 'decoder.pkl'): 'holds no tensors',
        ('lying_encoder.pkl', 'decoder.pkl'): 'says n_hid=32 but its tensors give n_hid=16',
    }
    for (encoder_file, decoder_file), message in cases.items():
        status, errors = convert_in_process(
            capsys, tmp_path / encoder_file, tmp_path / decoder_file, out
        )
        assert status == 2, (encoder_file, decoder_file)
        assert len(errors) == 1 and errors[0].startswith('error: ')
        assert re.search(message, errors[0]), errors[0]
    assert not marker.exists()
    assert not out.exists()  # nothing written for a failed conversion


@needs_dall_e
def test_converter_accepts_bare_state_dicts(tmp_path, capsys):
    encoder, decoder = dall_e_modules()
    torch.save(encoder.state_dict(), tmp_path / 'encoder.pt')
    torch.save(decoder.state_dict(), tmp_path / 'decoder.pt')
    status, errors = convert_in_process(
        capsys, tmp_path / 'encoder.pt', tmp_path / 'decoder.pt', tmp_path / 'out'
    )
    assert (status, errors) == (0, [])
    tokenizer = DVAE(**DALL_E_LAYOUT, checkpoint=tmp_path / 'out' / 'dvae.safetensors')
    assert torch.equal(tokenizer.decoder.blocks.input.w, decoder.blocks.input.w)
