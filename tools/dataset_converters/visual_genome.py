"""Visual Genome region descriptions -> jsonl of whole-image ``{image, caption}`` rows.

    python tools/dataset_converters/visual_genome.py data/vg/region_descriptions.json \
        data/vg/image_data.json data/vg/vg_regions.jsonl

Image paths come from ``image_data.json``'s urls (``.../VG_100K_2/1.jpg`` -> ``VG_100K_2/1.jpg``,
relative to ``data/vg``). By default one row per image whose ``caption`` is the list of its
region phrases (the dataset draws one per access, so an image counts once per epoch);
``--per-region`` writes one row per phrase, with its box ``[x, y, w, h]`` (the image is still
used whole). Images without a url or without phrases are skipped and counted.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from collections import Counter

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from davinci_zoo.cli import UserError, run_tool  # noqa: E402
from davinci_zoo.datasets.annotation_io import read_json, summary, write_jsonl  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visual Genome regions -> jsonl for pretraining.')
    parser.add_argument('regions', help='region_descriptions.json')
    parser.add_argument('image_data', help='image_data.json')
    parser.add_argument('out', help='output .jsonl')
    parser.add_argument('--per-region', action='store_true', help='one row per region phrase')
    return parser.parse_args(argv)


def image_paths(image_data: list) -> dict[int, str]:
    """image id -> ``VG_100K*/<id>.jpg`` from the urls of ``image_data.json``."""
    paths = {}
    for image in image_data:
        image_id = image.get('image_id', image.get('id'))
        url = image.get('url') or ''
        if image_id is not None and url:
            paths[image_id] = '/'.join(url.split('/')[-2:])
    return paths


def region_rows(regions: list, paths: dict[int, str], per_region: bool, skipped: Counter):
    """Rows ``{image, caption[, box]}``, one per image or one per region."""
    for entry in regions:
        image_id = entry.get('id', entry.get('image_id'))
        phrases = [
            region for region in entry.get('regions') or [] if str(region.get('phrase')).strip()
        ]
        if image_id not in paths:
            skipped['images without url'] += 1
        elif not phrases:
            skipped['images without phrases'] += 1
        elif per_region:
            for region in phrases:
                box = [region.get(key) for key in ('x', 'y', 'width', 'height')]
                yield dict(image=paths[image_id], caption=region['phrase'].strip(), box=box)
        else:
            captions = [region['phrase'].strip() for region in phrases]
            yield dict(image=paths[image_id], caption=captions, image_id=image_id)


def main(argv=None) -> None:
    args = parse_args(argv)
    regions = read_json(args.regions, 'region descriptions file')
    image_data = read_json(args.image_data, 'image data file')
    if not isinstance(regions, list) or not isinstance(image_data, list):
        raise UserError(f'{args.regions} and {args.image_data} must each hold a JSON list')
    skipped = Counter()
    try:
        rows = list(region_rows(regions, image_paths(image_data), args.per_region, skipped))
    except (AttributeError, TypeError) as error:
        raise UserError(f'unexpected Visual Genome layout ({error})') from None
    written = write_jsonl(args.out, rows)
    print(summary(f'wrote {written} rows to {args.out}', skipped))


if __name__ == '__main__':
    run_tool(main)
