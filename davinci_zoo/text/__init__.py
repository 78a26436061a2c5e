"""Text: the BERT WordPiece vocabulary and tokenizer (no hub downloads), and padded text batches."""

from .batch import TextBatch, pad_texts, sequences, tokenize_texts, word_span
from .wordpiece import (
    VOCAB_SHA256,
    TokenizedText,
    WordPieceTokenizer,
    default_vocab_path,
    shared_tokenizer,
)

__all__ = [
    'VOCAB_SHA256',
    'TextBatch',
    'TokenizedText',
    'WordPieceTokenizer',
    'default_vocab_path',
    'pad_texts',
    'sequences',
    'shared_tokenizer',
    'tokenize_texts',
    'word_span',
]
