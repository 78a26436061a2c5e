"""BERT's uncased WordPiece tokenizer over the shipped bert-base-uncased vocabulary.

Written here so the core needs neither ``transformers`` nor a hub download; a test checks it
against Hugging Face's BertTokenizer token for token. Special ids (bert-base-uncased):
``[PAD]`` 0, ``[unused1]`` 2 (DaVinci's image BOS), ``[UNK]`` 100, ``[CLS]`` 101 (text BOS),
``[SEP]`` 102 (text EOS), ``[MASK]`` 103.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from functools import lru_cache
from pathlib import Path

VOCAB_SHA256 = '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3'
MAX_WORD_CHARS = 100


def default_vocab_path() -> Path:
    """The bert-base-uncased vocabulary shipped as package data."""
    return Path(__file__).resolve().parent.parent / 'assets' / 'bert-base-uncased-vocab.txt'


def file_sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=4)
def _read_vocab(path: str) -> tuple[str, ...]:
    return tuple(Path(path).read_text(encoding='utf-8').splitlines())


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith('P')


def _is_cjk(code: int) -> bool:
    return any(
        low <= code <= high
        for low, high in (
            (0x4E00, 0x9FFF),
            (0x3400, 0x4DBF),
            (0x20000, 0x2A6DF),
            (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF),
            (0xF900, 0xFAFF),
            (0x2F800, 0x2FA1F),
        )
    )


def _clean(text: str) -> str:
    kept = []
    for char in text:
        code = ord(char)
        if code in (0, 0xFFFD):
            continue
        if char in ' \t\n\r' or unicodedata.category(char) == 'Zs':
            kept.append(' ')
        elif unicodedata.category(char) in ('Cc', 'Cf'):
            continue
        elif _is_cjk(code):
            kept.append(f' {char} ')
        else:
            kept.append(char)
    return ''.join(kept)


def basic_tokens(text: str) -> list[str]:
    """Lower-case, strip accents, split on whitespace and punctuation (BERT's BasicTokenizer)."""
    tokens = []
    for word in _clean(text).split():
        word = unicodedata.normalize('NFD', word.lower())
        word = ''.join(char for char in word if unicodedata.category(char) != 'Mn')
        current = ''
        for char in word:
            if _is_punctuation(char):
                if current:
                    tokens.append(current)
                tokens.append(char)
                current = ''
            else:
                current += char
        if current:
            tokens.append(current)
    return tokens


class WordPieceTokenizer:
    """Text <-> ids with BERT's uncased WordPiece.

    Args:
        vocab_file: a vocabulary file, one token per line (default: the shipped
            bert-base-uncased vocabulary).
        expected_sha256: refuse a vocabulary with another hash (None accepts any file).

    Example:
        >>> tokenizer = WordPieceTokenizer()
        >>> tokenizer.encode('a small red circle')
        [101, 1037, 2235, 2417, 4418, 102]
    """

    pad_id, image_bos_id, unk_id, cls_id, sep_id, mask_id = 0, 2, 100, 101, 102, 103

    def __init__(
        self,
        vocab_file: str | os.PathLike | None = None,
        expected_sha256: str | None = VOCAB_SHA256,
    ) -> None:
        path = Path(vocab_file) if vocab_file else default_vocab_path()
        if not path.is_file():
            raise FileNotFoundError(f'vocabulary file {path} does not exist')
        if expected_sha256 is not None and file_sha256(path) != expected_sha256:
            raise ValueError(
                f'vocabulary {path} has sha256 {file_sha256(path)}, expected '
                f'{expected_sha256} (the bert-base-uncased vocabulary)'
            )
        self.vocab_file = str(path)
        self.tokens = _read_vocab(str(path))
        self.ids = {token: index for index, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens (no special tokens)."""
        pieces = []
        for word in basic_tokens(text):
            pieces.extend(self._word_pieces(word))
        return pieces

    def _word_pieces(self, word: str) -> list[str]:
        if len(word) > MAX_WORD_CHARS:
            return ['[UNK]']
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else '##' + word[start:end]
                if piece in self.ids:
                    break
                end -= 1
            if end == start:
                return ['[UNK]']
            pieces.append(piece)
            start = end
        return pieces

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> ids; with special tokens ``[CLS] ... [SEP]``."""
        ids = [self.ids[piece] for piece in self.tokenize(text)]
        return [self.cls_id, *ids, self.sep_id] if add_special_tokens else ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Ids -> text, joining ``##`` continuations (special tokens dropped by default)."""
        special = {self.pad_id, self.cls_id, self.sep_id, self.mask_id, self.image_bos_id}
        words: list[str] = []
        for index in ids:
            index = int(index)
            if skip_special_tokens and index in special:
                continue
            token = self.tokens[index] if 0 <= index < len(self.tokens) else '[UNK]'
            if token.startswith('##') and words:
                words[-1] += token[2:]
            else:
                words.append(token)
        return ' '.join(words)
