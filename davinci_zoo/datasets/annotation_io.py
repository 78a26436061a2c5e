"""Reading and writing annotation files for the dataset converters (tools/dataset_converters)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable

from ..cli import UserError


def read_json(path: str, what: str):
    """The parsed content of a JSON file; one-line UserError when it is missing or broken."""
    if not os.path.isfile(path):
        raise UserError(f'{what} {path} does not exist')
    with open(path, encoding='utf-8') as stream:
        try:
            return json.load(stream)
        except json.JSONDecodeError as error:
            raise UserError(f'{what} {path} is not valid JSON: {error}') from None


def write_jsonl(path: str, rows: Iterable[dict]) -> int:
    """Write one JSON object per line (via a temporary file, so no half-written output is
    left behind); return the number of rows."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    count = 0
    with open(f'{path}.tmp', 'w', encoding='utf-8') as stream:
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False) + '\n')
            count += 1
    os.replace(f'{path}.tmp', path)
    return count


def summary(done: str, skipped: Counter) -> str:
    """``done`` plus what was skipped: ``'wrote 10 rows to x.jsonl; skipped 2 (1 empty
    captions, 1 missing images)'``."""
    line = done
    if skipped:
        reasons = ', '.join(f'{count} {reason}' for reason, count in sorted(skipped.items()))
        line += f'; skipped {sum(skipped.values())} ({reasons})'
    return line
