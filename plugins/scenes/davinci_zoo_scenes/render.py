"""Seeded sampling of shape scenes and their rendering to RGB arrays.

Geometry is in units relative to the image (0..1, x to the right, y down), so one Scene
renders to the same layout at every size. One-object scenes use the four quadrants as
cells; 'above' stacks two cells vertically, 'left of' puts them side by side.
"""

import math
from dataclasses import dataclass

import numpy as np

from .captions import caption_of
from .vocabulary import COLOURS, RELATIONS, SHAPES, SIZES, ObjectDesc, SceneDescription

MIN_IMAGE_SIZE = 32
SIZE_EXTENTS = {'small': 0.25, 'large': 0.4}
MAX_JITTER = 0.08
JITTER_SHARE = 0.6
MAX_REDRAWS = 10_000
SUPERSAMPLED_SIZE = 256

QUADRANT_CELLS = {
    'top left': (0.25, 0.25, 0.25, 0.25),
    'top right': (0.75, 0.25, 0.25, 0.25),
    'bottom left': (0.25, 0.75, 0.25, 0.25),
    'bottom right': (0.75, 0.75, 0.25, 0.25),
}
RELATION_CELLS = {
    'above': ((0.5, 0.25, 0.5, 0.25), (0.5, 0.75, 0.5, 0.25)),
    'left of': ((0.25, 0.5, 0.25, 0.5), (0.75, 0.5, 0.25, 0.5)),
}


@dataclass(frozen=True)
class Scene:
    """A description plus each object's jitter (dx, dy), relative to the image size."""

    description: SceneDescription
    offsets: tuple[tuple[float, float], ...]

    def __post_init__(self):
        offsets = tuple((float(dx), float(dy)) for dx, dy in self.offsets)
        object.__setattr__(self, 'offsets', offsets)
        if len(offsets) != len(self.description.objects):
            raise ValueError('a Scene needs one (dx, dy) offset per object')

    @property
    def caption(self):
        return caption_of(self.description)


def object_cells(description):
    """(centre_x, centre_y, half_width, half_height) of each object's cell, in order."""
    if description.position is not None:
        return (QUADRANT_CELLS[description.position],)
    return RELATION_CELLS[description.relation]


def jitter_limits(cell, size_word):
    """Largest |dx|, |dy| that keeps an object of ``size_word`` well inside ``cell``."""
    half_extent = SIZE_EXTENTS[size_word] / 2
    return tuple(min(MAX_JITTER, JITTER_SHARE * (half - half_extent)) for half in cell[2:])


def object_centres(scene):
    """Jittered centre (x, y) of each object of ``scene``, relative to the image."""
    cells = object_cells(scene.description)
    return tuple((cell[0] + dx, cell[1] + dy) for cell, (dx, dy) in zip(cells, scene.offsets))


def _pick(rng, words):
    return words[int(rng.integers(len(words)))]


def _sample_object(rng):
    return ObjectDesc(_pick(rng, SHAPES), _pick(rng, tuple(COLOURS)), _pick(rng, SIZES))


def sample_description(rng, two_object_prob=0.4):
    """A uniformly drawn SceneDescription; two objects with probability ``two_object_prob``."""
    first = _sample_object(rng)
    if rng.random() >= two_object_prob:
        return SceneDescription((first,), position=_pick(rng, tuple(QUADRANT_CELLS)))
    second = _sample_object(rng)
    while (second.shape, second.colour) == (first.shape, first.colour):
        second = _sample_object(rng)
    return SceneDescription((first, second), relation=_pick(rng, RELATIONS))


def _sample_jitter(rng, limit, step):
    """One offset in [-limit, limit]: uniform, or a uniform multiple of ``step`` if given."""
    if step is None:
        return rng.uniform(-limit, limit)
    most = math.floor(limit / step + 1e-9)
    return step * int(rng.integers(-most, most + 1))


