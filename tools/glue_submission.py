"""Complete a GLUE server submission folder with WNLI.tsv and AX.tsv, check it, zip it.

python tools/glue_submission.py DIR [--glue-root data/glue] [--wnli-label 0|1]
    [--mnli-checkpoint CKPT [--mnli-config configs/downstream/glue/mnli.py]] [--zip]

DIR holds the task files the GLUE configs' test runs write (``test_dataloader.dataset.split=test
test_evaluator.format_only=True``, docs/tasks/glue.md). This tool writes:

- ``WNLI.tsv``: one label for every row of ``<glue-root>/WNLI/test.tsv``, the majority label of
  ``WNLI/dev.tsv`` unless ``--wnli-label`` says otherwise;
- ``AX.tsv`` (with ``--mnli-checkpoint``): the MNLI model's predictions on the diagnostic set
  ``<glue-root>/diagnostic/diagnostic.tsv``, through ``tools/test.py`` and the MNLI config;

then prints one line per server file (rows, or what is wrong) and, with ``--zip``, writes
``DIR/submission.zip`` of the eleven files. Exit status 1 when a file is missing or wrong.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout

from davinci_zoo.cli import UserError, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Complete and check a GLUE submission folder.')
    parser.add_argument('directory', help='the submission folder (the task configs write there)')
    parser.add_argument('--glue-root', default='data/glue', help='the glue_data folder')
    parser.add_argument(
        '--wnli-label',
        type=int,
        choices=(0, 1),
        help="WNLI's label for every test row (default: the majority of WNLI/dev.tsv)",
    )
    parser.add_argument('--mnli-checkpoint', help='an MNLI fine-tuned checkpoint: writes AX.tsv')
    parser.add_argument(
        '--mnli-config',
        default=osp.join(REPO, 'configs', 'downstream', 'glue', 'mnli.py'),
        help='the config of that checkpoint',
    )
    parser.add_argument('--zip', action='store_true', help='write DIR/submission.zip')
    return parser.parse_args(argv)


def predict_ax(args) -> None:
    """AX.tsv: tools/test.py with the MNLI config on the diagnostic set, format only."""
    if not osp.isfile(args.mnli_checkpoint):
        raise UserError(f'checkpoint {args.mnli_checkpoint} does not exist')
    command = [
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'),
        args.mnli_config,
        args.mnli_checkpoint,
        '--work-dir',
        osp.join(args.directory, 'ax_run'),
        '--cfg-options',
        'test_dataloader.dataset.split=diagnostic',
        f'test_dataloader.dataset.data_root={osp.join(args.glue_root, "MNLI")}',
        'test_evaluator.format_only=True',
        f'test_evaluator.out_dir={args.directory}',
    ]
    if subprocess.run(command).returncode:
        raise UserError('tools/test.py failed on the diagnostic set (its error is above)')


def write_zip(directory: str, names: list[str]) -> str:
    import zipfile

    path = osp.join(directory, 'submission.zip')
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(osp.join(directory, name), arcname=name)
    return path


def main(argv=None):
    args = parse_args(argv)
    from davinci_zoo.evaluation.glue_submission import check_submission, write_wnli

    os.makedirs(args.directory, exist_ok=True)
    if args.mnli_checkpoint:
        predict_ax(args)
    try:
        path, label = write_wnli(args.directory, args.glue_root, args.wnli_label)
    except ValueError as error:
        raise UserError(str(error)) from None
    print(f'wrote {path}: label {label} for every row')
    report = check_submission(args.directory, args.glue_root)
    for check in report:
        print(f'{check.name:12} {"ok " if check.ok else "BAD"} {check.message}')
    if not all(check.ok for check in report):
        print('the submission is incomplete: see the BAD lines', file=sys.stderr)
        return 1
    if args.zip:
        print(f'wrote {write_zip(args.directory, [check.name for check in report])}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main))
