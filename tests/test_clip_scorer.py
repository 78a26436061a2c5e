"""The CLIP scorer plugin (davinci-zoo-clip, built on open_clip) against CLIP's math,
OpenAI's formats and open_clip's own factory.

The weights are a state dict written here key by key in OpenAI's layout; the reference forward
below restates CLIP with plain tensor operations on that dict (patches by unfolding, explicit
attention), without open_clip's modules. BPE ids of a handmade merges file are derived by hand.
A tiny open_clip model made by its factory from a JSON config checks that the scorer's model,
tokenizer and preprocessing are open_clip's.
"""

from __future__ import annotations

import gzip
import json
import math
from importlib import metadata

import pytest
import torch
from conftest import run_tool
from safetensors.torch import save_file

from davinci_zoo.checkpoint import CheckpointMismatchError
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import SCORERS

# merges, best first; ids 512 + rank
MERGES = ['h e', 'l l', 'he ll', 'hell o</w>', 't h', 'th e</w>']
VOCAB = 512 + len(MERGES) + 2
START, END = VOCAB - 2, VOCAB - 1
EMBED, RESOLUTION, PATCH, V_WIDTH, V_HEADS, V_LAYERS = 16, 32, 8, 32, 2, 2
CONTEXT, T_WIDTH, T_HEADS, T_LAYERS = 12, 24, 3, 2
SIZES = dict(
    embed_dim=EMBED,
    image_resolution=RESOLUTION,
    vision_layers=V_LAYERS,
    vision_width=V_WIDTH,
    vision_patch_size=PATCH,
    vision_heads=V_HEADS,
    context_length=CONTEXT,
    vocab_size=VOCAB,
    transformer_width=T_WIDTH,
    transformer_heads=T_HEADS,
    transformer_layers=T_LAYERS,
)
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def ascii_id(char, word_end=False):
    """Printable ASCII bytes come first in the byte table, from '!' (id 0) on."""
    return ord(char) - ord('!') + (256 if word_end else 0)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def write_merges(path, merges=MERGES):
    """No newline after the last merge: open_clip reads the 48894 lines after the header, so
    in a short file a trailing empty line would become one more (empty) merge."""
    with gzip.open(path, 'wt', encoding='utf-8') as handle:
        handle.write('#version: 0.2\n' + '\n'.join(merges))
    return path


def block(out, prefix, width, rand):
    out[prefix + 'ln_1.weight'], out[prefix + 'ln_1.bias'] = 1 + rand(width), rand(width)
    out[prefix + 'attn.in_proj_weight'] = rand(3 * width, width)
    out[prefix + 'attn.in_proj_bias'] = rand(3 * width)
    out[prefix + 'attn.out_proj.weight'] = rand(width, width)
    out[prefix + 'attn.out_proj.bias'] = rand(width)
    out[prefix + 'ln_2.weight'], out[prefix + 'ln_2.bias'] = 1 + rand(width), rand(width)
    out[prefix + 'mlp.c_fc.weight'], out[prefix + 'mlp.c_fc.bias'] = (
        rand(4 * width, width),
        rand(4 * width),
    )
    out[prefix + 'mlp.c_proj.weight'] = rand(width, 4 * width)
    out[prefix + 'mlp.c_proj.bias'] = rand(width)


