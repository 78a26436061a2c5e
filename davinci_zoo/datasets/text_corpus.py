"""A text-only corpus (the original's C4 branch): jsonl documents or plain text lines."""

from __future__ import annotations

from collections.abc import Iterator

from ..registry import DATASETS
from .bad_rows import BadRow
from .image_text import first_present, parse_json_object
from .streaming import RowStream, open_text

JSON_SUFFIXES = ('.jsonl', '.json', '.jsonl.gz', '.json.gz')
TEXT_SUFFIXES = ('.txt', '.txt.gz')


@DATASETS.register_module()
class TextCorpus(RowStream):
    """Documents streamed from jsonl files (one object per line, C4's ``.json.gz`` too) or
    plain text files (one document per line; blank lines are skipped).

    Args:
        files: files, directories, globs or brace patterns; see :class:`.RowStream` for the
            pipeline, the split over ranks and workers, passes and the bad-row limit.
        text_key: key of the document in jsonl objects.
        **stream_args: pipeline, seed, shuffle, infinite, rank, world_size,
            max_bad_fraction, min_rows, length.

    The pipeline starts from ``dict(text=document, key='file:line')``; the original cleaned
    documents like captions and kept 512 words (``PreCaption(keys=['text'], max_words=512)``).
    A line that is not JSON or lacks ``text_key`` is a bad row.
    """

    suffixes = JSON_SUFFIXES + TEXT_SUFFIXES

    def __init__(self, files, text_key: str = 'text', **stream_args) -> None:
        super().__init__(files, **stream_args)
        self.text_key = text_key

    def read_rows(self, path: str) -> Iterator[tuple[str, object]]:
        is_json = path.endswith(JSON_SUFFIXES)
        number = 0
        try:
            with open_text(path) as stream:
                for number, line in enumerate(stream, 1):
                    if line.strip():
                        yield f'{path}:{number}', (is_json, line)
        except (OSError, EOFError) as error:
            yield f'{path}:{number + 1}', BadRow(f'file unreadable from here on ({error})')

    def row_fields(self, raw: tuple[bool, str]) -> dict:
        is_json, line = raw
        text = line
        if is_json:
            text = first_present(parse_json_object(line), [self.text_key], 'text')
            if not isinstance(text, str):
                raise BadRow(f'{self.text_key} is not a string')
        return dict(text=text)
