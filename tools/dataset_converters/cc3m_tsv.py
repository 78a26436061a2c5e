"""A CC3M-style tsv (``caption<TAB>image``) -> jsonl of ``{image, caption}`` rows.

    python tools/dataset_converters/cc3m_tsv.py data/cc3m/train.tsv data/cc3m/train.jsonl \
        --image-root data/cc3m

The second column must name an image on this machine, relative to ``--image-root`` (or
absolute); nothing is downloaded, so rows with a url, rows whose image is missing and
malformed rows are skipped and counted. Download first (e.g. with img2dataset, whose output
folder is already a set of webdataset shards) and write a tsv of the local paths.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from collections import Counter

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from davinci_zoo.cli import UserError, run_tool  # noqa: E402
from davinci_zoo.datasets.annotation_io import summary, write_jsonl  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='caption<TAB>image tsv -> jsonl for pretraining.')
    parser.add_argument('tsv', help='input .tsv, one "caption<TAB>image path" per line')
    parser.add_argument('out', help='output .jsonl')
    parser.add_argument('--image-root', default='', help='folder the image paths start from')
    parser.add_argument('--has-header', action='store_true', help='skip the first line')
    return parser.parse_args(argv)


def tsv_rows(lines, image_root: str, skipped: Counter):
    """Rows ``{image, caption}`` of the tsv lines whose image exists under ``image_root``."""
    for line in lines:
        if not line.strip():
            continue
        fields = line.rstrip('\n').split('\t')
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            skipped['malformed rows'] += 1
            continue
        caption, image = fields[0].strip(), fields[1].strip()
        if '://' in image:
            skipped['urls (not downloaded)'] += 1
        elif not os.path.isfile(osp.join(image_root, image)):
            skipped['missing images'] += 1
        else:
            yield dict(image=image, caption=caption)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.tsv):
        raise UserError(f'tsv file {args.tsv} does not exist')
    if args.image_root and not osp.isdir(args.image_root):
        raise UserError(f'image root {args.image_root} is not a folder')
    skipped = Counter()
    with open(args.tsv, encoding='utf-8', errors='replace') as stream:
        if args.has_header:
            next(stream, None)
        written = write_jsonl(args.out, tsv_rows(stream, args.image_root, skipped))
    print(summary(f'wrote {written} rows to {args.out}', skipped))


if __name__ == '__main__':
    run_tool(main)