def openai_state_dict(seed=0):
    """A random CLIP ViT in OpenAI's names and shapes, with the size entries its files carry."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(shape, generator=generator) * 0.3

    grid = RESOLUTION // PATCH
    out = {
        'visual.conv1.weight': rand(V_WIDTH, 3, PATCH, PATCH),
        'visual.class_embedding': rand(V_WIDTH),
        'visual.positional_embedding': rand(grid * grid + 1, V_WIDTH),
        'visual.ln_pre.weight': 1 + rand(V_WIDTH),
        'visual.ln_pre.bias': rand(V_WIDTH),
    }
    for index in range(V_LAYERS):
        block(out, f'visual.transformer.resblocks.{index}.', V_WIDTH, rand)
    out['visual.ln_post.weight'], out['visual.ln_post.bias'] = 1 + rand(V_WIDTH), rand(V_WIDTH)
    out['visual.proj'] = rand(V_WIDTH, EMBED)
    out['token_embedding.weight'] = rand(VOCAB, T_WIDTH)
    out['positional_embedding'] = rand(CONTEXT, T_WIDTH)
    for index in range(T_LAYERS):
        block(out, f'transformer.resblocks.{index}.', T_WIDTH, rand)
    out['ln_final.weight'], out['ln_final.bias'] = 1 + rand(T_WIDTH), rand(T_WIDTH)
    out['text_projection'] = rand(T_WIDTH, EMBED)
    out['logit_scale'] = torch.tensor(math.log(1 / 0.07))
    out['input_resolution'] = torch.tensor(RESOLUTION)
    out['context_length'] = torch.tensor(CONTEXT)
    out['vocab_size'] = torch.tensor(VOCAB)
    return out


def build(weights, merges, **overrides):
    """A scorer of the sizes above (``overrides`` replace some); ``merges`` None: open_clip's."""
    merges = None if merges is None else str(merges)
    sizes = dict(SIZES, **overrides)
    return SCORERS.build(dict(type='CLIPScorer', weights=str(weights), merges=merges, **sizes))


@pytest.fixture()
def files(tmp_path):
    weights = openai_state_dict()
    torch.save(weights, tmp_path / 'clip.pt')
    return weights, tmp_path / 'clip.pt', write_merges(tmp_path / 'merges.txt.gz')


# --------------------------------------------------------------------------------------------
# CLIP restated with plain tensor operations on the state dict
# --------------------------------------------------------------------------------------------
def layer_norm(x, weight, bias):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * weight + bias


def ref_block(w, prefix, x, heads, causal):
    batch, length, width = x.shape
    head = width // heads

    def split(t):
        return t.view(batch, length, heads, head).transpose(1, 2)

    y = layer_norm(x, w[prefix + 'ln_1.weight'], w[prefix + 'ln_1.bias'])
    packed = y @ w[prefix + 'attn.in_proj_weight'].T + w[prefix + 'attn.in_proj_bias']
    q, k, v = (split(t) for t in packed.split(width, dim=-1))
    scores = q @ k.transpose(-1, -2) / math.sqrt(head)
    if causal:
        later = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(later, float('-inf'))
    context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, width)
    x = x + context @ w[prefix + 'attn.out_proj.weight'].T + w[prefix + 'attn.out_proj.bias']
    y = layer_norm(x, w[prefix + 'ln_2.weight'], w[prefix + 'ln_2.bias'])
    hidden = y @ w[prefix + 'mlp.c_fc.weight'].T + w[prefix + 'mlp.c_fc.bias']
    hidden = hidden * torch.sigmoid(1.702 * hidden)
    return x + hidden @ w[prefix + 'mlp.c_proj.weight'].T + w[prefix + 'mlp.c_proj.bias']


def ref_image_features(w, images):
    """images [B, 3, R, R] in [0, 1] -> [B, E]; patches by unfolding, row-major."""
    pixels = (images - MEAN) / STD
    batch, grid = len(images), RESOLUTION // PATCH
    patches = pixels.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH)  # [B, 3, g, g, p, p]
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(batch, grid * grid, -1)
    x = patches @ w['visual.conv1.weight'].reshape(V_WIDTH, -1).T
    x = torch.cat([w['visual.class_embedding'].expand(batch, 1, V_WIDTH), x], dim=1)
    x = layer_norm(
        x + w['visual.positional_embedding'], w['visual.ln_pre.weight'], w['visual.ln_pre.bias']
    )
    for index in range(V_LAYERS):
        x = ref_block(w, f'visual.transformer.resblocks.{index}.', x, V_HEADS, causal=False)
    x = layer_norm(x[:, 0], w['visual.ln_post.weight'], w['visual.ln_post.bias'])
    return x @ w['visual.proj']


