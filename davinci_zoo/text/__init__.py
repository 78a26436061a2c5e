"""Text: the BERT WordPiece vocabulary and tokenizer (no hub downloads)."""

from .wordpiece import VOCAB_SHA256, WordPieceTokenizer, default_vocab_path

__all__ = ['VOCAB_SHA256', 'WordPieceTokenizer', 'default_vocab_path']
