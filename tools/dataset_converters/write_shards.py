"""Annotations + images -> webdataset tar shards of N samples each.

    python tools/dataset_converters/write_shards.py data/cc3m/train.jsonl \
        data/cc3m/shards --data-root data/cc3m --samples-per-shard 1000 --prefix cc3m

reads an ``{image, caption}`` json/jsonl file (the converters' output) and writes
``OUT_DIR/<prefix>-000000.tar, ...``. Each sample is ``<key>.<jpg|png|...>`` (the image file's
bytes, unchanged) and ``<key>.txt`` (a caption string) or ``<key>.json`` (``{"caption":
[...]}`` for a list). Rows without a usable image path or caption, or whose image is missing,
are skipped and counted. Read the shards with ``WebDatasetShards(shards='OUT_DIR')``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import os.path as osp
import sys
import tarfile
from collections import Counter

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from davinci_zoo.cli import UserError, run_tool  # noqa: E402
from davinci_zoo.datasets.annotation_io import summary  # noqa: E402
from davinci_zoo.datasets.image_text import read_annotation_rows  # noqa: E402

IMAGE_SUFFIXES = {'.jpg': 'jpg', '.jpeg': 'jpg', '.png': 'png', '.webp': 'webp'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='json/jsonl + images -> webdataset tar shards.')
    parser.add_argument('annotations', help='.json list or .jsonl of {image, caption} objects')
    parser.add_argument('out_dir', help='folder for the shards')
    parser.add_argument('--data-root', default='', help='folder the image paths start from')
    parser.add_argument('--samples-per-shard', type=int, default=1000)
    parser.add_argument('--prefix', default='shard', help='shard names: <prefix>-000000.tar')
    parser.add_argument('--image-key', default='image')
    parser.add_argument('--caption-key', default='caption')
    return parser.parse_args(argv)


def sample_members(row, data_root: str, image_key: str, caption_key: str):
    """``(image extension, image bytes, caption extension, caption bytes)``, or the reason
    the row cannot be used (a string)."""
    if isinstance(row, str):
        try:
            row = json.loads(row)
        except json.JSONDecodeError:
            return 'rows that are not JSON'
    if not isinstance(row, dict) or not isinstance(row.get(image_key), str):
        return 'rows without an image path'
    caption = row.get(caption_key)
    if isinstance(caption, str) and caption.strip():
        text = ('txt', caption.strip().encode('utf-8'))
    elif isinstance(caption, list) and caption and all(isinstance(c, str) for c in caption):
        text = ('json', json.dumps({'caption': caption}, ensure_ascii=False).encode('utf-8'))
    else:
        return 'rows without a caption'
    path = osp.join(data_root, row[image_key])
    extension = IMAGE_SUFFIXES.get(osp.splitext(path)[1].lower())
    if extension is None:
        return 'images of other formats'
    if not osp.isfile(path):
        return 'missing images'
    with open(path, 'rb') as stream:
        return (extension, stream.read(), *text)


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


class ShardWriter:
    """Writes samples into ``<out_dir>/<prefix>-NNNNNN.tar``, a new shard every ``size``."""

    def __init__(self, out_dir: str, prefix: str, size: int) -> None:
        self.out_dir, self.prefix, self.size = out_dir, prefix, size
        self.count, self.tar, self.paths = 0, None, []

    def add(self, image_ext: str, image: bytes, text_ext: str, text: bytes) -> None:
        if self.count % self.size == 0:
            self.close()
            path = osp.join(self.out_dir, f'{self.prefix}-{len(self.paths):06d}.tar')
            self.paths.append(path)
            self.tar = tarfile.open(path, 'w')  # noqa: SIM115 (closed by close())
        key = f'{self.count:09d}'
        add_member(self.tar, f'{key}.{image_ext}', image)
        add_member(self.tar, f'{key}.{text_ext}', text)
        self.count += 1

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.tar = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.samples_per_shard < 1:
        raise UserError('--samples-per-shard must be at least 1')
    try:
        rows = read_annotation_rows(args.annotations)
    except ValueError as error:
        raise UserError(str(error)) from None
    os.makedirs(args.out_dir, exist_ok=True)
    skipped = Counter()
    with ShardWriter(args.out_dir, args.prefix, args.samples_per_shard) as writer:
        for _, _, row in rows:
            members = sample_members(row, args.data_root, args.image_key, args.caption_key)
            if isinstance(members, str):
                skipped[members] += 1
            else:
                writer.add(*members)
    done = f'wrote {writer.count} samples in {len(writer.paths)} shards to {args.out_dir}'
    print(summary(done, skipped))


if __name__ == '__main__':
    run_tool(main)
