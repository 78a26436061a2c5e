"""COCO captions (``captions_train2017.json``) -> jsonl of ``{image, caption}`` rows.

    python tools/dataset_converters/coco_captions.py \
        data/coco/annotations/captions_train2017.json data/coco/captions_train2017.jsonl \
        --image-dir train2017

Image paths are ``<image-dir>/<file_name>``, relative to the data root the dataset is given
(``ImageTextAnnotations(ann_file=..., data_root='data/coco')``). One row per caption by
default; ``--group-by-image`` writes one row per image with the list of its captions (the
dataset then draws one per access). Captions whose image is not listed are skipped and counted.
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
    parser = argparse.ArgumentParser(description='COCO captions json -> jsonl for pretraining.')
    parser.add_argument('captions', help='captions_<split>.json')
    parser.add_argument('out', help='output .jsonl')
    parser.add_argument('--image-dir', default='', help='image folder relative to the data root')
    parser.add_argument(
        '--group-by-image', action='store_true', help='one row per image, its captions as a list'
    )
    return parser.parse_args(argv)


def coco_rows(coco: dict, image_dir: str, group: bool, skipped: Counter) -> list[dict]:
    """Rows ``{image, caption, image_id}`` from a parsed COCO captions file."""
    files = {image['id']: image['file_name'] for image in coco['images']}
    captions: dict[int, list[str]] = {}
    for annotation in coco['annotations']:
        image_id, caption = annotation.get('image_id'), annotation.get('caption')
        if image_id not in files:
            skipped['captions of unlisted images'] += 1
        elif not isinstance(caption, str) or not caption.strip():
            skipped['empty captions'] += 1
        else:
            captions.setdefault(image_id, []).append(caption.strip())
    rows = []
    for image_id, texts in captions.items():
        image = osp.join(image_dir, files[image_id])
        if group:
            rows.append(dict(image=image, caption=texts, image_id=image_id))
        else:
            rows.extend(dict(image=image, caption=text, image_id=image_id) for text in texts)
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    coco = read_json(args.captions, 'COCO captions file')
    if not isinstance(coco, dict) or not {'images', 'annotations'} <= coco.keys():
        raise UserError(f'{args.captions} is not a COCO captions file (no images/annotations)')
    skipped = Counter()
    try:
        rows = coco_rows(coco, args.image_dir, args.group_by_image, skipped)
    except (KeyError, TypeError) as error:
        raise UserError(f'{args.captions}: unexpected COCO layout ({error!r})') from None
    written = write_jsonl(args.out, rows)
    print(summary(f'wrote {written} rows to {args.out}', skipped))


if __name__ == '__main__':
    run_tool(main)
