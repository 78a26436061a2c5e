"""Procedural shape scenes with exact captions, and a deterministic analyser.

Pure numpy: sample seeded scenes of coloured shapes on black, render them at any size
from 32 px, turn descriptions into captions and back, and read a picture back into its
description so generated captions and images can be scored.
"""

from .analyse import analyse, label_components
from .captions import caption_of, paraphrases, parse_caption, parse_paraphrase
from .render import (
    MIN_IMAGE_SIZE,
    Scene,
    generate_scenes,
    object_centres,
    place_scene,
    render,
    sample_description,
    sample_scene,
)
from .vocabulary import (
    COLOURS,
    HELD_OUT_PAIRS,
    POSITIONS,
    RELATIONS,
    SHAPES,
    SIZES,
    ObjectDesc,
    SceneDescription,
    all_descriptions,
    uses_held_out_pair,
)

__all__ = [
    'COLOURS',
    'HELD_OUT_PAIRS',
    'MIN_IMAGE_SIZE',
    'POSITIONS',
    'RELATIONS',
    'SHAPES',
    'SIZES',
    'ObjectDesc',
    'Scene',
    'SceneDescription',
    'all_descriptions',
    'analyse',
    'caption_of',
    'generate_scenes',
    'label_components',
    'object_centres',
    'paraphrases',
    'parse_caption',
    'parse_paraphrase',
    'place_scene',
    'render',
    'sample_description',
    'sample_scene',
    'uses_held_out_pair',
]
