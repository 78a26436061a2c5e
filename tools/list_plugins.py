"""List every registered component, the plugins that failed to load, and name conflicts.

python tools/list_plugins.py            # a readable table
python tools/list_plugins.py --json     # {"components": [...], "failed": [...], "conflicts": [...]}
python tools/list_plugins.py --registry "image tokenizer" --pattern "VQ*"
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from davinci_zoo.cli import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='List davinci-zoo components and plugins.')
    parser.add_argument('--json', action='store_true', help='machine-readable output')
    parser.add_argument('--registry', help='only this registry, e.g. "model" or "objective"')
    parser.add_argument('--pattern', default='*', help='shell pattern on component names')
    return parser.parse_args(argv)


def collect(registry=None, pattern='*') -> dict:
    """The listing as plain data (what ``--json`` prints)."""
    from davinci_zoo import list_components
    from davinci_zoo.plugins import conflicts, failed_plugins

    components = [vars(info) for info in list_components(registry, pattern)]
    failed = [
        {'entry_point': f.entry_point, 'provider': str(f.provider), 'error': f.error}
        for f in failed_plugins()
    ]
    return {'components': components, 'failed': failed, 'conflicts': conflicts()}


def print_table(listing: dict) -> None:
    rows = [
        (c['registry'], c['name'], f'{c["provider"]} {c["version"]}'.strip(), c['module'])
        for c in listing['components']
    ]
    header = ('registry', 'name', 'provider', 'module')
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print('  '.join(str(cell).ljust(width) for cell, width in zip(row, widths)) + '  ' + row[3])
    print(f'\n{len(rows)} components')
    for failure in listing['failed']:
        print(
            f'FAILED plugin {failure["entry_point"]!r} ({failure["provider"]}): {failure["error"]}'
        )
    for conflict in listing['conflicts']:
        print(
            f'CONFLICT {conflict["registry"]}::{conflict["name"]} provided by '
            + ' and '.join(conflict['providers'])
        )


def main(argv=None):
    args = parse_args(argv)
    try:
        listing = collect(args.registry, args.pattern)
    except ValueError as error:
        from davinci_zoo.cli import UserError

        raise UserError(str(error)) from None
    if args.json:
        print(json.dumps(listing, indent=2))
    else:
        print_table(listing)
    return listing


if __name__ == '__main__':
    run_tool(main)