def ref_text_features(w, rows):
    """Id rows (with start/end) -> [B, E]; padded to the full context as OpenAI's code does,
    features read at the highest id (the end token)."""
    ids = torch.zeros(len(rows), CONTEXT, dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row)
    x = w['token_embedding.weight'][ids] + w['positional_embedding']
    for index in range(T_LAYERS):
        x = ref_block(w, f'transformer.resblocks.{index}.', x, T_HEADS, causal=True)
    x = layer_norm(x, w['ln_final.weight'], w['ln_final.bias'])
    return x[torch.arange(len(rows)), ids.argmax(-1)] @ w['text_projection']


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------
def test_bpe_on_a_handmade_merges_file(tmp_path):
    from davinci_zoo_clip.scorer import build_tokenizer

    tokenizer = build_tokenizer(write_merges(tmp_path / 'merges.txt.gz'), CONTEXT)
    assert tokenizer.vocab_size == VOCAB
    assert (tokenizer.sot_token_id, tokenizer.eot_token_id) == (START, END)
    hello, the, he = 512 + 3, 512 + 5, 512 + 0
    cases = {
        'hello': [hello],  # h e l l o</w> -> he l l o</w> -> he ll o</w> -> hell o</w> -> hello</w>
        'HeLLo  the': [hello, the],  # lower-cased, whitespace collapsed
        'hell': [he, ascii_id('l'), ascii_id('l', True)],  # 'l l</w>' is not the merge 'l l'
        'hello!': [hello, ascii_id('!', True)],
        "it's": [ascii_id('i'), ascii_id('t', True), ascii_id("'"), ascii_id('s', True)],
        'r2d': [ascii_id('r', True), ascii_id('2', True), ascii_id('d', True)],  # digits alone
        '&amp;': [ascii_id('&', True)],  # HTML-unescaped
        # e-acute is UTF-8 C3 A9: both printable Latin-1, after the 94 ASCII and 12 of A1-AC
        'é': [94 + 12 + (0xC3 - 0xAE), 256 + 94 + (0xA9 - 0xA1)],
        # a-macron is C4 81; 81 is not printable: after the 188 printable bytes come 00-20
        # (33 bytes), 7F, then 80, 81, ...
        '\u0101': [94 + 12 + (0xC4 - 0xAE), 256 + 188 + 33 + 1 + 1],
        '\x7f': [],  # ftfy drops control characters, as OpenAI's tokenizer does
        'the <end_of_text>': [the, END],  # open_clip's name of the special token
        'fa\u00c3\u00a7ade': tokenizer.encode('fa\u00e7ade'),  # ftfy repairs mis-decoded UTF-8
    }
    for text, expected in cases.items():
        assert tokenizer.encode(text) == expected, text
    ids = tokenizer(['hello the', 'hell'])
    assert ids.tolist() == [
        [START, hello, the, END] + [0] * (CONTEXT - 4),
        [START, he, ascii_id('l'), ascii_id('l', True), END] + [0] * (CONTEXT - 5),
    ]
    assert tokenizer(['hello ' * 20]).tolist() == [[START] + [hello] * (CONTEXT - 2) + [END]]


def test_weights_load_from_the_file_and_every_key_is_used(files):
    weights, path, merges = files
    scorer = build(path, merges)
    assert scorer.loaded_keys == sorted(weights)
    loaded = scorer.clip.state_dict()
    meta = {'input_resolution', 'context_length', 'vocab_size'}
    assert set(loaded) == set(weights) - meta
    for key, tensor in loaded.items():
        assert torch.equal(tensor, weights[key]), key


