"""Deterministic reading of a scene image back into its SceneDescription.

Foreground pixels (bright on black) are grouped into 8-connected components. Every
component that is not a speck must read as a clean object: one palette colour, sharp
edges, a size that is clearly 'small' or 'large', and exactly one shape whose rules hold
(fill of the bounding box, peak row and column mass, vertical skew: triangles point up).
Anything unclear gives None, so blank, noisy or blurred images are not read as scenes.
"""

from dataclasses import dataclass

import numpy as np

from .vocabulary import COLOURS, ObjectDesc, SceneDescription

ANALYSIS_SIZE = 64  # larger images are block-averaged down to about this size
FOREGROUND_LEVEL = 0.3  # brightest channel above this is foreground
SPECK_AREA = 0.006  # components below this share of the image are specks ...
SPECK_BUDGET = 0.01  # ... ignored unless together they cover more than this share
WINDOW_MARGIN = 2  # pixels kept around a component when measuring it

CORE_LEVEL = 0.75  # the colour is read where brightness >= this * 95th percentile
COLOUR_TOLERANCE = 0.4  # largest chroma distance to the nearest palette entry
COLOUR_MARGIN = 0.2  # the second-nearest entry must be at least this much farther
COLOUR_PURITY = 0.8  # share of core pixels whose nearest entry must agree

COVERAGE_FLOOR = 0.15  # colour share below this counts as background
MIN_PEAK_SHARE = 0.6  # an object's peak must reach this share of its palette colour
MIN_EDGE_SLOPE = 8.0  # edges flatter than this (per image height) are too blurred
MAX_ASPECT = 1.3
SIZE_RANGES = {'small': (0.19, 0.31), 'large': (0.34, 0.47)}  # extent / image side
SHAPE_RULES = {
    'triangle': {'skew': (-1.5, -0.25), 'fill': (0.4, 0.8)},
    'circle': {'skew': (-0.12, 0.12), 'fill': (0.66, 0.84), 'peak': (1.19, 1.45)},
    'square': {'skew': (-0.12, 0.12), 'fill': (0.86, 1.05), 'peak': (0.9, 1.16)},
}
CENTRE_MARGIN = 0.06  # a lone object's centre must be this far from the middle lines
RELATION_DOMINANCE = 1.5  # main displacement of two objects / the other one

_PALETTE_WORDS = tuple(COLOURS)
_PALETTE = {word: np.array(rgb, dtype=np.float64) / 255 for word, rgb in COLOURS.items()}
_PALETTE_CHROMA = np.array([rgb / rgb.max() for rgb in _PALETTE.values()])
_NEIGHBOUR_SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


@dataclass(frozen=True)
class _Reading:
    """One component read as an object, with its centre (x, y) relative to the image."""

    obj: ObjectDesc
    centre: tuple[float, float]


