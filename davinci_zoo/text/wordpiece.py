"""BERT's uncased WordPiece over the shipped bert-base-uncased vocabulary, through the
``tokenizers`` library (Rust; no hub download).

The pipeline is BERT's: clean the text (drop control characters, pad CJK characters with
spaces), lower-case and strip accents, split on whitespace and punctuation, then greedy
longest-match WordPiece with ``[UNK]`` for words over 100 characters or without pieces. Special
ids (bert-base-uncased): ``[PAD]`` 0, ``[unused1]`` 2 (DaVinci's image BOS), ``[UNK]`` 100,
``[CLS]`` 101 (text BOS), ``[SEP]`` 102 (text EOS), ``[MASK]`` 103. Special tokens written in a
text (``"[CLS]"``) are split like any other text, never read as the special id.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import torch

VOCAB_SHA256 = '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3'
MAX_WORD_CHARS = 100


def default_vocab_path() -> Path:
    """The bert-base-uncased vocabulary shipped as package data."""
    return Path(__file__).resolve().parent.parent / 'assets' / 'bert-base-uncased-vocab.txt'


def file_sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class TokenizedText(NamedTuple):
    """One text, tokenised once (in the data workers).

    Attributes:
        ids: [n] WordPiece ids without ``[CLS]`` / ``[SEP]``.
        words: [n] for each id, the index of the word it comes from; words are the text's
            pieces between single spaces after stripping its ends (``text.strip().split(' ')``),
            so a split at word k keeps the ids whose word is below k.
        num_words: how many words the text has (0 for an empty or blank text).
    """

    ids: torch.Tensor
    words: torch.Tensor
    num_words: int


@lru_cache(maxsize=4)
def _fast_tokenizer(path: str):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {token: index for index, token in enumerate(_read_vocab(path))}
    tokenizer = Tokenizer(
        models.WordPiece(vocab, unk_token='[UNK]', max_input_chars_per_word=MAX_WORD_CHARS)
    )
    # strip_accents=None follows lowercase (True), as BERT's uncased tokenizer does
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


@lru_cache(maxsize=4)
def _read_vocab(path: str) -> tuple[str, ...]:
    return tuple(Path(path).read_text(encoding='utf-8').splitlines())


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
        >>> tokenizer.encode_words('a small red-circle').words.tolist()
        [0, 1, 2, 2, 2]
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
        self._tokenizer = _fast_tokenizer(str(path))

    def __len__(self) -> int:
        return len(self.tokens)

    def __getstate__(self) -> dict:  # the Rust tokenizer is rebuilt, not pickled
        return {'vocab_file': self.vocab_file}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state['vocab_file'], expected_sha256=None)

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens (no special tokens)."""
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> ids; with special tokens ``[CLS] ... [SEP]``."""
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return [self.cls_id, *ids, self.sep_id] if add_special_tokens else ids

    def encode_words(self, text: str) -> TokenizedText:
        """Text -> its ids and the word of each id (see :class:`TokenizedText`)."""
        text = text.strip()
        if not text:
            empty = torch.zeros(0, dtype=torch.long)
            return TokenizedText(empty, empty.clone(), 0)
        words = text.split(' ')
        encoding = self._tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
        return TokenizedText(
            torch.tensor(encoding.ids, dtype=torch.long),
            torch.tensor(encoding.word_ids, dtype=torch.long),
            len(words),
        )

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


@lru_cache(maxsize=4)
def shared_tokenizer(vocab_file: str | None = None) -> WordPieceTokenizer:
    """One :class:`WordPieceTokenizer` per vocabulary file and process."""
    return WordPieceTokenizer(vocab_file)
