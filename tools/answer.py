"""Answer questions about images with a VQA-fine-tuned DaVinci.

python tools/answer.py CONFIG CHECKPOINT IMAGE QUESTION [IMAGE QUESTION ...] [--top-k N]
    [--device cpu]

Prints one line per pair: ``image<TAB>question<TAB>answer``. Images are read like the data
pipelines read them (the short side resized to the model's image size, a centre crop); the
answer is the likeliest of the config's candidate answers (docs/tasks/vqa.md).
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import UserError, positive_int, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Answer questions about images (VQA).')
    parser.add_argument('config', help='config file path (a VQAHead model)')
    parser.add_argument('checkpoint', help='checkpoint file (.pth or .safetensors)')
    parser.add_argument('pairs', nargs='+', help='IMAGE QUESTION pairs')
    parser.add_argument('--top-k', type=positive_int, help='candidates re-ranked (default: config)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 ...')
    return parser.parse_args(argv)


def image_question_pairs(values: list[str]) -> tuple[list[str], list[str]]:
    """IMAGE QUESTION ... -> (images, questions); a one-line error for a bad pair."""
    if len(values) % 2:
        raise UserError(f'give IMAGE QUESTION pairs; got {len(values)} values (an odd number)')
    images, questions = values[0::2], values[1::2]
    for image, question in zip(images, questions):
        if not osp.isfile(image):
            raise UserError(f'image {image} does not exist')
        if not question.strip():
            raise UserError(f'the question about {image} is empty')
    return images, questions


def main(argv=None):
    args = parse_args(argv)
    images, questions = image_question_pairs(args.pairs)
    if not osp.isfile(args.checkpoint):
        raise UserError(f'checkpoint {args.checkpoint} does not exist')
    from davinci_zoo.apis import InputError, answer, init_model

    try:
        model = init_model(args.config, args.checkpoint, args.device)
        answers = answer(model, images, questions, top_k=args.top_k)
    except InputError as error:
        raise UserError(str(error)) from None
    for image, question, text in zip(images, questions, answers):
        print(f'{image}\t{question}\t{text}')
    return answers


if __name__ == '__main__':
    run_tool(main)
