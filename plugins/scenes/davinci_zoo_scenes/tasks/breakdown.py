"""Accuracy of a fine-tuned scene task by template and by seen / unseen colour-shape pairs.

    python -m davinci_zoo_scenes.tasks.breakdown CONFIG CHECKPOINT [--out FILE.json]

runs CHECKPOINT on CONFIG's test split of a scene VQAv2, NLVR2 or SNLI-VE task (the files of
``python -m davinci_zoo_scenes.tasks``) and prints JSON: the accuracy over all items, over the
items whose scene and text use only colour/shape pairs seen in training (``seen``), over those
that show or name a held-out pair (``unseen``, listed in the task's ``scenes_task.json``), and
per template of the generator, each with its count. VQA items count as right when the answer
is the scene's (its ten answers are one normalised answer, so this equals VQA accuracy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

from davinci_zoo.cli import UserError, add_cfg_options_argument, apply_cfg_options, run_tool

from . import nlvr2, snli_ve, vqa


def _items(task: str, dataset) -> dict:
    """sample_idx -> (template, key) of every row: the key is what ``scenes_task.json`` lists
    (NLVR2 identifier, SNLI-VE pairID, VQA question id)."""
    items = {}
    for position, row in enumerate(dataset.rows):
        if task == 'vqa':
            items[position] = (vqa.template_of(row.raw['question']), row.raw['question_id'])
            continue
        fields = json.loads(row[2])  # JSON lines: (file, line number, line)
        if task == 'nlvr2':
            items[position] = (nlvr2.template_of(fields['sentence']), fields['identifier'])
        else:
            items[position] = (snli_ve.template_of(fields['sentence2']), fields['pairID'])
    return items


def _labels_right(sample) -> bool:
    return int(sample.pred_label) == int(sample.gt_label)


def _answer_right(sample) -> bool:
    return sample.pred_answer == sample.gt_answer[0]


def task_of(cfg) -> str:
    """'vqa', 'nlvr2' or 'snli_ve' from the test dataset's type; UserError for another."""
    kind = cfg.test_dataloader.dataset.type
    tasks = {'VQAv2': 'vqa', 'NLVR2': 'nlvr2', 'SNLIVE': 'snli_ve'}
    if kind not in tasks:
        raise UserError(f'the breakdown reads VQAv2, NLVR2 or SNLIVE test sets, not {kind}')
    return tasks[kind]


def _meta(folder: str) -> dict:
    path = os.path.join(folder, 'scenes_task.json')
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: the breakdown needs a scene task written by '
            'python -m davinci_zoo_scenes.tasks'
        )
    with open(path) as stream:
        return json.load(stream)


def _unseen_keys(task: str, dataset) -> set:
    """The keys (identifiers, pairIDs, question ids) of the items with a held-out pair."""
    if task == 'vqa':
        meta = _meta(dataset.data_root)
        return {key for subset in dataset.subsets for key in meta['unseen'].get(subset, [])}
    # every split's keys (the generator never reuses a key in another split), so an annotation
    # file holding part of a split (e.g. the first 1,000 training rows) is scored too
    ann_file = dataset.rows[0][0]
    return set().union(*_meta(os.path.dirname(ann_file))['unseen'].values())


def summarise(rows) -> dict:
    """rows: (template, unseen, right) per item -> accuracy and count overall, seen, unseen,
    per template (accuracies in percent, like the task metrics)."""

    def score(chosen):
        chosen = list(chosen)
        accuracy = 100.0 * sum(right for *_, right in chosen) / len(chosen) if chosen else None
        return dict(accuracy=accuracy, count=len(chosen))

    by_template = defaultdict(list)
    for row in rows:
        by_template[row[0]].append(row)
    return dict(
        all=score(rows),
        seen=score(row for row in rows if not row[1]),
        unseen=score(row for row in rows if row[1]),
        templates={name: score(chosen) for name, chosen in sorted(by_template.items())},
    )


def breakdown(config: str, checkpoint: str, options: dict | None = None) -> dict:
    """Run ``checkpoint`` on ``config``'s test split (``options``: as ``--cfg-options``);
    :func:`summarise`'s dict plus the task."""
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from davinci_zoo.apis import init_model
    from davinci_zoo.cli import load_config

    cfg = load_config(config)
    apply_cfg_options(cfg, options)
    task = task_of(cfg)
    init_default_scope('davinci_zoo')
    model = init_model(cfg, checkpoint)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    dataset = loader.dataset
    unseen, items = _unseen_keys(task, dataset), _items(task, dataset)
    right = _answer_right if task == 'vqa' else _labels_right
    rows = []
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                template, key = items[int(sample.sample_idx)]
                rows.append((template, key in unseen, right(sample)))
    return dict(task=task, config=config, checkpoint=checkpoint, **summarise(rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m davinci_zoo_scenes.tasks.breakdown',
        description='Scene task accuracy by template and by seen / unseen colour-shape pairs.',
    )
    parser.add_argument('config', help='a configs/downstream/*/*_scenes32.py config')
    parser.add_argument('checkpoint', help='the fine-tuned checkpoint')
    parser.add_argument('--out', help='also write the JSON here')
    add_cfg_options_argument(parser)
    args = parser.parse_args(argv)
    result = breakdown(args.config, args.checkpoint, args.cfg_options)
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, 'w') as stream:
            stream.write(text + '\n')
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
