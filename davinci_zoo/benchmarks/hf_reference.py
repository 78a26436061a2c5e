"""Hugging Face ``BertLMHeadModel`` holding a DaVinci decoder's weights (the reference decoder).

The original DaVinci decoder *is* a transformers ``BertLMHeadModel`` (``is_decoder=True``,
``add_cross_attention=True``; docs/original.md section 1.4), and our decoder layers compute
the same post-LN BERT math under the same parameter names, so its weights map one to one:

    ours                                     Hugging Face
    encoder.embeddings.word_embeddings       bert.embeddings.word_embeddings and
        (shared by encoder, decoder, head)       cls.predictions.decoder (tied)
    decoder.embeddings.<name>                bert.embeddings.<name> (positions, types, LN)
    decoder.layers.N.<name>                  bert.encoder.layer.N.<name>
    decoder.head.transform.<name>            cls.predictions.transform.<name>
    decoder.head.bias                        cls.predictions.bias (= decoder.bias)

Needs ``transformers`` (the ``hf`` extra); import this module only where it is used.
"""

from __future__ import annotations

import torch
from transformers import BertConfig, BertLMHeadModel, LogitsProcessor

# Buffers transformers derives itself (not in a checkpoint).
HF_DERIVED = ('bert.embeddings.position_ids', 'bert.embeddings.token_type_ids')


class CrossAttendingBertLMHeadModel(BertLMHeadModel):
    """``BertLMHeadModel`` whose ``generate`` passes the encoder output to every step.

    transformers 4.40's ``prepare_inputs_for_generation`` of this class keeps only the ids,
    the attention mask and the cache, so ``encoder_hidden_states`` and
    ``encoder_attention_mask`` given to ``generate`` would never reach the cross-attention.
    """

    def prepare_inputs_for_generation(
        self,
        input_ids,
        past_key_values=None,
        attention_mask=None,
        use_cache=True,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        **model_kwargs,
    ):
        inputs = super().prepare_inputs_for_generation(
            input_ids, past_key_values, attention_mask, use_cache, **model_kwargs
        )
        inputs['encoder_hidden_states'] = encoder_hidden_states
        inputs['encoder_attention_mask'] = encoder_attention_mask
        return inputs


class AllowedIdRange(LogitsProcessor):
    """Keep the scores of ids ``start .. end - 1`` (the active modality); the rest -> -inf."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        allowed = torch.full_like(scores, float('-inf'))
        allowed[:, self.start : self.end] = scores[:, self.start : self.end]
        return allowed


def bert_config_of(model) -> BertConfig:
    """The ``BertConfig`` of a DaVinci's decoder (eval-time: dropout 0, eager attention)."""
    decoder = model.decoder
    layer = decoder.layers[0]
    config = BertConfig(
        vocab_size=model.vocab.size,
        hidden_size=layer.attention.self.query.in_features,
        num_hidden_layers=len(decoder.layers),
        num_attention_heads=layer.attention.self.num_heads,
        intermediate_size=layer.intermediate.dense.out_features,
        hidden_act='gelu',
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=decoder.embeddings.max_positions,
        type_vocab_size=2,
        layer_norm_eps=decoder.embeddings.LayerNorm.eps,
        pad_token_id=model.vocab.pad_id,
        is_decoder=True,
        add_cross_attention=True,
        tie_word_embeddings=True,
    )
    config._attn_implementation = 'eager'
    return config


def hf_state_dict_of(model) -> dict[str, torch.Tensor]:
    """Our decoder's weights under transformers' ``BertLMHeadModel`` names."""
    decoder = model.decoder
    words = decoder.embeddings.word_embeddings.weight
    out = {
        'bert.embeddings.word_embeddings.weight': words,
        'cls.predictions.decoder.weight': words,
        'cls.predictions.bias': decoder.head.bias,
        'cls.predictions.decoder.bias': decoder.head.bias,
    }
    for name, tensor in decoder.embeddings.state_dict().items():
        out[f'bert.embeddings.{name}'] = tensor
    for index, layer in enumerate(decoder.layers):
        for name, tensor in layer.state_dict().items():
            out[f'bert.encoder.layer.{index}.{name}'] = tensor
    for name, tensor in decoder.head.transform.state_dict().items():
        out[f'cls.predictions.transform.{name}'] = tensor
    return out


def build_hf_decoder(model) -> CrossAttendingBertLMHeadModel:
    """A transformers BERT decoder with exactly ``model``'s decoder weights (eval mode, fp32).

    Raises ValueError if any weight of either side is left unmatched, or if the decoder uses
    one of our 2-D position options, which BERT has no place for.
    """
    if model.decoder.image_grid_embeddings is not None or model.decoder.painting_bias is not None:
        raise ValueError(
            'a decoder with image_grid_embeddings or painting_relative_bias has no BERT '
            'equivalent; benchmark a model built without them'
        )
    hf = CrossAttendingBertLMHeadModel(bert_config_of(model))
    missing, unexpected = hf.load_state_dict(hf_state_dict_of(model), strict=False)
    missing = [key for key in missing if key not in HF_DERIVED]
    if missing or unexpected:
        raise ValueError(f'decoder -> BERT mapping left missing {missing}, extra {unexpected}')
    words = hf.bert.embeddings.word_embeddings.weight
    if hf.cls.predictions.decoder.weight.data_ptr() != words.data_ptr():
        raise ValueError('the BERT output layer is not tied to its word embeddings')
    return hf.eval()
