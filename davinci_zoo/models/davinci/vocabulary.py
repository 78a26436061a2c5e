"""How text ids and image codes share one id space (docs/original.md section 1.5).

The visual vocabulary is the image tokenizer's codebook, never a fixed 1024.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TEXT, IMAGE, ALL = 'text', 'image', 'all'


@dataclass(frozen=True)
class JointVocabulary:
    """Text ids [0, text_size), then image code c at id text_size + c.

    Attributes:
        text_size: WordPiece vocabulary size (30522 for bert-base-uncased).
        codebook_size: the image tokenizer's codebook size.
        code_grid: (h, w) codes of a full image; a painting is h*w codes after the image BOS.
    """

    text_size: int
    codebook_size: int
    code_grid: tuple[int, int]
    pad_id: int = 0
    image_bos_id: int = 2  # [unused1]
    text_bos_id: int = 101  # [CLS]
    text_eos_id: int = 102  # [SEP]

    @property
    def size(self) -> int:
        return self.text_size + self.codebook_size

    @property
    def image_positions(self) -> int:
        """Decoder positions a full painting needs: the BOS plus h*w codes."""
        return self.code_grid[0] * self.code_grid[1] + 1

    def id_range(self, modality: str) -> tuple[int, int]:
        """[start, end) of the ids a modality may produce (ALL: the whole vocabulary)."""
        ranges = {
            TEXT: (0, self.text_size),
            IMAGE: (self.text_size, self.size),
            ALL: (0, self.size),
        }
        return ranges[modality]

    def codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        return codes + self.text_size

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        codes = ids - self.text_size
        if (codes < 0).any() or (codes >= self.codebook_size).any():
            raise ValueError('ids outside the image range cannot be turned into codes')
        return codes