def as_unit_rgb(image):
    """Float64 array [H, W, 3] in [0, 1] from integer (0-255) or float (0-1) input."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an image [H, W, 3], got shape {image.shape}')
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float64) / 255
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def downscale(image):
    """Block-average image [H, W, 3] so its longer side is at most about ANALYSIS_SIZE."""
    factor = max(image.shape[:2]) // ANALYSIS_SIZE
    if factor <= 1:
        return image
    rows, cols = image.shape[0] // factor, image.shape[1] // factor
    trimmed = image[: rows * factor, : cols * factor]
    row_sums = trimmed.reshape(rows, factor, cols * factor * 3).sum(axis=1)
    return row_sums.reshape(rows, cols, factor, 3).sum(axis=2) / factor**2


def _shifted_views(padded, height, width):
    """The 8 neighbour views [H, W] of an array padded by one pixel on each side."""
    return [padded[1 + dy :, 1 + dx :][:height, :width] for dy, dx in _NEIGHBOUR_SHIFTS]


def label_components(mask):
    """8-connected components of a boolean mask [H, W]: int array [H, W], -1 off the mask.

    A pixel's label is the smallest flat index in its component, found by passing the
    minimum to neighbours and jumping through the labels of labels until nothing changes.
    """
    height, width = mask.shape
    unset = height * width
    labels = np.where(mask, np.arange(unset).reshape(height, width), unset)
    padded = np.full((height + 2, width + 2), unset)
    while True:
        padded[1:-1, 1:-1] = labels
        smallest = labels.copy()
        for view in _shifted_views(padded, height, width):
            np.minimum(smallest, view, out=smallest)
        smallest[~mask] = unset
        smallest = np.append(smallest.ravel(), unset)[smallest]
        if np.array_equal(smallest, labels):
            return np.where(mask, labels, -1)
        labels = smallest


def _grow(mask):
    """Boolean mask [H, W] dilated by one pixel (8-neighbourhood)."""
    grown = mask.copy()
    for view in _shifted_views(np.pad(mask, 1), *mask.shape):
        grown |= view
    return grown


def _palette_distances(colours):
    """Distances [N, P] from the chroma of colours [N, 3] to each palette chroma."""
    chroma = colours / np.maximum(colours.max(axis=1, keepdims=True), 1e-6)
    return np.linalg.norm(chroma[:, None, :] - _PALETTE_CHROMA[None], axis=2)


def _near_peak(values):
    """The 95th percentile of values [N] (the peak, robust to a few outliers)."""
    return np.sort(values)[(values.size - 1) * 95 // 100]


def _classify_colour(pixels):
    """Palette word and median colour [3] of component pixels [N, 3], or None.

    Only the bright core is read. Its median chroma must lie near one palette entry and
    clearly nearer to it than to any other; most core pixels must agree with it.
    """
    brightness = pixels.max(axis=1)
    core = pixels[brightness >= CORE_LEVEL * _near_peak(brightness)]
    median = np.median(core, axis=0)
    distances = _palette_distances(median[None])[0]
    best = int(np.argmin(distances))
    nearest, runner_up = np.sort(distances)[:2]
    if nearest > COLOUR_TOLERANCE or runner_up - nearest < COLOUR_MARGIN:
        return None
    if np.mean(_palette_distances(core).argmin(axis=1) == best) < COLOUR_PURITY:
        return None
    return _PALETTE_WORDS[best], median


def _colour_share(image, colour):
    """Share [H, W] in [0, 1] of ``colour`` [3] in each pixel of ``image`` [H, W, 3]."""
    return np.clip(image @ colour / (colour @ colour), 0.0, 1.0)


def edge_slope(share, region, image_height):
    """Median steepness of the edges of ``share`` [H, W] inside ``region``, per image height.

    For a share scaled to peak 1, sharp renders give about 16-20 at any size and a Gaussian
    blur of sigma s pixels at 32 px gives roughly 11 / s. Slopes are central differences, so
    border pixels are not rated; inf when no rated pixel of ``region`` lies on an edge.
    """
    inner = share[1:-1, 1:-1]
    on_edge = region[1:-1, 1:-1] & (inner > 0.25) & (inner < 0.75)
    if not on_edge.any():
        return np.inf
    rate_y = (share[2:, 1:-1] - share[:-2, 1:-1])[on_edge] / 2
    rate_x = (share[1:-1, 2:] - share[1:-1, :-2])[on_edge] / 2
    return float(np.median(np.hypot(rate_x, rate_y))) * image_height


def _coverage(share, region):
    """Coverage [H, W]: ``share`` stretched about 1/2 and cut to ``region``.

    Stretching removes noise below COVERAGE_FLOOR while a blurred edge keeps its integral.
    """
    stretched = np.clip((share - COVERAGE_FLOOR) / (1 - 2 * COVERAGE_FLOOR), 0.0, 1.0)
    return np.where(region, stretched, 0.0)


def _vertical_skew(coverage):
    """Skewness of the mass of coverage [H, W] along y: about -0.57 for an upward triangle."""
    profile = coverage.sum(axis=1)
    ys = np.arange(profile.size)
    mean = profile @ ys / profile.sum()
    variance = profile @ (ys - mean) ** 2 / profile.sum()
    return profile @ (ys - mean) ** 3 / profile.sum() / variance**1.5


def _shape_features(coverage, width, height):
    """fill: mass / box area; peak: peak column mass * peak row mass / mass; skew."""
    mass = coverage.sum()
    return {
        'fill': mass / (width * height),
        'peak': coverage.sum(axis=0).max() * coverage.sum(axis=1).max() / mass,
        'skew': _vertical_skew(coverage),
    }


def _classify_shape(features):
    """The one shape whose SHAPE_RULES all hold for ``features`` (name -> value), or None."""
    matches = [
        shape
        for shape, rules in SHAPE_RULES.items()
        if all(low <= features[name] <= high for name, (low, high) in rules.items())
    ]
    return matches[0] if len(matches) == 1 else None


def _classify_size(extent):
    for word, (low, high) in SIZE_RANGES.items():
        if low <= extent <= high:
            return word
    return None


def _read_geometry(coverage, origin, image_shape):
    """Shape word, size word and centre (x, y) of a component, or None if unclear.

    ``coverage`` [h, w] is a window whose top-left pixel sits at ``origin`` (row, col) of an
    image of ``image_shape`` (H, W). Width and height sum the column and row maxima, so a
    soft edge counts by its share.
    """
    columns, rows = coverage.max(axis=0), coverage.max(axis=1)
    width, height = columns.sum(), rows.sum()
    if max(width, height) > MAX_ASPECT * min(width, height):
        return None
    image_height, image_width = image_shape
    size = _classify_size(max(width / image_width, height / image_height))
    shape = _classify_shape(_shape_features(coverage, width, height))
    if size is None or shape is None:
        return None
    centre_x = origin[1] + columns @ np.arange(columns.size) / width + 0.5
    centre_y = origin[0] + rows @ np.arange(rows.size) / height + 0.5
    return shape, size, (centre_x / image_width, centre_y / image_height)


def _dim_or_blurred(pixels, inside, region, colour_word, image_height):
    """True when an object (``inside`` of pixels [h, w, 3]) is too dim or its edges too soft.

    Brightness is judged against the palette colour, so a blurred-out blob cannot pass as
    a sharp but darker object; steepness is judged on the share scaled to the object's peak.
    """
    share = _colour_share(pixels, _PALETTE[colour_word])
    peak = _near_peak(share[inside])
    if peak < MIN_PEAK_SHARE:
        return True
    return edge_slope(share / peak, region, image_height) < MIN_EDGE_SLOPE


def _window(mask):
    """Slices (rows, cols) of the bounding box of ``mask`` [H, W] plus WINDOW_MARGIN."""
    rows, cols = np.nonzero(mask)
    row0, col0 = max(rows.min() - WINDOW_MARGIN, 0), max(cols.min() - WINDOW_MARGIN, 0)
    row1, col1 = rows.max() + WINDOW_MARGIN + 1, cols.max() + WINDOW_MARGIN + 1
    return slice(row0, row1), slice(col0, col1)


def _read_component(image, mask):
    """Reading of one component (boolean mask [H, W] of ``image`` [H, W, 3]) or None."""
    window = _window(mask)
    pixels, inside = image[window], mask[window]
    colour = _classify_colour(pixels[inside])
    if colour is None:
        return None
    colour_word, median = colour
    region = _grow(inside)
    if _dim_or_blurred(pixels, inside, region, colour_word, image.shape[0]):
        return None
    coverage = _coverage(_colour_share(pixels, median), region)
    origin = (window[0].start, window[1].start)
    geometry = _read_geometry(coverage, origin, image.shape[:2])
    if geometry is None:
        return None
    shape, size, centre = geometry
    return _Reading(ObjectDesc(shape, colour_word, size), centre)


def _component_masks(image):
    """Boolean masks [H, W] of the non-speck components, or None if specks are too many."""
    labels = label_components(image.max(axis=2) > FOREGROUND_LEVEL)
    areas = np.bincount(labels[labels >= 0], minlength=1)
    present = areas > 0
    speck = present & (areas < SPECK_AREA * labels.size)
    if areas[speck].sum() > SPECK_BUDGET * labels.size:
        return None
    return [labels == label for label in np.flatnonzero(present & ~speck)]


def _side(value, low_word, high_word):
    if value < 0.5 - CENTRE_MARGIN:
        return low_word
    if value > 0.5 + CENTRE_MARGIN:
        return high_word
    return None


def _one_object(reading):
    vertical = _side(reading.centre[1], 'top', 'bottom')
    horizontal = _side(reading.centre[0], 'left', 'right')
    if vertical is None or horizontal is None:
        return None
    return SceneDescription((reading.obj,), position=f'{vertical} {horizontal}')


def _two_objects(first, second):
    dx = abs(first.centre[0] - second.centre[0])
    dy = abs(first.centre[1] - second.centre[1])
    if dy > RELATION_DOMINANCE * dx:
        relation, axis = 'above', 1
    elif dx > RELATION_DOMINANCE * dy:
        relation, axis = 'left of', 0
    else:
        return None
    ordered = sorted((first, second), key=lambda reading: reading.centre[axis])
    upper_or_left, other = (reading.obj for reading in ordered)
    if (upper_or_left.shape, upper_or_left.colour) == (other.shape, other.colour):
        return None
    return SceneDescription((upper_or_left, other), relation=relation)


def analyse(image):
    """SceneDescription read from ``image`` [H, W, 3] (uint8 0-255 or float 0-1), or None.

    None unless the image shows exactly one or two objects that each read unambiguously,
    placed clearly in a quadrant (one object) or clearly above / left of each other.
    """
    image = downscale(as_unit_rgb(image))
    masks = _component_masks(image)
    if masks is None or not 1 <= len(masks) <= 2:
        return None
    readings = [_read_component(image, mask) for mask in masks]
    if any(reading is None for reading in readings):
        return None
    if len(readings) == 1:
        return _one_object(readings[0])
    return _two_objects(*readings)
