"""Paint texts with a trained DaVinci: one PNG grid, and/or one PNG per painting.

python tools/paint.py CONFIG CHECKPOINT TEXT [TEXT ...] [--out grid.png] [--out-dir DIR]
    [--samples N] [--rerank [--scorer NAME [--scorer-options KEY=VALUE ...]]] [--seed S]
    [--top-k K] [--top-p P] [--temperature T] [--greedy | --beams N] [--device cpu]

``--out``: one grid row per text, one column per sample. ``--out-dir``: each painting as
``DIR/<text>_<sample>.png`` (text and sample numbered from 0; ``000_00.png`` is the first
text's first, or with ``--rerank`` best, sample) and ``DIR/paintings.tsv`` listing file, text
and score. Give at least one of the two. Samples are drawn (seeded: ``--seed``, default
0) unless ``--greedy`` or ``--beams``; ``--rerank`` scores them with the model's own caption
likelihood, sorts each row best first and prints the scores (``text<TAB>score ...``);
``--scorer`` names another SCORERS entry (e.g. ``CLIPScorer`` from the davinci-zoo-clip plugin)
and ``--scorer-options`` its arguments (``weights=clip.safetensors merges=bpe.txt.gz``).
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from mmengine.config import DictAction

from davinci_zoo.cli import UserError, positive_int, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Paint texts with a davinci-zoo checkpoint.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file (.pth or .safetensors)')
    parser.add_argument('texts', nargs='+', help='texts to paint (quote each one)')
    parser.add_argument('--out', help='PNG file for the grid')
    parser.add_argument('--out-dir', help='folder for one PNG per painting and paintings.tsv')
    parser.add_argument('--samples', type=positive_int, default=1, help='paintings per text')
    parser.add_argument('--rerank', action='store_true', help='sort samples by caption likelihood')
    parser.add_argument(
        '--scorer', help='SCORERS name used by --rerank (default: CaptionLikelihoodScorer)'
    )
    parser.add_argument(
        '--scorer-options',
        nargs='+',
        action=DictAction,
        default={},
        metavar='KEY=VALUE',
        help='arguments of --scorer, e.g. weights=clip.safetensors merges=bpe.txt.gz',
    )
    parser.add_argument('--seed', type=int, default=0, help='sampling seed')
    parser.add_argument('--top-k', type=int, default=0, help='sample among the k best codes')
    parser.add_argument('--top-p', type=float, default=1.0, help='nucleus sampling mass')
    parser.add_argument('--temperature', type=float, default=1.0, help='sampling temperature')
    decoding = parser.add_mutually_exclusive_group()
    decoding.add_argument('--greedy', action='store_true', help='greedy decoding (one sample)')
    decoding.add_argument('--beams', type=positive_int, default=1, help='beam search width')
    parser.add_argument(
        '--guidance-scale',
        type=float,
        default=1.0,
        help='classifier-free guidance (1 = off; needs a model trained with caption dropout)',
    )
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 ...')
    return parser.parse_args(argv)


def generation_options(args) -> dict:
    """The API's generation keywords for these arguments."""
    if args.greedy or args.beams > 1:
        return dict(num_beams=args.beams, guidance_scale=args.guidance_scale)
    return dict(
        guidance_scale=args.guidance_scale,
        do_sample=True,
        seed=args.seed,
        top_k=args.top_k,
        top_p=args.top_p,
        temperature=args.temperature,
    )


def build_scorer(args):
    """The scorer of ``--scorer`` / ``--scorer-options``, built (None: the default scorer)."""
    if args.scorer is None:
        if args.scorer_options:
            raise UserError('--scorer-options needs --scorer')
        return None
    if not args.rerank:
        raise UserError('--scorer is used by --rerank; add --rerank')
    from davinci_zoo.models.davinci.reranking import build_scorer as build

    try:  # an unknown name is a one-line error with the closest names
        return build(args.scorer, **args.scorer_options)
    except TypeError as error:  # a missing or unknown argument of the scorer
        raise UserError(f'--scorer {args.scorer}: {error}') from None


def main(argv=None):
    args = parse_args(argv)
    for text in args.texts:
        if not text.strip():
            raise UserError('an empty text cannot be painted; give each text in quotes')
    if args.out is None and args.out_dir is None:
        raise UserError('give --out grid.png, --out-dir DIR or both')
    if args.out is not None and not args.out.lower().endswith('.png'):
        raise UserError(f'--out {args.out} must name a .png file')
    if args.out_dir is not None and osp.isfile(args.out_dir):
        raise UserError(f'--out-dir {args.out_dir} is a file; name a folder')
    if not osp.isfile(args.checkpoint):
        raise UserError(f'checkpoint {args.checkpoint} does not exist')
    from davinci_zoo.apis import InputError, init_model, paint_tensors
    from davinci_zoo.visualization import image_grid, save_png

    scorer = build_scorer(args)
    try:
        model = init_model(args.config, args.checkpoint, args.device)
        images, scores = paint_tensors(
            model, args.texts, args.samples, args.rerank, scorer, **generation_options(args)
        )
    except InputError as error:
        raise UserError(str(error)) from None
    for index, text in enumerate(args.texts):
        shown = '' if scores is None else '\t' + ' '.join(f'{s:.4f}' for s in scores[index])
        print(f'{text}{shown}')
    if args.out is not None:
        save_png(image_grid([list(row) for row in images]), args.out)
        print(f'wrote {args.out} ({len(args.texts)} texts x {args.samples} samples)')
    if args.out_dir is not None:
        files = save_paintings(images, args.texts, scores, args.out_dir)
        print(f'wrote {len(files)} paintings and paintings.tsv to {args.out_dir}')
    return images


def save_paintings(images, texts: list[str], scores, out_dir: str) -> list[str]:
    """Each painting of images [B, N, 3, H, W] as ``out_dir/<b>_<n>.png``; the list of files,
    texts and scores (empty without scores) as ``out_dir/paintings.tsv``. -> the PNG paths."""
    from davinci_zoo.checkpoint import atomic_write
    from davinci_zoo.visualization import image_grid, save_png

    os.makedirs(out_dir, exist_ok=True)
    rows, files = ['file\ttext\tscore'], []
    for b, text in enumerate(texts):
        for n, painting in enumerate(images[b]):
            name = f'{b:03d}_{n:02d}.png'
            save_png(image_grid([[painting]], padding=0), osp.join(out_dir, name))
            score = '' if scores is None else f'{float(scores[b, n]):.4f}'
            rows.append(f'{name}\t{" ".join(text.split())}\t{score}')
            files.append(osp.join(out_dir, name))
    table = '\n'.join(rows) + '\n'
    atomic_write(osp.join(out_dir, 'paintings.tsv'), lambda s: s.write(table.encode()))
    return files


if __name__ == '__main__':
    run_tool(main)
