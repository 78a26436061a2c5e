"""OpenAI CLIP's text tokenizer: byte-level BPE over lower-cased words.

The merges come from a local file in the format of OpenAI's ``bpe_simple_vocab_16e6.txt.gz``:
gzip-compressed UTF-8 text, a header line, then one merge ``left right`` per line, best first
(a symbol that ends a word carries the suffix ``</w>``). The vocabulary, in id order, is:

1. the 256 byte symbols (each byte shown as one printable character, see :func:`byte_symbols`),
2. the same 256 symbols with ``</w>``,
3. one entry per merge (the two sides joined),
4. ``<|startoftext|>`` and ``<|endoftext|>``.

OpenAI uses the first 48894 merges, which gives its 49408 ids. Text is HTML-unescaped,
whitespace-collapsed and lower-cased (OpenAI also runs ``ftfy.fix_text``, which only changes
mis-decoded text; it is not used here).
"""

from __future__ import annotations

import gzip
import html
import os
from functools import lru_cache

import regex
import torch

START, END, WORD_END = '<|startoftext|>', '<|endoftext|>', '</w>'
OPENAI_MERGES = 48894
# Special tokens, contractions, runs of letters, single digits, runs of other non-space marks.
PIECES = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)


PRINTABLE_BYTES = (*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100))


@lru_cache(maxsize=1)
def byte_to_symbol() -> dict[int, str]:
    """Byte value -> the printable character standing for it, in vocabulary order.

    Printable Latin-1 bytes (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for themselves and
    come first, in byte order; the other 68 bytes (controls, space, soft hyphen ...) follow in
    byte order and stand for the characters U+0100, U+0101, ... in that order.
    """
    others = [b for b in range(256) if b not in PRINTABLE_BYTES]
    mapping = {b: chr(b) for b in PRINTABLE_BYTES}
    mapping.update({b: chr(0x100 + i) for i, b in enumerate(others)})
    return mapping


def byte_symbols() -> list[str]:
    """The 256 byte characters in vocabulary order (ids 0..255)."""
    return list(byte_to_symbol().values())


def read_merges(path: str | os.PathLike, limit: int | None = OPENAI_MERGES) -> list[tuple]:
    """The first ``limit`` merges (all when None) of a gzip merges file, best first."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'CLIP BPE merges file {path} does not exist (OpenAI: bpe_simple_vocab_16e6.txt.gz)'
        )
    try:
        with gzip.open(path, 'rt', encoding='utf-8') as handle:
            lines = handle.read().split('\n')[1:]  # the first line is a header
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(
            f'CLIP BPE merges file {path} is not gzip-compressed text: {error}'
        ) from None
    merges = []
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f'{path} line {number}: a merge is two symbols, got {line!r}')
        merges.append(tuple(parts))
    return merges[:limit] if limit is not None else merges


class CLIPTokenizer:
    """Texts -> CLIP token ids.

    Args:
        merges_file: path of the gzip merges file.
        num_merges: how many merges to use (OpenAI: 48894); None uses every line.
        context_length: length of the id rows :meth:`tokenize` returns at most.
    """

    def __init__(
        self,
        merges_file: str | os.PathLike,
        num_merges: int | None = OPENAI_MERGES,
        context_length: int = 77,
    ) -> None:
        merges = read_merges(merges_file, num_merges)
        symbols = byte_symbols()
        vocabulary = symbols + [s + WORD_END for s in symbols]
        vocabulary += [left + right for left, right in merges] + [START, END]
        self.ids = {token: index for index, token in enumerate(vocabulary)}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.context_length = context_length
        self.start_id, self.end_id = self.ids[START], self.ids[END]
        self._cache: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def bpe(self, word: str) -> list[str]:
        """One word (already byte symbols) -> its BPE symbols, the last ending in ``</w>``."""
        if word in self._cache:
            return self._cache[word]
        parts = [*word[:-1], word[-1] + WORD_END]
        while len(parts) > 1:
            pairs = {(a, b) for a, b in zip(parts, parts[1:])}
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float('inf')))
            if best not in self.ranks:
                break
            parts = merge_pair(parts, best)
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """Text -> ids, without the start and end tokens."""
        ids = []
        for piece in PIECES.findall(clean(text)):
            if piece in (START, END):
                ids.append(self.ids[piece])
                continue
            word = ''.join(byte_to_symbol()[b] for b in piece.encode('utf-8'))
            ids.extend(self.ids[symbol] for symbol in self.bpe(word))
        return ids

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts -> ids [B, L] (``<|startoftext|> ... <|endoftext|>``, zero-padded, L at most
        ``context_length``; longer texts are cut and keep their end token) and the index of
        each row's end token [B]."""
        rows = []
        for text in texts:
            row = [self.start_id, *self.encode(text), self.end_id]
            if len(row) > self.context_length:
                row = row[: self.context_length - 1] + [self.end_id]
            rows.append(row)
        length = max(len(row) for row in rows)
        ids = torch.zeros(len(rows), length, dtype=torch.long)
        for index, row in enumerate(rows):
            ids[index, : len(row)] = torch.tensor(row)
        return ids, torch.tensor([len(row) - 1 for row in rows])


def merge_pair(parts: list[str], pair: tuple[str, str]) -> list[str]:
    """Join every left-to-right occurrence of ``pair`` in ``parts``."""
    merged, index = [], 0
    while index < len(parts):
        if index + 1 < len(parts) and (parts[index], parts[index + 1]) == pair:
            merged.append(parts[index] + parts[index + 1])
            index += 2
        else:
            merged.append(parts[index])
            index += 1
    return merged


def clean(text: str) -> str:
    """HTML-unescape (twice, as OpenAI), collapse whitespace, lower-case."""
    text = html.unescape(html.unescape(text))
    return ' '.join(text.split()).lower()
