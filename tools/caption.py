"""Write a caption for each image with a trained DaVinci.

python tools/caption.py CONFIG CHECKPOINT IMAGE [IMAGE ...] [--beams N] [--max-tokens N]
    [--min-tokens N] [--prompt TEXT] [--device cpu]

Prints one line per image: ``path<TAB>caption``. Images are read like the training data
(RGB, centre-cropped, resized to the model's image size). Greedy decoding by default;
``--beams 2 --max-tokens 20 --min-tokens 5 --prompt "a picture of" --count-prompt`` is the
original's captioning setting.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import UserError, positive_int, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Caption images with a davinci-zoo checkpoint.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file (.pth or .safetensors)')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--beams', type=positive_int, default=1, help='beam width (1: greedy)')
    parser.add_argument('--max-tokens', type=positive_int, default=30, help='longest caption')
    parser.add_argument('--min-tokens', type=int, default=0, help='no [SEP] before this many')
    parser.add_argument(
        '--count-prompt',
        action='store_true',
        help='--max-tokens/--min-tokens include [CLS] and the prompt, as in the original',
    )
    parser.add_argument('--prompt', default='', help='decoder prefix, e.g. "a picture of"')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 ...')
    return parser.parse_args(argv)


def check_images(paths: list[str]) -> None:
    """Fail before the model is built when an image is missing or does not decode."""
    from PIL import Image

    for path in paths:
        if not osp.isfile(path):
            raise UserError(f'image {path} does not exist')
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            raise UserError(f'image {path} cannot be read ({error})') from None


def main(argv=None):
    args = parse_args(argv)
    check_images(args.images)
    if not osp.isfile(args.checkpoint):
        raise UserError(f'checkpoint {args.checkpoint} does not exist')
    from davinci_zoo.apis import InputError, caption, init_model

    try:
        model = init_model(args.config, args.checkpoint, args.device)
        captions = caption(
            model,
            args.images,
            prompt=args.prompt,
            num_beams=args.beams,
            max_length=args.max_tokens,
            min_length=args.min_tokens,
            count_prompt=args.count_prompt,
        )
    except InputError as error:
        raise UserError(str(error)) from None
    for path, text in zip(args.images, captions):
        print(f'{path}\t{text}')
    return captions


if __name__ == '__main__':
    run_tool(main)
