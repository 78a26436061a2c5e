"""DaVinci: one encoder-decoder that writes (image -> text) and paints (text -> image codes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from ...registry import BACKBONES, IMAGE_TOKENIZERS, MODELS, OBJECTIVES
from ...text import WordPieceTokenizer
from .embeddings import ImageGridEmbeddings
from .generation import GenerationConfig
from .inference import check_painting_config
from .transformer import DaVinciDecoder, DaVinciEncoder, PaintingRelativeBias
from .vocabulary import IMAGE, JointVocabulary

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@MODELS.register_module()
class DaVinci(BaseModel):
    """The prefix-LM encoder-decoder of "Write and Paint" (ICLR 2023), built from registries.

    Args:
        image_embedder: BACKBONES config; gets ``out_dim=hidden_size`` and ``image_size``.
        image_tokenizer: IMAGE_TOKENIZERS config; frozen. Its codebook size and code grid at
            ``image_size`` decide the visual vocabulary and the decoder's image positions.
        objectives: OBJECTIVES configs (``PrefixLM``, ``PrefixImage``, ``TextPrefixLM`` ...),
            each with a ``weight``; every loss is logged under its own name.
        hidden_size, num_heads, intermediate_size, encoder_layers, decoder_layers, dropout,
            layer_norm_eps: the transformer (base: 768, 12, 3072, 6, 6, 0.1, 1e-12).
        max_text_positions: text positions of encoder and decoder (the original: 257).
        image_size: the training resolution of both the embedder and the tokenizer.
        relative_bias_in_prefix_image: also add the 2-D relative bias when the encoder sees a
            prefix (top part) of an image; off by default, as in the original.
        image_grid_embeddings: give decoder image tokens learned row + column embeddings of
            the code they predict, besides the 1-D positions (ours, after DALL-E; off by
            default, as in the original, whose weights then load one to one).
        painting_relative_bias: a learned 2-D relative position bias in the decoder's
            self-attention among a painting's tokens, by the cells they predict (ours; off by
            default, as in the original).
        image_embedding_init: ``'normal'`` (BERT's, the original's) or ``'codebook'``: the
            visual rows of the word embeddings start as a fixed random projection of the
            tokenizer's :meth:`~davinci_zoo.models.image_tokenizer.ImageTokenizer.code_vectors`
            at the same scale, so codes that draw alike start alike (ours; the tokenizer's
            weights must be loaded when the model is built).
        label_smoothing: of the cross-entropy losses.
        initializer_range: std of the normal initialisation of the transformer's Linear and
            Embedding weights (BERT's name; 0.02 as in the original, tuned there for width 768).
            Narrow models train faster with a wider start (the quick start's 256 wide: 0.04).
        painting_generation: generation keywords for the paintings of ``mode='predict'``
            (:class:`~.generation.GenerationConfig`, e.g. ``dict(guidance_scale=3.0)``);
            None: greedy.
        reranked_painting: in ``mode='predict'``, also paint ``num_samples`` samples per
            caption and keep the best by ``scorer`` (keywords of
            :func:`~.prediction.sampled_and_reranked`, e.g. ``dict(num_samples=8)``), so
            ``tools/test.py`` reports paint accuracy with re-ranking too. None: greedy only.
        vocab_file: WordPiece vocabulary (default: the shipped bert-base-uncased file).

    Batches: ``images`` [B, 3, H, W] in [0, 1] with ``caption`` (list of B strings) for
    image-text objectives; ``text`` (list of strings) for text-only ones; optional ``codes``
    [B, h, w] precomputed by the tokenizer.
    """

    def __init__(
        self,
        image_embedder: dict,
        image_tokenizer: dict,
        objectives: list[dict],
        hidden_size: int = 768,
        num_heads: int = 12,
        intermediate_size: int = 3072,
        encoder_layers: int = 6,
        decoder_layers: int = 6,
        dropout: float = 0.1,
        layer_norm_eps: float = 1e-12,
        max_text_positions: int = 257,
        image_size: int = 256,
        relative_bias_in_prefix_image: bool = False,
        image_grid_embeddings: bool = False,
        painting_relative_bias: bool = False,
        image_embedding_init: str = 'normal',
        label_smoothing: float = 0.0,
        initializer_range: float = 0.02,
        painting_generation: dict | None = None,
        reranked_painting: dict | None = None,
        vocab_file: str | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.text_tokenizer = WordPieceTokenizer(vocab_file)
        self.image_tokenizer = IMAGE_TOKENIZERS.build(image_tokenizer).eval().requires_grad_(False)
        self.image_size, self.hidden_size = image_size, hidden_size
        self.vocab = JointVocabulary(
            len(self.text_tokenizer),
            self.image_tokenizer.codebook_size,
            self.image_tokenizer.code_grid(image_size, image_size),
        )
        self.image_embedder = BACKBONES.build(
            dict(image_embedder, out_dim=hidden_size, image_size=image_size)
        )
        self.encoder = DaVinciEncoder(
            self.vocab.size,
            hidden_size,
            num_heads,
            intermediate_size,
            encoder_layers,
            max_text_positions,
            self.image_embedder.grid,
            layer_norm_eps,
            dropout,
        )
        decoder_positions = max(max_text_positions, self.vocab.image_positions)
        self.decoder = DaVinciDecoder(
            self.vocab.size,
            hidden_size,
            num_heads,
            intermediate_size,
            decoder_layers,
            decoder_positions,
            self.encoder.embeddings.word_embeddings,
            layer_norm_eps,
            dropout,
            self._image_grid_embeddings(hidden_size) if image_grid_embeddings else None,
            self._painting_bias(num_heads, decoder_layers) if painting_relative_bias else None,
        )
        self.objectives = torch.nn.ModuleList(OBJECTIVES.build(cfg) for cfg in objectives)
        self.relative_bias_in_prefix_image = relative_bias_in_prefix_image
        self.label_smoothing = label_smoothing
        self.painting_generation = GenerationConfig(**(painting_generation or {}))
        check_painting_config(self.painting_generation)
        self.reranked_painting = None if reranked_painting is None else dict(reranked_painting)
        self.register_buffer('pixel_mean', torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer('pixel_std', torch.tensor(CLIP_STD).view(1, 3, 1, 1), False)
        self.initializer_range = initializer_range
        self._init_weights()
        if image_embedding_init == 'codebook':
            self._init_image_embeddings_from_codebook()
        elif image_embedding_init != 'normal':
            raise ValueError(
                f"image_embedding_init must be 'normal' or 'codebook', got {image_embedding_init!r}"
            )

    def _image_grid_embeddings(self, hidden_size: int) -> ImageGridEmbeddings:
        image_ids_from = self.vocab.id_range(IMAGE)[0]
        return ImageGridEmbeddings(
            self.vocab.code_grid, hidden_size, image_ids_from, self.vocab.image_bos_id
        )

    def _painting_bias(self, num_heads: int, num_layers: int) -> PaintingRelativeBias:
        image_ids_from = self.vocab.id_range(IMAGE)[0]
        return PaintingRelativeBias(
            self.vocab.code_grid, num_heads, num_layers, image_ids_from, self.vocab.image_bos_id
        )

    def _init_weights(self) -> None:
        """BERT's initialisation for the transformer: normal(initializer_range) weights, zero
        biases."""
        for module in (*self.encoder.modules(), *self.decoder.modules()):
            if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                torch.nn.init.normal_(module.weight, std=self.initializer_range)
                if isinstance(module, torch.nn.Linear):
                    torch.nn.init.zeros_(module.bias)

    @torch.no_grad()
    def _init_image_embeddings_from_codebook(self) -> None:
        """Visual word embeddings <- centred code vectors [K, C] @ a seeded Gaussian [C, D],
        scaled to the std (``initializer_range``) of the normal initialisation."""
        vectors = self.image_tokenizer.code_vectors().float()
        vectors = vectors - vectors.mean(0)
        generator = torch.Generator().manual_seed(0)
        projection = torch.randn(vectors.shape[1], self.hidden_size, generator=generator)
        embedded = vectors @ projection
        embedded = embedded * (self.initializer_range / embedded.std().clamp_min(1e-12))
        start, end = self.vocab.id_range(IMAGE)
        weight = self.encoder.embeddings.word_embeddings.weight
        weight[start:end] = embedded.to(weight.dtype)

    def train(self, mode: bool = True):
        super().train(mode)
        self.image_tokenizer.eval()  # frozen: BatchNorm/EMA statistics never move
        return self

    # -- inputs ------------------------------------------------------------------------------
    def tokenize(self, texts: list[str], max_tokens: int | None = None, device=None):
        """Strings -> ids [B, T] (``[CLS] text [SEP]``; ``[CLS]`` alone for "") and mask [B, T]."""
        sequences = []
        for text in texts:
            ids = self.text_tokenizer.encode(text) if text else [self.vocab.text_bos_id]
            if max_tokens is not None and len(ids) > max_tokens:
                ids = ids[: max_tokens - 1] + [self.vocab.text_eos_id]
            sequences.append(ids)
        return pad_sequences(sequences, self.vocab.pad_id, device or self.pixel_mean.device)

    @torch.no_grad()
    def image_codes(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> [B, h, w] codes of the frozen tokenizer."""
        return self.image_tokenizer.encode(images)

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] (H may be a top strip) -> tokens [B, 1 + N, D]."""
        return self.image_embedder((images - self.pixel_mean) / self.pixel_std)

    def encode(
        self,
        images: torch.Tensor | None,
        text_ids: torch.Tensor | None,
        text_mask: torch.Tensor | None,
        full_image: bool = True,
    ):
        """Run the encoder: -> (memory [B, S, D], memory mask [B, S]).

        The 2-D relative bias applies to full images, and to prefix images when the model
        was built with ``relative_bias_in_prefix_image``.
        """
        tokens, grid = None, None
        if images is not None and images.shape[-2] > 0:
            tokens = self.embed_image(images)
            if full_image or self.relative_bias_in_prefix_image:
                grid = self.image_embedder.token_grid(images.shape[-2], images.shape[-1])
        return self.encoder(text_ids, text_mask, tokens, grid)

    # -- decoding ----------------------------------------------------------------------------
    def decoder_hidden(self, ids, positions, memory, memory_mask, padding_mask=None):
        """Teacher-forced decoder states [B, L, D] for decoder inputs ids [B, L]."""
        memory_kv = self.decoder.memory_keys_values(memory)
        hidden, _ = self.decoder(ids, positions, memory_kv, memory_mask, padding_mask)
        return hidden

    def decoder_logits(self, ids, positions, memory, memory_mask, modality: str, padding_mask=None):
        """Teacher-forced logits [B, L, |modality ids|] for decoder inputs ids [B, L]."""
        hidden = self.decoder_hidden(ids, positions, memory, memory_mask, padding_mask)
        return self.decoder.head(hidden, self.vocab.id_range(modality))

    def decoder_loss(
        self,
        ids,
        positions,
        memory,
        memory_mask,
        targets: torch.Tensor,
        modality: str,
        padding_mask=None,
    ) -> torch.Tensor:
        """Teacher-forced mean cross-entropy of decoder inputs ids [B, L] against global ids
        targets [B, L] (-100 = skip), with logits computed only where a target is scored."""
        hidden = self.decoder_hidden(ids, positions, memory, memory_mask, padding_mask)
        scored = targets != -100
        logits = self.decoder.head(hidden[scored], self.vocab.id_range(modality))
        return self.sequence_loss(logits[None], targets[scored][None], modality)

    def sequence_loss(
        self, logits: torch.Tensor, targets: torch.Tensor, modality: str
    ) -> torch.Tensor:
        """Mean cross-entropy of logits [B, L, V_m] against global ids [B, L] (-100 = skip)."""
        start = self.vocab.id_range(modality)[0]
        local = torch.where(targets >= 0, targets - start, targets)
        return F.cross_entropy(
            logits.flatten(0, 1),
            local.flatten(),
            ignore_index=-100,
            label_smoothing=self.label_smoothing,
        )

    # -- mmengine ----------------------------------------------------------------------------
    def forward(
        self, images=None, caption=None, text=None, codes=None, mode: str = 'loss', **kwargs
    ):
        batch = dict(images=images, caption=caption, text=text, codes=codes, **kwargs)
        if mode == 'loss':
            return self.loss(batch)
        if mode == 'predict':
            from .prediction import predict

            return predict(self, batch)
        raise ValueError(f'unknown mode {mode!r}; use "loss" or "predict"')

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        if batch.get('images') is not None and batch.get('codes') is None:
            batch['codes'] = self.image_codes(batch['images'])
        losses = {}
        for objective in self.objectives:
            losses.update(objective(self, batch))
        if not losses:
            raise ValueError('no objective found its inputs in this batch')
        return losses


def pad_sequences(sequences: list[list[int]], pad_id: int, device=None):
    """Ragged id lists -> ids [B, T] padded with ``pad_id`` and mask [B, T] (1 = real)."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids.to(device), mask.to(device)


__all__ = ['DaVinci', 'IMAGE', 'pad_sequences']
