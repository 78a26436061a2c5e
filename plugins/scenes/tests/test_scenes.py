"""Procedural shape scenes: sampling, rendering, captions and the analyser that reads them."""

import io
from collections import Counter
from functools import cache

import numpy as np
import pytest
from davinci_zoo_scenes import (
    COLOURS,
    HELD_OUT_PAIRS,
    MIN_IMAGE_SIZE,
    POSITIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    ObjectDesc,
    Scene,
    SceneDescription,
    all_descriptions,
    analyse,
    caption_of,
    generate_scenes,
    label_components,
    parse_caption,
    render,
    sample_scene,
    uses_held_out_pair,
)
from PIL import Image

READ_BACK_COUNTS = {32: 1000, 64: 300, 256: 50}


@cache
def read_back(size):
    """Scenes (seed = size) and what the analyser reads from their renders at ``size`` px."""
    scenes = generate_scenes(READ_BACK_COUNTS[size], seed=size)
    return scenes, [analyse(render(scene, size)) for scene in scenes]


def accuracy(scenes, readings):
    hits = [reading == scene.description for scene, reading in zip(scenes, readings)]
    return float(np.mean(hits))


def gaussian_blur(image, sigma):
    """Separable Gaussian blur of a float image [H, W, 3] (edges repeated)."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    for axis in (0, 1):
        pad_width = [(radius, radius) if a == axis else (0, 0) for a in range(3)]
        padded = np.pad(image, pad_width, 'edge')
        length = image.shape[axis]
        image = sum(
            tap * np.take(padded, np.arange(i, i + length), axis=axis) for i, tap in enumerate(taps)
        )
    return image


def degrade(image, rng, sigma_at_32, noise_std):
    """Blur (sigma given in 32 px units) plus Gaussian noise (0-255 units): uint8 [H, W, 3]."""
    blurred = gaussian_blur(image.astype(np.float64), sigma_at_32 * image.shape[0] / 32)
    noisy = blurred + rng.normal(0.0, noise_std, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='JPEG', quality=quality)
    return np.asarray(Image.open(buffer).convert('RGB'))


# ---------------------------------------------------------------- analyser on clean renders


@pytest.mark.parametrize('size', sorted(READ_BACK_COUNTS))
def test_ground_truth_renders_read_back(size):
    scenes, readings = read_back(size)
    by_kind = {
        count: [(s, r) for s, r in zip(scenes, readings) if len(s.description.objects) == count]
        for count in (1, 2)
    }
    report = {
        f'{count}-object': accuracy(*zip(*pairs)) for count, pairs in by_kind.items() if pairs
    }
    print(f'\nread-back accuracy at {size} px over {len(scenes)} scenes: {report}')
    assert all(len(pairs) >= 10 for pairs in by_kind.values()), 'need both kinds of scene'
    assert accuracy(scenes, readings) >= 0.99
    assert all(value >= 0.99 for value in report.values()), report


def test_renders_do_not_read_as_other_descriptions():
    scenes, readings = read_back(32)
    rng = np.random.default_rng(0)
    matches = []
    for scene, reading in zip(scenes, readings):
        other = scenes[int(rng.integers(len(scenes)))]
        while other.description == scene.description:
            other = scenes[int(rng.integers(len(scenes)))]
        matches.append(reading == other.description)
    rate = float(np.mean(matches))
    print(f'\nrenders read as a different random description: {rate:.4f}')
    assert rate <= 0.05


def test_analyser_accepts_float_images_and_is_deterministic():
    scenes = generate_scenes(40, seed=3)
    for scene in scenes:
        image = render(scene, 48)
        as_float = image.astype(np.float32) / 255
        assert analyse(as_float) == analyse(image) == analyse(image.copy())
        assert analyse(image) == scene.description


def test_label_components_joins_diagonal_neighbours_only():
    mask = np.zeros((6, 7), bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal pair: one component
    mask[3:5, 3:6] = True  # a block
    mask[0, 6] = True  # a lone pixel
    labels = label_components(mask)
    assert labels[0, 0] == labels[1, 1] and labels[3, 3] == labels[4, 5]
    assert len({labels[0, 0], labels[3, 3], labels[0, 6]}) == 3
    assert (labels[~mask] == -1).all() and (labels[mask] >= 0).all()
    snake = np.zeros((9, 9), bool)
    snake[::2] = True
    snake[1::4, -1] = snake[3::4, 0] = True  # one long zig-zag path
    assert len(np.unique(label_components(snake)[snake])) == 1


# ---------------------------------------------------------------- analyser strictness


def junk_images(size, rng):
    black = np.zeros((size, size, 3), np.uint8)
    yield 'blank', black
    for index in range(10):
        yield f'uniform noise {index}', rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    dark_noise = np.clip(rng.normal(40, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    yield 'dark gaussian noise', dark_noise
    sparse = (rng.random((size, size, 1)) < 0.05) * rng.integers(0, 256, (size, size, 3))
    yield 'sparse bright specks', sparse.astype(np.uint8)
    for word, rgb in COLOURS.items():
        yield f'full {word}', np.broadcast_to(np.array(rgb, np.uint8), (size, size, 3)).copy()
        half = black.copy()
        half[:, : size // 2] = rgb
        yield f'left half {word}', half
    yield 'full white', np.full((size, size, 3), 255, np.uint8)


@pytest.mark.parametrize('size', [32, 64, 256])
def test_junk_images_read_as_nothing(size):
    rng = np.random.default_rng(size)
    read = {name: analyse(image) for name, image in junk_images(size, rng)}
    assert read['blank'] is None
    assert {name: got for name, got in read.items() if got is not None} == {}


def recoloured(image, rgb):
    """``image`` [H, W, 3] with every clearly lit pixel painted ``rgb``."""
    out = np.zeros_like(image)
    out[image.max(axis=2) > 100] = rgb
    return out


def test_objects_off_the_vocabulary_read_as_nothing():
    scene = generate_scenes(1, seed=1, two_object_prob=0.0)[0]
    image = render(scene, 64)
    assert analyse(image) == scene.description
    for rgb in [(240, 140, 20), (230, 230, 230), (128, 128, 128), (250, 120, 180)]:
        assert analyse(recoloured(image, rgb)) is None, rgb
    wide = np.zeros((64, 64, 3), np.uint8)
    wide[10:22, 6:30] = COLOURS['red']  # a rectangle, not a square
    assert analyse(wide) is None
    centred = np.zeros((64, 64, 3), np.uint8)
    centred[26:42, 26:42] = COLOURS['red']  # a square just off the middle: in no quadrant
    assert analyse(centred) is None
    centred_above = np.zeros((64, 64, 3), np.uint8)
    centred_above[26:42, 26:42] = COLOURS['red']
    centred_above[4:20, 28:44] = COLOURS['blue']
    assert analyse(centred_above) is not None  # a pair may sit in the middle


def test_lone_specks_are_ignored_but_many_are_not():
    scene = generate_scenes(1, seed=4, two_object_prob=0.0)[0]
    image = render(scene, 64)
    specked = image.copy()
    for row, col in [(1, 1), (62, 40), (33, 62)]:
        specked[row, col] = 255
    assert analyse(specked) == scene.description
    rng = np.random.default_rng(4)
    speckled = image.copy()
    speckled[rng.random((64, 64)) < 0.03] = 255
    assert analyse(speckled) is None


def test_three_objects_or_diagonal_pairs_read_as_nothing():
    singles = generate_scenes(60, seed=7, two_object_prob=0.0)
    by_position = {}
    for scene in singles:
        by_position.setdefault(scene.description.position, scene)
    images = {position: render(scene, 32) for position, scene in by_position.items()}
    three = np.maximum(images['top left'], np.maximum(images['top right'], images['bottom left']))
    assert analyse(three) is None
    assert analyse(np.maximum(images['top left'], images['bottom right'])) is None


# ---------------------------------------------------------------- analyser robustness


@pytest.mark.parametrize('size, count', [(32, 400), (64, 150)])
def test_mild_blur_and_noise_still_read_back(size, count):
    rng = np.random.default_rng(size + 1)
    scenes = generate_scenes(count, seed=size + 1)
    readings = [analyse(degrade(render(s, size), rng, 0.5, 8.0)) for s in scenes]
    rate = accuracy(scenes, readings)
    print(f'\nread-back at {size} px with blur sigma 0.5 (32 px units) + noise 8/255: {rate:.3f}')
    assert rate >= 0.95


def test_jpeg_smoothing_still_reads_back():
    rng = np.random.default_rng(5)
    scenes = generate_scenes(300, seed=5)
    readings = [analyse(jpeg(degrade(render(s, 32), rng, 0.5, 8.0), 85)) for s in scenes]
    rate = accuracy(scenes, readings)
    print(f'\nread-back at 32 px with blur + noise + JPEG quality 85: {rate:.3f}')
    assert rate >= 0.95


def test_small_colour_shifts_still_read_back():
    rng = np.random.default_rng(6)
    scenes = generate_scenes(200, seed=6)
    readings = []
    for scene in scenes:
        gains = rng.uniform(0.75, 1.1) * rng.uniform(0.9, 1.1, size=3)  # dimmer, tinted
        shifted = degrade(render(scene, 32), rng, 0.5, 8.0) * gains
        readings.append(analyse(np.clip(shifted, 0, 255).astype(np.uint8)))
    rate = accuracy(scenes, readings)
    print(f'\nread-back at 32 px with blur + noise + colour gains 0.68-1.21: {rate:.3f}')
    assert rate >= 0.95


def test_heavy_blur_is_refused_rather_than_misread():
    rng = np.random.default_rng(9)
    scenes = generate_scenes(300, seed=9)
    readings = [analyse(degrade(render(s, 32), rng, 2.0, 8.0)) for s in scenes]
    wrong = [r is not None and r != s.description for s, r in zip(scenes, readings)]
    refused = [r is None for r in readings]
    print(f'\nblur sigma 2 px at 32 px: refused {np.mean(refused):.3f}, wrong {np.mean(wrong):.3f}')
    assert np.mean(refused) >= 0.9
    assert np.mean(wrong) <= 0.01


# ---------------------------------------------------------------- captions


def test_every_description_has_its_own_caption_that_parses_back():
    descriptions = all_descriptions()
    captions = [caption_of(d) for d in descriptions]
    assert len(set(descriptions)) == len(descriptions) == 3 * 6 * 2 * 4 + 2 * (36 * 36 - 18 * 4)
    assert len(set(captions)) == len(captions)
    assert all(parse_caption(c) == d for c, d in zip(captions, descriptions))
    words = {word for caption in captions for word in caption.split(' ')}
    assert all(word.isalpha() and word.islower() for word in words), words


def test_sampled_captions_parse_back():
    scenes = generate_scenes(3000, seed=11)
    assert all(parse_caption(scene.caption) == scene.description for scene in scenes)
    assert all(parse_caption(caption_of(s.description)) == s.description for s in scenes)


def test_caption_examples():
    red_circle = ObjectDesc('circle', 'red', 'small')
    blue_square = ObjectDesc('square', 'blue', 'large')
    one = SceneDescription((red_circle,), position='top left')
    above = SceneDescription((red_circle, blue_square), relation='above')
    left = SceneDescription((blue_square, red_circle), relation='left of')
    assert caption_of(one) == 'a small red circle in the top left'
    assert caption_of(above) == 'a small red circle above a large blue square'
    assert caption_of(left) == 'a large blue square left of a small red circle'


@pytest.mark.parametrize(
    'text',
    [
        '  A Small RED circle   in the TOP left \n',
        'a small red circle in the top left',
        'a small red ci ##rc ##le in the top left',  # WordPiece pieces joined
    ],
)
def test_parse_tolerates_case_spacing_and_wordpieces(text):
    expected = SceneDescription((ObjectDesc('circle', 'red', 'small'),), position='top left')
    assert parse_caption(text) == expected


@pytest.mark.parametrize(
    'text',
    [
        '',
        'a small red circle',
        'a small red circle in the',
        'circle red small a in the top left',
        'a red small circle in the top left',
        'a small orange circle in the top left',
        'a small red circle in the middle',
        'a small red circle above',
        'a small red circle above a',
        'a small red circle above a large blue',
        'a small red circle in the top left please',
        'a small red circle above a large blue square now',
        'a small red circle above a small red circle',
        'a small red circle left of a large red circle',
        'a small red circle, in the top left.',
        'the small red circle in the top left',
        'a small red circle below a large blue square',
    ],
)
def test_malformed_captions_do_not_parse(text):
    assert parse_caption(text) is None


# ---------------------------------------------------------------- descriptions


def test_invalid_descriptions_are_refused():
    red = ObjectDesc('circle', 'red', 'small')
    with pytest.raises(ValueError, match='colour'):
        ObjectDesc('circle', 'orange', 'small')
    with pytest.raises(ValueError, match='differ'):
        SceneDescription((red, ObjectDesc('circle', 'red', 'large')), relation='above')
    with pytest.raises(ValueError):
        SceneDescription((red,), relation='above')
    with pytest.raises(ValueError):
        SceneDescription((red, red, red), relation='above')
    assert SceneDescription([red], position='top left') == SceneDescription((red,), 'top left')
    assert len({SceneDescription((red,), 'top left'), SceneDescription((red,), 'top left')}) == 1


# ---------------------------------------------------------------- generation


def test_generation_is_deterministic_per_seed():
    assert generate_scenes(200, seed=1) == generate_scenes(200, seed=1)
    assert generate_scenes(200, seed=1) != generate_scenes(200, seed=2)
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    assert sample_scene(rng_a) == sample_scene(rng_b)


def test_generation_covers_every_attribute():
    scenes = generate_scenes(2000, seed=21)
    objects = [obj for scene in scenes for obj in scene.description.objects]
    assert {obj.colour for obj in objects} == set(COLOURS)
    assert {obj.shape for obj in objects} == set(SHAPES)
    assert {obj.size for obj in objects} == set(SIZES)
    assert {s.description.position for s in scenes} - {None} == set(POSITIONS)
    assert {s.description.relation for s in scenes} - {None} == set(RELATIONS)
    two_object_share = np.mean([len(s.description.objects) == 2 for s in scenes])
    assert 0.35 <= two_object_share <= 0.45
    assert np.mean([len(s.description.objects) == 2 for s in generate_scenes(500, 3, 0.0)]) == 0


def test_exclude_redraws_excluded_descriptions():
    plain = generate_scenes(2000, seed=5)
    assert any(uses_held_out_pair(s.description) for s in plain)
    held_out = generate_scenes(2000, seed=5, exclude=uses_held_out_pair)
    assert not any(uses_held_out_pair(s.description) for s in held_out)
    assert len(HELD_OUT_PAIRS) >= 2
    assert all(colour in COLOURS and shape in SHAPES for colour, shape in HELD_OUT_PAIRS)
    with pytest.raises(ValueError, match='exclude'):
        sample_scene(np.random.default_rng(0), exclude=lambda description: True)


def test_held_out_pair_detection():
    colour, shape = sorted(HELD_OUT_PAIRS)[0]
    held = ObjectDesc(shape, colour, 'large')
    other_shape = next(s for s in SHAPES if (colour, s) not in HELD_OUT_PAIRS)
    free = ObjectDesc(other_shape, colour, 'large')
    assert uses_held_out_pair(SceneDescription((held,), position='top right'))
    assert uses_held_out_pair(SceneDescription((free, held), relation='left of'))
    assert not uses_held_out_pair(SceneDescription((free,), position='top right'))


def test_jitter_makes_every_render_different():
    scenes = generate_scenes(600, seed=8, two_object_prob=0.0)
    repeated = [d for d, n in Counter(s.description for s in scenes).items() if n > 1]
    assert repeated, 'expected some descriptions to repeat among 600 one-object scenes'
    for size in (32, 64):
        renders = {render(s, size).tobytes() for s in scenes if s.description in repeated}
        assert len(renders) == sum(1 for s in scenes if s.description in repeated)


def test_jitter_step_puts_offsets_on_its_grid():
    scenes = generate_scenes(400, seed=9, jitter_step=1 / 32)
    offsets = np.array([offset for s in scenes for offset in s.offsets]) * 32
    assert np.allclose(offsets, np.round(offsets))  # whole pixels at 32 px
    assert set(np.round(offsets).astype(int).ravel()) == {-2, -1, 0, 1, 2}
    # a description now renders as one of a few images (small objects move by up to
    # 2 px each way; large ones in a quadrant have under a pixel of room, so none)
    small = next(
        s.description for s in scenes if [o.size for o in s.description.objects] == ['small']
    )
    many = generate_scenes(4000, seed=9, jitter_step=1 / 32)
    renders = {render(s, 32).tobytes() for s in many if s.description == small}
    assert 1 < len(renders) <= 25
    assert all(analyse(render(s, 32)) == s.description for s in scenes)
    for bad in (0, -0.1, 'x'):
        with pytest.raises(ValueError, match='jitter_step'):
            generate_scenes(1, seed=0, jitter_step=bad)


# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize('size', [32, 48, 64, 128, 256])
def test_render_sizes(size):
    for scene in generate_scenes(12, seed=size):
        image = render(scene, size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        assert image.max() >= 200 and image[0, 0].tolist() == [0, 0, 0]
        assert np.array_equal(image, render(scene, size))
        assert analyse(image) == scene.description


def test_large_renders_are_the_small_layout_scaled_up():
    for scene in generate_scenes(20, seed=2):
        small = render(scene, 32).astype(np.float64)
        large = render(scene, 256).astype(np.float64)
        block_means = large.reshape(32, 8, 32, 8, 3).mean(axis=(1, 3))
        assert np.abs(block_means - small).mean() < 1.0


@pytest.mark.parametrize('size', [0, 16, 31])
def test_render_refuses_sizes_below_the_minimum(size):
    scene = generate_scenes(1, seed=0)[0]
    with pytest.raises(ValueError, match=str(MIN_IMAGE_SIZE)):
        render(scene, size)


def test_scene_offsets_must_match_objects():
    description = generate_scenes(1, seed=0, two_object_prob=0.0)[0].description
    with pytest.raises(ValueError, match='offset'):
        Scene(description, ((0.0, 0.0), (0.0, 0.0)))
