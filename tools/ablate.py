"""Run an objective-ablation grid: every (objective mix, data scale) cell pretrained, then the
same fixed evaluation; one table and plot (docs/ablations.md).

python tools/ablate.py configs/ablations/grid_scenes32.py --out work_dirs/ablations \
    [--cells plm_pim_500,pim_500] [--dry-run] [--print-commands [cell|stage]]

Every stage is a plain tools/train.py, tools/test.py, tools/probe_suite.py (or held-out loss)
process with its output under DIR/<cell>/<stage>/. Rerunning skips finished stages and cells
and resumes a killed pretraining from its last checkpoint. ``--print-commands`` prints the
unfinished work as shell lines for a cluster launcher (one per cell, or one per stage); run
this tool again afterwards to collect their results. Writes DIR/results.{csv,md,png}; exits 1
naming the stages that failed.
"""

from __future__ import annotations

import argparse
import os.path as osp
import signal
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import run_tool

TOOLS = osp.dirname(osp.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run an objective x data-scale ablation grid.')
    parser.add_argument('grid', help='grid file, e.g. configs/ablations/grid_scenes32.py')
    parser.add_argument('--out', required=True, help='folder of the cells and the results')
    parser.add_argument('--cells', help='comma-separated cell names (default: every cell)')
    parser.add_argument(
        '--print-commands',
        nargs='?',
        const='cell',
        choices=('cell', 'stage'),
        help="print the unfinished stages' commands, one line per cell (default) or per "
        'stage, and run nothing',
    )
    parser.add_argument(
        '--dry-run', action='store_true', help='print what each cell would do and run nothing'
    )
    return parser.parse_args(argv)


def show_plan(cells) -> None:
    from davinci_zoo.ablation.execute import stage_state
    from davinci_zoo.ablation.plan import cell_command_lines

    for cell in cells:
        taught = ', '.join(sorted(cell.teaches)) or 'neither writes nor paints'
        print(f'{cell.name}: {cell.steps} steps on scale {cell.size} ({taught})')
        for stage in cell.stages:
            state = stage_state(cell, stage)
            print(f'  {stage.name}: {state}')
            if state == 'run':
                print('    ' + cell_command_lines(cell, True, [stage])[0])


def main(argv=None):
    from davinci_zoo.ablation.execute import pending, run_cell
    from davinci_zoo.ablation.grid import read_grid
    from davinci_zoo.ablation.plan import cell_command_lines, plan_cells, select_cells
    from davinci_zoo.ablation.results import write_results
    from davinci_zoo.ablation.stages import Launch

    args = parse_args(argv)
    grid = read_grid(args.grid)
    cells = plan_cells(grid, Launch(sys.executable, TOOLS, args.out))
    chosen = select_cells(cells, args.cells)
    if args.print_commands:
        for cell in chosen:
            for line in cell_command_lines(cell, args.print_commands == 'stage', pending(cell)):
                print(line)
        return 0
    if args.dry_run:
        show_plan(chosen)
        return 0
    begin = time.perf_counter()
    print(f'grid {args.grid}: {len(chosen)} of {len(cells)} cells, out {args.out}', flush=True)
    failures = []
    for index, cell in enumerate(chosen, 1):
        print(f'[{index}/{len(chosen)}] {cell.name}', flush=True)
        outcome = run_cell(cell, lambda line: print('  ' + line, flush=True))
        if outcome.failed:
            failures.append(f'{cell.name}/{outcome.failed[0]}')
    paths = write_results(cells, args.out)
    print(f'results: {", ".join(paths)} ({time.perf_counter() - begin:.1f} s)')
    if failures:
        print(f'error: {len(failures)} stage(s) failed: {", ".join(failures)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    # terminated, the tool ends its running stage too (SystemExit stops the stage's process)
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    sys.exit(run_tool(main))