def _sample_offsets(rng, description, jitter_step):
    cells = object_cells(description)
    offsets = []
    for cell, obj in zip(cells, description.objects):
        limit_x, limit_y = jitter_limits(cell, obj.size)
        offsets.append(
            (_sample_jitter(rng, limit_x, jitter_step), _sample_jitter(rng, limit_y, jitter_step))
        )
    return tuple(offsets)


def check_jitter_step(jitter_step):
    """``jitter_step`` as a float (or None); a clear error if it is not a positive number."""
    if jitter_step is None:
        return None
    if (
        isinstance(jitter_step, bool)
        or not isinstance(jitter_step, (int, float))
        or jitter_step <= 0
    ):
        raise ValueError(
            f'jitter_step must be a positive fraction of the image side or None, '
            f'got {jitter_step!r}'
        )
    return float(jitter_step)


def sample_scene(rng, two_object_prob=0.4, exclude=None, jitter_step=None):
    """Draw a Scene with ``rng`` (numpy Generator); redraw while ``exclude(description)``.

    ``jitter_step`` (relative to the image side; e.g. 1/32 is one pixel at 32 px): offsets
    are whole multiples of it, so renders at a size it divides sit on the pixel grid (an
    object with less room than one step stays centred); None draws them from a continuum.
    """
    jitter_step = check_jitter_step(jitter_step)
    for _ in range(MAX_REDRAWS):
        description = sample_description(rng, two_object_prob)
        if exclude is None or not exclude(description):
            return Scene(description, _sample_offsets(rng, description, jitter_step))
    raise ValueError(f'exclude rejected {MAX_REDRAWS} descriptions in a row')


def place_scene(rng, description, jitter_step=None):
    """A Scene of the given ``description``, its offsets drawn as :func:`sample_scene` does."""
    return Scene(description, _sample_offsets(rng, description, check_jitter_step(jitter_step)))


def generate_scenes(n, seed, two_object_prob=0.4, exclude=None, jitter_step=None):
    """``n`` scenes drawn from ``numpy.random.default_rng(seed)``: a list of Scene."""
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, two_object_prob, exclude, jitter_step) for _ in range(n)]


def _inside(shape, u, v):
    """Boolean mask of points (u, v) inside ``shape`` spanning [-1, 1]^2 (triangle apex up)."""
    if shape == 'circle':
        return u * u + v * v <= 1.0
    if shape == 'square':
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    return (v <= 1.0) & (np.abs(u) <= (v + 1.0) / 2)


def _pixel_span(centre, half, size):
    return max(0, math.floor(centre - half) - 1), min(size, math.ceil(centre + half) + 1)


def _coverage(shape, centre, extent, size):
    """Antialiased coverage of one shape: (row0, col0, array [rows, cols] in [0, 1])."""
    factor = max(2, math.ceil(SUPERSAMPLED_SIZE / size))
    centre_x, centre_y = centre[0] * size, centre[1] * size
    half = extent * size / 2
    col0, col1 = _pixel_span(centre_x, half, size)
    row0, row1 = _pixel_span(centre_y, half, size)
    u = ((np.arange(col0 * factor, col1 * factor) + 0.5) / factor - centre_x) / half
    v = ((np.arange(row0 * factor, row1 * factor) + 0.5) / factor - centre_y) / half
    inside = _inside(shape, u[None, :], v[:, None])
    rows, cols = row1 - row0, col1 - col0
    return row0, col0, inside.reshape(rows, factor, cols, factor).mean(axis=(1, 3))


def render(scene, size):
    """RGB image of ``scene``: uint8 array [size, size, 3], shapes on black."""
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f'image size must be at least {MIN_IMAGE_SIZE} px, got {size}')
    canvas = np.zeros((size, size, 3), dtype=np.float64)
    for obj, centre in zip(scene.description.objects, object_centres(scene)):
        row0, col0, coverage = _coverage(obj.shape, centre, SIZE_EXTENTS[obj.size], size)
        rows, cols = coverage.shape
        colour = np.asarray(COLOURS[obj.colour], dtype=np.float64)
        canvas[row0 : row0 + rows, col0 : col0 + cols] += coverage[..., None] * colour
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
