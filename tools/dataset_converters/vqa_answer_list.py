"""VQAv2 annotation files -> the candidate answer list of the VQA head (a JSON list).

    python tools/dataset_converters/vqa_answer_list.py \
        data/vqa/v2_mscoco_train2014_annotations.json data/vqa/v2_mscoco_val2014_annotations.json \
        data/vqa/answer_list.json [--min-count 9] [--max-answers N]

Each question votes for its ``multiple_choice_answer`` (the most common of its ten human
answers), normalised as the official evaluation normalises predictions (``'Two'`` -> ``'2'``).
Answers with at least ``--min-count`` votes are kept, the most voted first (ties in
alphabetical order), at most ``--max-answers``. On train2014 + val2014 with ``--min-count 9``
this is the recipe of the usual 3,129-answer list (docs/tasks/vqa.md). Annotations that are
not objects or lack a string ``multiple_choice_answer``, and answers empty once normalised,
are skipped and counted.
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from collections import Counter

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from davinci_zoo.cli import UserError, positive_int, run_tool  # noqa: E402
from davinci_zoo.datasets.annotation_io import read_json, summary  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='VQAv2 annotations -> candidate answer list.')
    parser.add_argument('annotations', nargs='+', help='v2_mscoco_<subset>_annotations.json files')
    parser.add_argument('out', help='output .json (a list of answers)')
    parser.add_argument('--min-count', type=positive_int, default=9, help='fewest votes kept')
    parser.add_argument('--max-answers', type=positive_int, help='keep at most this many')
    return parser.parse_args(argv)


def count_answers(paths: list[str], skipped: Counter) -> Counter:
    """Votes per normalised ``multiple_choice_answer`` over the files' annotations."""
    from davinci_zoo.evaluation.vqa import normalize_answer

    votes = Counter()
    for path in paths:
        content = read_json(path, 'VQA annotation file')
        if not isinstance(content, dict) or not isinstance(content.get('annotations'), list):
            raise UserError(f'{path} must hold an object with an "annotations" list')
        for annotation in content['annotations']:
            answer = (
                annotation.get('multiple_choice_answer') if isinstance(annotation, dict) else None
            )
            if not isinstance(answer, str):
                skipped['annotations without a multiple_choice_answer'] += 1
                continue
            answer = normalize_answer(answer)
            if not answer:
                skipped['answers empty once normalised'] += 1
                continue
            votes[answer] += 1
    return votes


def answer_list(votes: Counter, min_count: int, max_answers: int | None) -> list[str]:
    """The answers with at least ``min_count`` votes, most voted first, then alphabetical."""
    kept = sorted((a for a, n in votes.items() if n >= min_count), key=lambda a: (-votes[a], a))
    return kept[:max_answers] if max_answers else kept


def main(argv=None) -> list[str]:
    args = parse_args(argv)
    skipped = Counter()
    votes = count_answers(args.annotations, skipped)
    answers = answer_list(votes, args.min_count, args.max_answers)
    if not answers:
        raise UserError(f'no answer has {args.min_count} votes; lower --min-count')
    from davinci_zoo.checkpoint import atomic_write

    data = json.dumps(answers, ensure_ascii=False).encode('utf-8')
    atomic_write(args.out, lambda stream: stream.write(data))
    covered = sum(votes[a] for a in answers) / max(1, sum(votes.values()))
    share = f'{100 * covered:.1f}%'
    print(summary(f'wrote {len(answers)} answers to {args.out} ({share} of the votes)', skipped))
    return answers


if __name__ == '__main__':
    run_tool(main)
