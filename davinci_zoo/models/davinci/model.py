"""DaVinci: one encoder-decoder that writes (image -> text) and paints (text -> image codes)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from ...registry import BACKBONES, HEADS, IMAGE_TOKENIZERS, MODELS, OBJECTIVES
from ...text import sequences, shared_tokenizer, tokenize_texts
from ..parts import (
    IMAGE_TOKENIZER,
    ComponentArgumentError,
    FrozenPartError,
    ObjectiveStarvedError,
    all_ranks_any,
    parts_used,
)
from .embeddings import ImageGridEmbeddings
from .layer_depth import layer_depth
from .pretrained import load_pretrained
from .transformer import DaVinciDecoder, DaVinciEncoder, PaintingRelativeBias
from .vocabulary import IMAGE, JointVocabulary


@MODELS.register_module()
class DaVinci(BaseModel):
    """The prefix-LM encoder-decoder of "Write and Paint" (ICLR 2023), built from registries.

    Pretraining is a list of ``objectives``; a task is a ``head``. Both use the same parts
    (``image_embedder``, ``encoder``, ``decoder`` and, only where something needs codes, the
    ``image_tokenizer``), whose keys are the same in every checkpoint, so a task starts from
    any pretraining checkpoint.

    Args:
        image_embedder: BACKBONES config; gets ``out_dim=hidden_size`` and ``image_size``.
        objectives: OBJECTIVES configs (``PrefixLM``, ``PrefixImage``, ``TextPrefixLM`` ...),
            each with a ``weight``; every loss is logged under its own name.
        head: HEADS config of the task (``WritePaintHead``, ``SequenceClassificationHead``
            ...): its ``loss`` joins the objectives' losses and ``mode='predict'`` is its
            ``predict``. A head whose constructor takes ``hidden_size`` gets the model's.
        image_tokenizer: IMAGE_TOKENIZERS config; frozen. Built only when an objective or the
            head needs image codes (their ``parts``); then its codebook size and code grid at
            ``image_size`` decide the visual vocabulary and the decoder's image positions.
        visual_vocab_size, image_code_grid: the tokenizer's codebook size and (h, w) code grid
            at ``image_size``. Needed when the tokenizer is not built (its weight file is then
            not read); checked against it when it is.
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
            weights must be loaded when the model is built). Ignored with ``pretrained``.
        label_smoothing: of the cross-entropy losses.
        initializer_range: std of the normal initialisation of the transformer's Linear and
            Embedding weights (BERT's name; 0.02 as in the original, tuned there for width 768).
            Narrow models train faster with a wider start (the quick start's 256 wide: 0.04).
        vocab_file: WordPiece vocabulary (default: the shipped bert-base-uncased file).
        pretrained: a checkpoint to start from (a task from pretraining): loaded strictly except
            that the head's keys may be new; image position tables are resized to this
            ``image_size`` (:func:`~.pretrained.load_pretrained`). None: the initialisation.
        frozen_parts: names of submodules that do not train, as ``named_modules`` spells
            them (``'image_embedder'``, ``'encoder.layers.0'``,
            ``'encoder.embeddings.word_embeddings'``): their parameters get no gradients (no
            weight gradients or optimizer updates; the backward pass stops at the lowest part
            that trains) and they stay in eval mode (BatchNorm statistics and dropout fixed).
            The word embeddings are tied to the decoder's output projection: freezing them
            freezes both.
        data_preprocessor: default ``DaVinciDataPreprocessor`` (CLIP normalisation).

    ``forward(inputs, data_samples, mode)``: ``inputs`` as
    :class:`~davinci_zoo.models.data_preprocessor.DaVinciDataPreprocessor` gives them
    (``images`` normalised [B, 3, H, W], texts as :class:`~davinci_zoo.text.TextBatch`
    under their keys, optional precomputed ``codes`` [B, h, w]); ``mode='loss'`` -> a dict of
    losses, ``mode='predict'`` -> the head's data samples.
    """

    def __init__(
        self,
        image_embedder: dict,
        objectives: list[dict] = (),
        head: dict | None = None,
        image_tokenizer: dict | None = None,
        visual_vocab_size: int | None = None,
        image_code_grid: tuple[int, int] | None = None,
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
        vocab_file: str | None = None,
        pretrained: str | None = None,
        frozen_parts: Sequence[str] = (),
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        if not isinstance(data_preprocessor, torch.nn.Module):
            data_preprocessor = MODELS.build(
                data_preprocessor or dict(type='DaVinciDataPreprocessor')
            )
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if image_embedding_init not in ('normal', 'codebook'):
            raise ComponentArgumentError(
                f"image_embedding_init must be 'normal' or 'codebook', got {image_embedding_init!r}"
            )
        self.text_tokenizer = shared_tokenizer(vocab_file)
        objectives = list(objectives)
        if pretrained:
            image_embedding_init = 'normal'  # the checkpoint's embeddings replace any start
        needs_codes = needs_image_tokenizer(objectives, head, image_embedding_init)
        self.image_tokenizer = self._build_image_tokenizer(image_tokenizer, needs_codes)
        self.image_size, self.hidden_size = image_size, hidden_size
        self.vocab = JointVocabulary(
            len(self.text_tokenizer),
            *self._visual_vocabulary(visual_vocab_size, image_code_grid, image_size),
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
        for objective in self.objectives:
            objective.attach(self)
        self.relative_bias_in_prefix_image = relative_bias_in_prefix_image
        self.label_smoothing = label_smoothing
        self.initializer_range = initializer_range
        self._init_weights()
        if image_embedding_init == 'codebook':
            self._init_image_embeddings_from_codebook()
        self.head = None if head is None else HEADS.build(with_hidden_size(head, hidden_size))
        if pretrained:
            load_pretrained(self, pretrained)
        self.frozen_parts = self._freeze(frozen_parts)
        self._train_steps = 0
        self._fired = [False] * len(self.objectives)

    @staticmethod
    def unbuilt_parts(cfg: dict) -> list[str]:
        """The configured parts a DaVinci built from ``cfg`` leaves out (so their weight
        files are not read): ``['image_tokenizer']`` when nothing needs image codes."""
        needed = needs_image_tokenizer(
            cfg.get('objectives', ()),
            cfg.get('head'),
            'normal' if cfg.get('pretrained') else cfg.get('image_embedding_init', 'normal'),
        )
        return [] if needed or not cfg.get('image_tokenizer') else [IMAGE_TOKENIZER]

    def _build_image_tokenizer(self, config: dict | None, needed: bool):
        """The frozen tokenizer when something needs codes, else None (its file is not read)."""
        if not needed:
            return None
        if config is None:
            raise ComponentArgumentError(
                'an objective or the head needs image codes (or image_embedding_init is '
                "'codebook'), but the model has no image_tokenizer config"
            )
        return IMAGE_TOKENIZERS.build(config).eval().requires_grad_(False)

    def _visual_vocabulary(self, size, grid, image_size) -> tuple[int, tuple[int, int]]:
        """(codebook size, code grid): from the tokenizer when built, else from the config."""
        grid = None if grid is None else tuple(grid)
        if self.image_tokenizer is None:
            if size is None or grid is None:
                raise ComponentArgumentError(
                    'without an image tokenizer (nothing needs image codes) the model needs '
                    'visual_vocab_size and image_code_grid in its config'
                )
            return size, grid
        built = self.image_tokenizer.codebook_size
        built_grid = self.image_tokenizer.code_grid(image_size, image_size)
        if (size is not None and size != built) or (grid is not None and grid != built_grid):
            raise ComponentArgumentError(
                f'visual_vocab_size={size}, image_code_grid={grid} disagree with the image '
                f'tokenizer ({built} codes, a {built_grid} grid at {image_size} px)'
            )
        return built, built_grid

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

    def _freeze(self, names: Sequence[str]) -> list[str]:
        """Stop the submodules ``names`` training (see ``frozen_parts``); returns the names."""
        if isinstance(names, str):
            raise FrozenPartError(
                f'frozen_parts is a list of submodule names, got the string {names!r}: '
                f'write [{names!r}]'
            )
        for name in names:
            try:
                part = self.get_submodule(name) if name else None  # '' would be the model
            except AttributeError:
                part = None
            if part is None:
                children = ', '.join(child for child, _ in self.named_children())
                raise FrozenPartError(
                    f'frozen_parts: the model has no submodule {name!r}; give a dotted name '
                    f'as named_modules() spells it, under one of: {children}'
                )
            part.requires_grad_(False)
        return list(names)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.image_tokenizer is not None:
            self.image_tokenizer.eval()  # frozen: BatchNorm/EMA statistics never move
        for name in getattr(self, 'frozen_parts', ()):  # set at the end of __init__
            self.get_submodule(name).eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.encoder.embeddings.word_embeddings.weight.device

    def get_layer_depth(self, param_name: str) -> tuple[int, int]:
        """(layer id, number of layers) of a parameter, for layer-wise lr decay (mmpretrain's
        ``LearningRateDecayOptimWrapperConstructor`` asks the model): :mod:`.layer_depth`."""
        return layer_depth(param_name, len(self.encoder.layers), len(self.decoder.layers))

    # -- inputs ------------------------------------------------------------------------------
    def tokenize(self, texts: list[str], max_tokens: int | None = None):
        """Strings -> ids [B, T] (``[CLS] text [SEP]``; ``[CLS]`` alone for "") and mask [B, T],
        on the model's device: for texts that do not come from a data pipeline."""
        batch = tokenize_texts(self.text_tokenizer, list(texts))
        ids, mask = sequences(batch, max_tokens=max_tokens)
        return ids.to(self.device), mask.to(self.device)

    @torch.no_grad()
    def image_codes(self, images: torch.Tensor) -> torch.Tensor:
        """Model-input images [B, 3, H, W] -> [B, h, w] codes of the frozen tokenizer."""
        if self.image_tokenizer is None:
            raise ValueError('this model has no image tokenizer (nothing in it needs codes)')
        return self.image_tokenizer.encode(self.data_preprocessor.pixels(images))

    def batch_codes(self, inputs: dict) -> torch.Tensor:
        """The batch's image codes [B, h, w]: ``inputs['codes']`` when the data gives them,
        else computed from ``inputs['images']`` once per batch (and kept in ``inputs``)."""
        if 'codes' not in inputs:
            inputs['codes'] = self.image_codes(inputs['images'])
        return inputs['codes']

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """Model-input images [B, 3, H, W] (H may be a top strip) -> tokens [B, 1 + N, D]."""
        return self.image_embedder(images)

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

    def decoder_logits(
        self, ids, positions, memory, memory_mask, modality: str, padding_mask=None, keep=None
    ):
        """Teacher-forced logits [B, L, |modality ids|] for decoder inputs ids [B, L]; with
        ``keep`` [B, L] (bool) only those of the kept positions, [K, |modality ids|] in
        row-major order (the vocabulary projection is most of the cost of a short decoder)."""
        hidden = self.decoder_hidden(ids, positions, memory, memory_mask, padding_mask)
        if keep is not None:
            hidden = hidden[keep]
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
    def forward(self, inputs: dict, data_samples: list | None = None, mode: str = 'loss'):
        """``mode='loss'``: a dict of losses; ``'predict'``: the head's data samples."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'unknown mode {mode!r}; use "loss" or "predict"')

    def loss(self, inputs: dict, data_samples: list | None = None) -> dict[str, torch.Tensor]:
        """Every objective whose inputs the batch has, plus the head's loss."""
        inputs = dict(inputs)
        losses = {}
        for index, objective in enumerate(self.objectives):
            if all(key in inputs for key in objective.inputs):
                found = objective(self, inputs)
                self._fired[index] = self._fired[index] or bool(found)
                losses.update(found)
        if self.head is not None:
            losses.update(self.head.loss(self, inputs, data_samples))
        if self.training:
            self._train_steps += 1
            self._check_objectives_fired()
        if not losses:
            raise ValueError(
                f'nothing in the model found its inputs in this batch (it has {sorted(inputs)}; '
                'the objectives read '
                + ', '.join(f'{type(o).__name__}: {list(o.inputs)}' for o in self.objectives)
                + ')'
            )
        return losses

    def _check_objectives_fired(self) -> None:
        """After an objective's first ``must_fire_within`` training steps, raise
        ObjectiveStarvedError if it gave no loss in any of them on any rank."""
        for index, objective in enumerate(self.objectives):
            limit = objective.must_fire_within
            if limit and self._train_steps == limit and not all_ranks_any(self._fired[index]):
                raise ObjectiveStarvedError(
                    f'{type(objective).__name__} ({objective.name}) gave no loss in the first '
                    f'{limit} training steps: its batches never held all of '
                    f'{list(objective.inputs)}. Check the dataset pipeline (TokenizeText and '
                    'PackDaVinciInputs keys, mixing counts), or raise its must_fire_within'
                )

    def predict(self, inputs: dict, data_samples: list | None = None) -> list:
        """The head's predictions: one data sample per input row."""
        if self.head is None:
            raise ValueError(
                'this model has no head to predict with; set model.head, e.g. '
                "dict(type='WritePaintHead')"
            )
        return self.head.predict(self, dict(inputs), data_samples)


def needs_image_tokenizer(objectives, head, image_embedding_init: str) -> bool:
    """Whether an objective or the head declares the image tokenizer among its ``parts``, or
    the visual embeddings start from its codebook."""
    declared = IMAGE_TOKENIZER in parts_used([*objectives, head])
    return declared or image_embedding_init == 'codebook'


def with_hidden_size(head: dict, hidden_size: int) -> dict:
    """The head config, with ``hidden_size`` filled in if its class takes one."""
    if not isinstance(head, dict):
        return head
    head_class = HEADS.get(head['type']) if isinstance(head['type'], str) else head['type']
    if 'hidden_size' in inspect.signature(head_class).parameters:
        return dict(head, hidden_size=head.get('hidden_size', hidden_size))
    return head


__all__ = ['DaVinci', 'IMAGE']