def test_features_and_scores_equal_clip_math(files):
    weights, path, merges = files
    scorer = build(path, merges)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, RESOLUTION, RESOLUTION, generator=generator)
    with torch.no_grad():
        image_features = scorer.clip.encode_image(scorer.preprocess(images))
        texts = ['hello the', 'hell']
        text_features = scorer.clip.encode_text(scorer.tokenizer(texts))
        scores = scorer(None, images, texts)
    expected_image = ref_image_features(weights, images)
    rows = [[START, 515, 517, END], [START, 512, ascii_id('l'), ascii_id('l', True), END]]
    expected_text = ref_text_features(weights, rows)
    torch.testing.assert_close(image_features, expected_image, atol=1e-5, rtol=0)
    torch.testing.assert_close(text_features, expected_text, atol=1e-5, rtol=0)
    expected_scores = (1 / 0.07) * (unit(expected_image) * unit(expected_text)).sum(-1)
    torch.testing.assert_close(scores, expected_scores, atol=1e-4, rtol=0)
    assert scores.shape == (2,) and not torch.allclose(scores[0], scores[1])


def test_images_are_centre_cropped_and_resized(files):
    _, path, merges = files
    scorer = build(path, merges)
    generator = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, RESOLUTION, RESOLUTION, generator=generator)
    wide = torch.rand(1, 3, RESOLUTION, RESOLUTION + 16, generator=generator)
    wide[..., 8 : 8 + RESOLUTION] = image  # the central window; random margins
    colour = torch.tensor([0.9, 0.2, 0.4]).view(1, 3, 1, 1)
    small, large = colour.expand(1, 3, 32, 32), colour.expand(1, 3, 48, 80)
    text = ['hello']
    torch.testing.assert_close(
        scorer(None, wide, text), scorer(None, image, text), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        scorer(None, large, text), scorer(None, small, text), atol=1e-4, rtol=0
    )
    assert not torch.allclose(scorer(None, image, text), scorer(None, small, text), atol=1e-3)


def test_safetensors_in_fp16_load_too(files, tmp_path):
    weights, _, merges = files
    half = {key: value.half() for key, value in weights.items() if value.dim()}
    half.update({key: value for key, value in weights.items() if not value.dim()})
    save_file(half, tmp_path / 'clip.safetensors')
    scorer = build(tmp_path / 'clip.safetensors', merges)
    assert scorer.clip.visual.proj.dtype == torch.float32
    assert torch.equal(scorer.clip.visual.proj, weights['visual.proj'].half().float())


def test_bad_files_fail_with_clear_errors(files, tmp_path):
    weights, path, merges = files
    with pytest.raises(FileNotFoundError, match=r'CLIP weights file \S*missing\.pt does not exist'):
        build(tmp_path / 'missing.pt', merges)
    with pytest.raises(FileNotFoundError, match=r'CLIP BPE merges file \S*nothing\.gz does not'):
        build(path, tmp_path / 'nothing.gz')
    with pytest.raises(ComponentArgumentError, match='gives 519 token ids'):
        build(path, write_merges(tmp_path / 'short.gz', MERGES[:-1]))
    with pytest.raises(
        ComponentArgumentError, match='CLIP vision_width .* not divisible by 7 heads'
    ):
        build(path, merges, vision_heads=7)
    with pytest.raises(ComponentArgumentError, match='not a multiple of vision_patch_size'):
        build(path, merges, image_resolution=RESOLUTION + 1)
    for name, change in (
        ('extra', lambda sd: sd.update({'visual.extra.weight': torch.zeros(1)})),
        ('missing', lambda sd: sd.pop('ln_final.bias')),
        ('shape', lambda sd: sd.update({'text_projection': torch.zeros(T_WIDTH, EMBED + 1)})),
    ):
        broken = dict(weights)
        change(broken)
        torch.save(broken, tmp_path / f'{name}.pt')
        with pytest.raises(CheckpointMismatchError, match=r'extra|ln_final\.bias|text_projection'):
            build(tmp_path / f'{name}.pt', merges)
    torch.save(dict(weights, context_length=torch.tensor(77)), tmp_path / 'sizes.pt')
    with pytest.raises(ValueError, match='context_length=77, the config has 12'):
        build(tmp_path / 'sizes.pt', merges)
    with pytest.raises(ValueError, match='2 images but 1 texts'):
        build(path, merges)(None, torch.rand(2, 3, 32, 32), ['hello'])


