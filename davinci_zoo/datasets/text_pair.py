"""Tokenise a sentence pair as BERT does: ``[CLS] a [SEP] b [SEP]``, cut longest-first."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmcv.transforms import BaseTransform

from ..models.parts import ComponentArgumentError
from ..registry import TRANSFORMS
from ..text.wordpiece import TokenizedText, WordPieceTokenizer, shared_tokenizer


def longest_first(first: int, second: int, budget: int) -> tuple[int, int]:
    """Lengths kept of two id sequences so that their sum fits ``budget``: one id at a time
    comes off the longer one (off the second on a tie), as BERT's ``longest_first``."""
    if budget < 0:
        raise ValueError(f'no room for a pair in {budget} ids')
    while first + second > budget:
        if first > second:
            first -= 1
        else:
            second -= 1
    return first, second


def cut(text: TokenizedText, length: int) -> TokenizedText:
    """The first ``length`` ids of ``text`` (``num_words``: the words they come from)."""
    if length >= len(text.ids):
        return text
    words = text.words[:length]
    return TokenizedText(text.ids[:length], words, int(words[-1]) + 1 if length else 0)


def join_pair(first: TokenizedText, second: TokenizedText) -> TokenizedText:
    """``a [SEP] b`` as one text (``sequences`` adds the outer ``[CLS]`` and ``[SEP]``): the
    ``[SEP]`` is a word of its own after a's words, b's words follow it."""
    sep = torch.tensor([WordPieceTokenizer.sep_id])
    offset = first.num_words
    ids = torch.cat([first.ids, sep, second.ids])
    words = torch.cat([first.words, torch.tensor([offset]), second.words + offset + 1])
    return TokenizedText(ids, words, offset + 1 + second.num_words)


@TRANSFORMS.register_module()
class TokenizeTextPair(BaseTransform):
    """Tokenise ``results[keys[0]]`` and, when the sample has it, ``results[keys[1]]`` into one
    text ``a [SEP] b`` (the original's GLUE input, docs/original.md section 4.5).

    Sets ``results[keys[0] + '_tokens']`` (what ``PackDaVinciInputs`` packs) and, for a
    pair, ``results[keys[0]] = 'a [SEP] b'`` (the data sample's text). Texts are cut to
    ``max_tokens`` with ``[CLS]`` and the ``[SEP]`` s counted: a single text keeps its first
    ids, a pair loses ids from the end of its longer text first (BERT's ``longest_first``).

    Args:
        keys: the first and the second text's fields.
        max_tokens: longest sequence (the original's max_length: 128).
        vocab_file: WordPiece vocabulary (default: the shipped bert-base-uncased file).
    """

    def __init__(
        self,
        keys: Sequence[str] = ('text', 'text_pair'),
        max_tokens: int = 128,
        vocab_file: str | None = None,
    ) -> None:
        if len(keys) != 2:
            raise ComponentArgumentError(f'TokenizeTextPair takes two keys, got {keys!r}')
        if max_tokens < 3:
            raise ComponentArgumentError(
                f'max_tokens={max_tokens} leaves no room for [CLS] a [SEP] b [SEP]'
            )
        self.keys, self.max_tokens = tuple(keys), max_tokens
        self.tokenizer = shared_tokenizer(vocab_file)

    def transform(self, results: dict) -> dict:
        key, pair_key = self.keys
        if not isinstance(results.get(key), str):
            raise KeyError(f'TokenizeTextPair: the sample has no text {key!r}')
        first = self.tokenizer.encode_words(results[key])
        if results.get(pair_key) is None:
            results[f'{key}_tokens'] = cut(first, self.max_tokens - 2)
            return results
        second = self.tokenizer.encode_words(results[pair_key])
        kept = longest_first(len(first.ids), len(second.ids), self.max_tokens - 3)
        results[f'{key}_tokens'] = join_pair(cut(first, kept[0]), cut(second, kept[1]))
        results[key] = f'{results[key]} [SEP] {results[pair_key]}'
        return results


__all__ = ['TokenizeTextPair', 'cut', 'join_pair', 'longest_first']
