"""The repository stands alone: no file points outside it, and cited doc sections exist."""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import REPO

# Built from parts so that this file does not name them itself.
OUTSIDE = ['..' + '/shared', 'work' + '/shared'] + [
    name + '.md' for name in ('DAVINCI', 'DESIGN', 'STYLE', 'STACK')
]
NUMBER = r'\d+(?:\.\d+)*'
# "docs/original.md section 4.2", "docs/stack.md sections 2.1, 2.2",
# "[original.md](original.md) sections 1.2-1.4", or a bare "section 8" inside a cited doc.
CITATION = re.compile(
    rf'(?:(?P<doc>(?:docs/)?[\w/-]+)\.md\)?,? )?sections? '
    rf'(?P<numbers>{NUMBER}(?:(?:, | and |-){NUMBER})*)'
)
HEADING = re.compile(rf'^#+\s+({NUMBER})\.?\s', re.MULTILINE)


def repository_files() -> list[str]:
    """Tracked files and new files git does not ignore (paths relative to the repository)."""
    try:
        listed = subprocess.run(
            ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('not a git checkout')
    return sorted({p for p in listed.decode().split('\0') if p and (REPO / p).is_file()})


def read_text(path: str) -> str | None:
    data = (REPO / path).read_bytes()
    return None if b'\0' in data else data.decode('utf-8', errors='replace')


def section_numbers(doc: str) -> set[str]:
    """The numbers of a doc's numbered headings ('## 4. Tasks' -> '4', '### 4.2 NLVR2')."""
    return set(HEADING.findall((REPO / 'docs' / doc).read_text()))


def citations(text: str, own_doc: str | None = None):
    """(doc under docs/, section number) for every section citation in ``text``; a bare
    "section N" cites ``own_doc``. Citations of a file that is not under docs/ are skipped
    unless written as docs/..., so a misspelt doc name fails."""
    for match in CITATION.finditer(text):
        doc = match['doc']
        if doc is None:
            if own_doc is None:
                continue
            doc = own_doc
        elif doc.startswith('docs/'):
            doc = doc.removeprefix('docs/') + '.md'
        elif (REPO / 'docs' / f'{doc}.md').is_file():
            doc = f'{doc}.md'
        else:
            continue
        for number in re.findall(NUMBER, match['numbers']):
            yield doc, number


def test_no_file_points_outside_the_repository():
    found = []
    for path in repository_files():
        text = read_text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            found += [f'{path}:{number}: {name}' for name in OUTSIDE if name in line]
    assert not found, 'say it in docs/ instead:\n' + '\n'.join(found)


def test_cited_doc_sections_exist():
    cited_docs = ('original.md', 'stack.md')
    assert all(section_numbers(doc) for doc in cited_docs)
    missing = []
    for path in repository_files():
        text = read_text(path)
        if text is None:
            continue
        own = path.removeprefix('docs/') if path.removeprefix('docs/') in cited_docs else None
        for doc, number in citations(text, own):
            if not (REPO / 'docs' / doc).is_file():
                missing.append(f'{path}: docs/{doc} does not exist')
            elif number not in section_numbers(doc):
                missing.append(f'{path}: docs/{doc} has no section {number}')
    assert not missing, '\n'.join(sorted(set(missing)))


def test_citation_parsing():
    text = (
        'see docs/original.md sections 1.3, 1.4 and docs/stack.md section 2.1; '
        '([original.md](original.md) sections 1.2-1.4); docs/orignal' + '.md section 3; '
        'README.md section 2; as in section 8.5.'
    )
    assert list(citations(text, own_doc='original.md')) == [
        ('original.md', '1.3'),
        ('original.md', '1.4'),
        ('stack.md', '2.1'),
        ('original.md', '1.2'),
        ('original.md', '1.4'),
        ('orignal.md', '3'),
        ('original.md', '8.5'),
    ]
    assert {'1', '1.3', '4.2', '8.12'} <= section_numbers('original.md')
    assert '8.13' not in section_numbers('original.md')