def test_plugin_is_listed_under_its_distribution():
    (entry,) = [
        ep for ep in metadata.entry_points(group='davinci_zoo.plugins') if ep.name == 'clip'
    ]
    assert entry.value == 'davinci_zoo_clip.plugin' and entry.dist.name == 'davinci-zoo-clip'
    result = run_tool('tools/list_plugins.py', '--json', timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    listing = json.loads(result.stdout)
    (row,) = [c for c in listing['components'] if c['name'] == 'CLIPScorer']
    assert row['registry'] == 'scorer' and row['provider'] == 'davinci-zoo-clip'
    assert row['module'] == 'davinci_zoo_clip.scorer'
    assert not listing['failed'] and not listing['conflicts']


@pytest.mark.parametrize('quick_gelu', [True, False], ids=['openai', 'laion'])
def test_scorer_agrees_with_open_clip_built_from_its_own_config(tmp_path, quick_gelu):
    """A tiny CLIP made by open_clip's factory from a JSON model config (random weights, no
    download), saved as a state dict: the scorer built from that file and the same sizes
    gives open_clip's features and scores, with open_clip's tokenizer (OpenAI's merges, as
    open_clip ships them) and its evaluation preprocessing of PIL images. OpenAI trained with
    QuickGELU, LAION's models with GELU."""
    import open_clip
    from PIL import Image

    config = dict(
        embed_dim=EMBED,
        quick_gelu=quick_gelu,
        vision_cfg=dict(
            image_size=RESOLUTION,
            layers=V_LAYERS,
            width=V_WIDTH,
            head_width=V_WIDTH // V_HEADS,
            patch_size=PATCH,
        ),
        text_cfg=dict(
            context_length=CONTEXT, vocab_size=49408, width=T_WIDTH, heads=T_HEADS, layers=2
        ),
    )
    name = 'tiny-vit-quickgelu' if quick_gelu else 'tiny-vit'  # open_clip's naming
    (tmp_path / f'{name}.json').write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / f'{name}.json')
    torch.manual_seed(0)
    reference, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    reference.eval()
    torch.save(reference.state_dict(), tmp_path / 'tiny.pt')
    # merges=None: open_clip's copy of OpenAI's
    scorer = build(tmp_path / 'tiny.pt', merges=None, vocab_size=49408, quick_gelu=quick_gelu)
    # uint8 pictures: open_clip's PIL path then sees exactly the scorer's tensors; the wide
    # one is only centre-cropped, the large one resized (PIL's bicubic, not the tensor one's)
    generator = torch.Generator().manual_seed(3)
    square, wide, large = (
        torch.randint(0, 256, (2, 3, h, w), generator=generator) / 255
        for h, w in ((RESOLUTION, RESOLUTION), (RESOLUTION, RESOLUTION + 12), (60, 80))
    )
    texts = ['a red cube left of a blue sphere', 'Two CATS &amp; a dog!']
    tokenizer = open_clip.get_tokenizer(name)
    assert torch.equal(scorer.tokenizer(texts), tokenizer(texts))

    def pil(image):
        return Image.fromarray((image.permute(1, 2, 0) * 255).round().byte().numpy())

    with torch.no_grad():
        theirs_text = reference.encode_text(tokenizer(texts), normalize=True)
        # resizing: PIL's bicubic against the tensor one, measured 1e-3 (features), 1.5e-3 (scores)
        for images, atol in ((square, 1e-5), (wide, 1e-5), (large, 5e-3)):
            theirs = reference.encode_image(
                torch.stack([preprocess(pil(image)) for image in images]), normalize=True
            )
            torch.testing.assert_close(scorer.image_features(images), theirs, atol=atol, rtol=0)
            expected = reference.logit_scale.exp() * (theirs * theirs_text).sum(-1)
            torch.testing.assert_close(scorer(None, images, texts), expected, atol=atol, rtol=0)
        torch.testing.assert_close(scorer.text_features(texts), theirs_text, atol=1e-5, rtol=0)
        repeated = scorer.text_features([texts[1], texts[0], texts[1]])  # each encoded once
        torch.testing.assert_close(repeated, theirs_text[[1, 0, 1]], atol=1e-5, rtol=0)
