"""Measure speed; every mode prints one JSON object (ratios are measured within one run).

    python tools/benchmark.py tokenizer configs/tokenizers/vqgan_f4_scenes32.py [--batch 32]
    OMP_NUM_THREADS=1 python tools/benchmark.py generation --threads 1   # davinci_base
    python tools/benchmark.py training configs/davinci_base.py --batch 8
    python tools/benchmark.py finetune configs/downstream/nlvr2/nlvr2_scenes32.py \
        --frozen '' image_embedder encoder.embeddings.word_embeddings,image_embedder

Modes:
    tokenizer   encode and decode images/s of the config's image tokenizer (random weights
                unless --checkpoint is given), fp32, at the config's image size.
    generation  decoding tokens/s of the config's DaVinci (seeded random weights, fp32):
                our engine, our engine without caches and Hugging Face's BertLMHeadModel
                with the same weights, for captioning (beam search) and painting (samples
                of one caption), after checking that ours and Hugging Face's agree
                (davinci_zoo/benchmarks/generation.py).
    training    one config's training step (seeded random weights, image codes given):
                samples/s, peak memory, FLOPs per step (FlopCounterMode) and utilisation
                against the best fp32 4096x4096 matrix product, tokenizer encoding on its
                own, per-op time profile (davinci_zoo/benchmarks/training.py).
    finetune    a task config's training step on its own training batches (seeded random
                weights), once per --frozen set of model parts (comma-separated
                frozen_parts; '' for none), in interleaved rounds: step time, samples/s,
                FLOPs and time relative to the first set
                (davinci_zoo/benchmarks/finetuning.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os.path as osp
import platform
import sys

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
    add_generation_parser(modes)
    training = modes.add_parser('training', help='training step speed and utilisation')
    training.add_argument('config')
    training.add_argument('--batch', type=int, default=8)
    training.add_argument('--steps', type=int, default=5, help='timed steps (the best counts)')
    training.add_argument('--threads', type=int, help='torch threads (default: torch default)')
    finetune = modes.add_parser('finetune', help="a task config's step with parts frozen")
    finetune.add_argument('config')
    finetune.add_argument(
        '--frozen',
        nargs='+',
        default=[''],
        help="sets of frozen_parts, each comma-separated ('' for none); the first is the base",
    )
    finetune.add_argument('--rounds', type=int, default=5, help='timed steps of each set')
    finetune.add_argument('--threads', type=int, help='torch threads (default: torch default)')
    return parser.parse_args(argv)


def add_generation_parser(modes) -> None:
    generation = modes.add_parser('generation', help='decoding speed vs Hugging Face BERT')
    generation.add_argument('--config', default='configs/davinci_base.py')
    for flag in ('--hidden-size', '--heads', '--intermediate-size', '--layers'):
        generation.add_argument(flag, type=int, help='shrink the model (default: the config)')
    generation.add_argument('--caption-batch', type=int, default=8)
    generation.add_argument('--caption-tokens', type=int, default=20)
    generation.add_argument('--beams', type=int, default=2)
    generation.add_argument('--paint-samples', type=int, default=16)
    generation.add_argument('--paint-tokens', type=int, help='default: the full code grid')
    generation.add_argument('--uncached-steps', type=int, default=64)
    generation.add_argument('--check-tokens', type=int, default=8)
    generation.add_argument('--repeats', type=int, default=1)
    generation.add_argument('--seed', type=int, default=0)
    generation.add_argument('--threads', type=int, help='torch threads (default: torch default)')


def machine_info(module=None) -> dict:
    """The versions, threads and processor, and the device the measured ``module`` ran on
    (these benchmarks run on the CPU, where models are built when no module is given: a GPU
    on the machine does not make them GPU numbers)."""
    import torch

    return dict(
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        device='cpu' if module is None else str(next(module.parameters()).device),
    )


def tokenizer_config(cfg) -> dict:
    if 'model' in cfg and 'image_tokenizer' in cfg.model:
        return cfg.model.image_tokenizer
    if 'image_tokenizer' in cfg:
        return cfg.image_tokenizer
    raise UserError('the config has neither model.image_tokenizer nor image_tokenizer')


def benchmark_tokenizer(args) -> dict:
    import torch

    from davinci_zoo.benchmarks.generation import best_seconds
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
        **machine_info(tokenizer),
    )


def benchmark_generation(args) -> dict:
    from davinci_zoo.benchmarks.generation import (
        GenerationSettings,
        build_random_model,
        run_generation_benchmark,
    )

    model = build_random_model(
        args.config, args.seed, args.hidden_size, args.heads, args.intermediate_size, args.layers
    )
    settings = GenerationSettings(
        caption_batch=args.caption_batch,
        caption_tokens=args.caption_tokens,
        beams=args.beams,
        paint_samples=args.paint_samples,
        paint_tokens=args.paint_tokens,
        uncached_steps=args.uncached_steps,
        check_tokens=args.check_tokens,
        repeats=args.repeats,
        seed=args.seed,
    )
    result = run_generation_benchmark(model, settings)
    return dict(result, config=args.config, **machine_info(model))


@contextlib.contextmanager
def errors_only_logging():
    """mmengine's logger at ERROR inside: the optimizer constructor's per-parameter notes
    would garble the JSON on stdout."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def benchmark_training(args) -> dict:
    from davinci_zoo.benchmarks.training import TrainingSettings, run_training_benchmark
    from davinci_zoo.engine.optim import build_optim_wrapper
    from davinci_zoo.registry import MODELS

    cfg = load_config(args.config)
    if (cfg.model.get('image_tokenizer') or {}).get('checkpoint'):
        cfg.model.image_tokenizer.checkpoint = None  # speed does not depend on the weights
    model = MODELS.build(cfg.model)
    with errors_only_logging():
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    settings = TrainingSettings(batch=args.batch, steps=args.steps)
    result = run_training_benchmark(model, optim_wrapper, cfg.model.image_size, settings)
    return dict(result, config=args.config, **machine_info(model))


def benchmark_finetune(args) -> dict:
    from davinci_zoo.benchmarks.finetuning import FinetuneSettings, run_finetune_benchmark

    cfg = load_config(args.config)
    if 'train_dataloader' not in cfg or 'head' not in cfg.get('model', {}):
        raise UserError(f'{args.config} is not a task config (a model head and a train_dataloader)')
    variants = [[part for part in spec.split(',') if part] for spec in args.frozen]
    with errors_only_logging():
        result = run_finetune_benchmark(cfg, variants, FinetuneSettings(rounds=args.rounds))
    return dict(result, config=args.config, **machine_info())


def main(argv=None):
    args = parse_args(argv)
    if getattr(args, 'threads', None):
        import torch

        torch.set_num_threads(args.threads)
    modes = {
        'tokenizer': benchmark_tokenizer,
        'generation': benchmark_generation,
        'training': benchmark_training,
        'finetune': benchmark_finetune,
    }
    result = modes[args.mode](args)
    print(json.dumps(result, indent=2))
    return result


if __name__ == '__main__':
    run_tool(main)
