"""Measure speed; every mode prints one JSON object (ratios are measured within one run).

    python tools/benchmark.py tokenizer configs/tokenizers/vqgan_f4_scenes32.py [--batch 32]

Modes:
    tokenizer   encode and decode images/s of the config's image tokenizer (random weights
                unless --checkpoint is given), fp32, at the config's image size.
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import platform
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import UserError, load_config, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='davinci-zoo benchmarks (JSON output)')
    modes = parser.add_subparsers(dest='mode', required=True)
    tokenizer = modes.add_parser('tokenizer', help='image tokenizer encode/decode speed')
    tokenizer.add_argument('config')
    tokenizer.add_argument('--checkpoint', help='tokenizer weights (.safetensors / .pth)')
    tokenizer.add_argument('--batch', type=int, default=16)
    tokenizer.add_argument('--image-size', type=int, help='default: from the config')
    tokenizer.add_argument('--repeats', type=int, default=5)
    tokenizer.add_argument('--threads', type=int, help='torch threads (default: torch default)')
    return parser.parse_args(argv)


def best_seconds(function, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls, after one warm-up call."""
    function()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def machine_info() -> dict:
    import torch

    return dict(
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        device='cuda' if torch.cuda.is_available() else 'cpu',
    )


def tokenizer_config(cfg) -> dict:
    if 'model' in cfg and 'image_tokenizer' in cfg.model:
        return cfg.model.image_tokenizer
    if 'image_tokenizer' in cfg:
        return cfg.image_tokenizer
    raise UserError('the config has neither model.image_tokenizer nor image_tokenizer')


def benchmark_tokenizer(args) -> dict:
    import torch

    from davinci_zoo.registry import IMAGE_TOKENIZERS

    cfg = load_config(args.config)
    tokenizer = IMAGE_TOKENIZERS.build(tokenizer_config(cfg)).eval()
    if args.checkpoint:
        tokenizer.load_weights(args.checkpoint)
    size = args.image_size or cfg.get('image_size')
    if not size:
        raise UserError('give --image-size (the config has no image_size)')
    images = torch.rand(args.batch, 3, size, size)
    with torch.no_grad():
        codes = tokenizer.encode(images)
        encode = best_seconds(lambda: tokenizer.encode(images), args.repeats)
        decode = best_seconds(lambda: tokenizer.decode(codes), args.repeats)
    return dict(
        mode='tokenizer',
        config=args.config,
        tokenizer=type(tokenizer).__name__,
        parameters=sum(p.numel() for p in tokenizer.parameters()),
        image_size=size,
        code_grid=list(codes.shape[1:]),
        codebook_size=tokenizer.codebook_size,
        batch=args.batch,
        repeats=args.repeats,
        dtype='float32',
        encode_images_per_s=args.batch / encode,
        decode_images_per_s=args.batch / decode,
        **machine_info(),
    )


def main(argv=None):
    args = parse_args(argv)
    if getattr(args, 'threads', None):
        import torch

        torch.set_num_threads(args.threads)
    result = {'tokenizer': benchmark_tokenizer}[args.mode](args)
    print(json.dumps(result, indent=2))
    return result


if __name__ == '__main__':
    run_tool(main)
