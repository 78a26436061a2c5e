"""Answer questions about an image by writing the answer (the original's generative VQA)."""

from __future__ import annotations

import json
import os

import torch
import torch.nn.functional as F

from ...registry import HEADS
from ...text import sequences
from ..davinci.vocabulary import TEXT
from ..parts import ComponentArgumentError
from .base import Head, check_label_smoothing, samples_for


def read_answer_list(source) -> list[str]:
    """Candidate answers: a JSON file holding a list of strings (the original's
    ``answer_list.json``, or ``tools/dataset_converters/vqa_answer_list.py``'s output) or
    the list itself."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'answer list {path} does not exist; build it with '
                'tools/dataset_converters/vqa_answer_list.py (docs/tasks/vqa.md)'
            )
        with open(path, encoding='utf-8') as stream:
            try:
                source = json.load(stream)
            except json.JSONDecodeError as error:
                raise ComponentArgumentError(
                    f'answer list {path} is not valid JSON ({error})'
                ) from None
    answers = list(source) if isinstance(source, (list, tuple)) else None
    if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        raise ComponentArgumentError(
            'the answer list must be a non-empty JSON list of non-empty strings'
        )
    if len(set(answers)) != len(answers):
        raise ComponentArgumentError('the answer list holds an answer twice')
    return answers


def join_prompt(prompt_ids, prompt_mask, ids, mask):
    """Each answer after its prompt, as one decoder input.

    Args:
        prompt_ids, prompt_mask: [N, P] (1 = real token), e.g. ``[CLS]`` or
            ``[CLS] question [SEP]``.
        ids, mask: [N, L] answers ``[CLS] a [SEP]``; their ``[CLS]`` is left out.

    Returns:
        ids [N, T], mask [N, T] (right-padded) and answer [N, T] (True at answer tokens):
        row i is prompt i's real tokens followed by answer i's tokens after its ``[CLS]``.
    """
    prompt_lengths = prompt_mask.sum(1)
    answer_lengths = mask.sum(1) - 1
    lengths = prompt_lengths + answer_lengths
    width = int(lengths.max())
    joined = ids.new_zeros(len(ids), width + 1)  # the last column takes the answers' padding
    joined[:, : prompt_ids.shape[1]] = prompt_ids * prompt_mask
    column = torch.arange(ids.shape[1] - 1, device=ids.device)[None]
    inside = column < answer_lengths[:, None]
    target = torch.where(inside, prompt_lengths[:, None] + column, width)
    joined.scatter_(1, target, ids[:, 1:] * inside)
    column = torch.arange(width, device=ids.device)[None]
    joined_mask = (column < lengths[:, None]).to(mask.dtype)
    answer = (column >= prompt_lengths[:, None]) & joined_mask.bool()
    return joined[:, :width], joined_mask, answer


@HEADS.register_module()
class VQAHead(Head):
    """Generative VQA (docs/original.md section 4.1; decisions in docs/tasks/vqa.md).

    The encoder reads the image and ``[CLS] question [SEP]``; the decoder writes an answer
    ``[CLS] answer [SEP]`` (with ``question_in_decoder`` it reads ``[CLS] question [SEP]``
    and writes the answer's tokens after it; "the first token" below is then the one read
    at the question's ``[SEP]``).

    - ``loss``: every answer of a question is teacher-forced against the question's memory;
      its summed token NLL is weighted by its ``answer_weight``; the loss is the sum over the
      batch's answers divided by the number of questions (the original's reduction).
    - ``predict``: the decoder reads ``[CLS]``; the candidates of ``answer_list`` are ranked
      by the probability of their first token, the ``top_k`` best are teacher-forced and the
      likeliest whole answer (summed log-probability of its tokens and ``[SEP]``) becomes
      ``pred_answer``. Probabilities are over the text ids.

    Args:
        answer_list: the candidates (a JSON file of a list of strings, or the list); needed
            to predict.
        top_k: candidates re-ranked by their whole likelihood (the original's 128; capped at
            the list's size).
        max_question_tokens, max_answer_tokens: longest question and answer, ``[CLS]`` and
            ``[SEP]`` included (longer ones are cut).
        original_ranking: rank as the original: each candidate ends in a second ``[SEP]``
            (scored too) and its first token's log-probability counts twice.
        label_smoothing: of the answers' cross-entropy (the original: 0).
        loss_weight: multiplies the loss.
        chunk_size: candidate sequences teacher-forced at once in ``predict`` (memory bound).
        question_in_decoder: the decoder reads the question before the answer, so its
            cross-attention looks up what the question names (not the original's:
            docs/tasks/vqa.md says when it helps).

    Reads ``inputs['images']`` [B, 3, H, W], ``inputs['question']`` (B texts) and, in
    ``loss``, ``inputs['answers']`` (a TextBatch whose ``owner`` names each answer's
    question) with the data samples' ``answer_weight`` lists, in the same order.
    """

    inputs = ('images', 'question')

    def __init__(
        self,
        answer_list: str | list[str] | None = None,
        top_k: int = 128,
        max_question_tokens: int = 40,
        max_answer_tokens: int = 10,
        original_ranking: bool = False,
        label_smoothing: float = 0.0,
        loss_weight: float = 1.0,
        chunk_size: int = 1024,
        question_in_decoder: bool = False,
    ) -> None:
        super().__init__()
        if top_k < 1 or chunk_size < 1:
            raise ComponentArgumentError(
                f'top_k and chunk_size must be at least 1, got {top_k}, {chunk_size}'
            )
        if max_answer_tokens < 3 or max_question_tokens < 2:
            raise ComponentArgumentError(
                'max_answer_tokens must be >= 3 and max_question_tokens >= 2'
            )
        check_label_smoothing(label_smoothing)
        self.answer_list = None if answer_list is None else read_answer_list(answer_list)
        self.top_k, self.chunk_size = top_k, chunk_size
        self.max_question_tokens, self.max_answer_tokens = max_question_tokens, max_answer_tokens
        self.original_ranking = original_ranking
        self.question_in_decoder = question_in_decoder
        self.label_smoothing, self.loss_weight = label_smoothing, loss_weight
        self._candidates: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- shared ------------------------------------------------------------------------------
    def encode(self, model, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory [B, S, D] and its mask [B, S] of each image with its question."""
        ids, mask = sequences(inputs['question'], max_tokens=self.max_question_tokens)
        return model.encode(inputs['images'], ids, mask)

    def prompt(self, model, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """What the decoder reads before each answer: ids [B, P] and mask [B, P]; ``[CLS]``,
        or with ``question_in_decoder`` ``[CLS] question [SEP]``."""
        if self.question_in_decoder:
            return sequences(inputs['question'], max_tokens=self.max_question_tokens)
        ids = torch.full((len(inputs['images']), 1), model.vocab.text_bos_id, device=model.device)
        return ids, torch.ones_like(ids)

    @staticmethod
    def answer_logits(model, prompt, ids, mask, memory, memory_mask):
        """Teacher-forced logits of answers ids [N, L] (mask [N, L], ``[CLS] a [SEP]``) read
        after their prompts (ids and mask [N, P]) against memory [N, S, D], at the positions
        that predict an answer token only: logits [K, V], the K targets (text-id indices)
        and the answer row [K] of each."""
        joined, joined_mask, answer = join_prompt(*prompt, ids, mask)
        positions = torch.arange(joined.shape[1] - 1, device=ids.device)
        scored = answer[:, 1:]  # position t predicts token t + 1
        logits = model.decoder_logits(
            joined[:, :-1],
            positions,
            memory,
            memory_mask,
            TEXT,
            padding_mask=joined_mask[:, :-1],
            keep=scored,
        )
        targets = joined[:, 1:][scored] - model.vocab.id_range(TEXT)[0]
        rows = torch.arange(len(ids), device=ids.device)[:, None].expand_as(scored)[scored]
        return logits, targets, rows

    # -- training ----------------------------------------------------------------------------
    def loss(self, model, inputs: dict, data_samples) -> dict[str, torch.Tensor]:
        answers = inputs.get('answers')
        if answers is None:
            raise ValueError(
                "VQAHead trains on the batch's 'answers': tokenise them in the train pipeline "
                "(TokenizeText keys=['question', 'answers'], PackDaVinciInputs text_keys)"
            )
        weights = [w for sample in data_samples for w in sample.answer_weight]
        if len(weights) != answers.num_texts:
            raise ValueError(f'{len(weights)} answer weights for {answers.num_texts} answers')
        weights = torch.tensor(weights, dtype=torch.float32, device=model.device)
        memory, memory_mask = self.encode(model, inputs)
        prompt_ids, prompt_mask = self.prompt(model, inputs)
        ids, mask = sequences(answers, max_tokens=self.max_answer_tokens)
        owner = answers.owner
        logits, targets, rows = self.answer_logits(
            model,
            (prompt_ids[owner], prompt_mask[owner]),
            ids,
            mask,
            memory[owner],
            memory_mask[owner],
        )
        token_nll = F.cross_entropy(
            logits.float(), targets, reduction='none', label_smoothing=self.label_smoothing
        )  # [K]: each answer token's
        loss = (weights[rows] * token_nll).sum() / len(memory)
        return {'loss_vqa': self.loss_weight * loss}

    # -- prediction --------------------------------------------------------------------------
    def candidate_tokens(self, model) -> tuple[torch.Tensor, torch.Tensor]:
        """The candidates as ids [C, L] and mask [C, L] (``[CLS] a [SEP]``; with
        ``original_ranking`` a second ``[SEP]``), tokenised once."""
        if self.answer_list is None:
            raise ValueError('VQAHead needs answer_list= (the candidate answers) to predict')
        if self._candidates is None:
            ids, mask = model.tokenize(self.answer_list, self.max_answer_tokens)
            if self.original_ranking:
                ids = torch.cat([ids, torch.zeros_like(ids[:, :1])], 1)
                mask = torch.cat([mask, torch.zeros_like(mask[:, :1])], 1)
                ends = mask.sum(1)
                ids[torch.arange(len(ids)), ends] = model.vocab.text_eos_id
                mask[torch.arange(len(ids)), ends] = 1
            self._candidates = ids.cpu(), mask.cpu()
        ids, mask = self._candidates
        return ids.to(model.device), mask.to(model.device)

    def first_token_log_probs(self, model, prompt, memory, memory_mask) -> torch.Tensor:
        """log p(first answer token | image, question) over the text ids: [B, V], read at
        the last token of each prompt (ids and mask [B, P])."""
        ids, mask = prompt
        positions = torch.arange(ids.shape[1], device=ids.device)
        last = positions[None] == (mask.sum(1) - 1)[:, None]  # [B, P]: one position per row
        logits = model.decoder_logits(
            ids, positions, memory, memory_mask, TEXT, padding_mask=mask, keep=last
        )
        return logits.float().log_softmax(-1)

    def candidate_log_likelihood(self, model, prompt, memory, memory_mask, chosen) -> torch.Tensor:
        """Summed log-probability [B, k] of each question's chosen candidates [B, k] (every
        token after ``[CLS]``) after its prompt, teacher-forced ``chunk_size`` sequences at a
        time."""
        ids, mask = self.candidate_tokens(model)
        prompt_ids, prompt_mask = prompt
        k = chosen.shape[1]
        rows = max(1, self.chunk_size // k)
        scores = []
        for first in range(0, len(memory), rows):
            picked = chosen[first : first + rows].flatten()
            part = slice(first, first + rows)
            logits, targets, answer_rows = self.answer_logits(
                model,
                (
                    prompt_ids[part].repeat_interleave(k, 0),
                    prompt_mask[part].repeat_interleave(k, 0),
                ),
                ids[picked],
                mask[picked],
                memory[part].repeat_interleave(k, 0),
                memory_mask[part].repeat_interleave(k, 0),
            )
            token = logits.float().log_softmax(-1).gather(-1, targets[:, None])[:, 0]
            summed = token.new_zeros(len(picked)).index_add_(0, answer_rows, token)
            scores.append(summed.view(-1, k))
        return torch.cat(scores)

    def rank(self, model, inputs: dict, top_k: int | None = None):
        """The ``top_k`` (default: the head's) candidate indices [B, k] by first-token
        probability and their scores [B, k]: whole-answer log-likelihood; with
        ``original_ranking`` plus the first token's log-probability once more."""
        memory, memory_mask = self.encode(model, inputs)
        prompt = self.prompt(model, inputs)
        ids, _ = self.candidate_tokens(model)
        first = self.first_token_log_probs(model, prompt, memory, memory_mask)
        first_of_candidates = first[:, ids[:, 1] - model.vocab.id_range(TEXT)[0]]  # [B, C]
        k = min(top_k or self.top_k, len(ids))
        top_first, chosen = first_of_candidates.topk(k, dim=1)
        scores = self.candidate_log_likelihood(model, prompt, memory, memory_mask, chosen)
        if self.original_ranking:
            scores = scores + top_first
        return chosen, scores

    @torch.no_grad()
    def answers(self, model, inputs: dict, top_k: int | None = None) -> list[str]:
        """The best-scored candidate of each question: B strings."""
        chosen, scores = self.rank(model, inputs, top_k)
        best = chosen.gather(1, scores.argmax(1, keepdim=True))[:, 0].tolist()
        return [self.answer_list[index] for index in best]

    @torch.no_grad()
    def predict(self, model, inputs: dict, data_samples) -> list:
        answers = self.answers(model, inputs)
        samples = samples_for(data_samples, len(answers))
        for sample, answer in zip(samples, answers):
            sample.set_field(answer, 'pred_answer')
        return samples


__all__ = ['VQAHead', 'read_answer_list']
