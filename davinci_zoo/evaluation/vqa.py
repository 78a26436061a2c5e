"""VQA accuracy as the official VQA evaluation computes it, and the ``VQAAccuracy`` metric.

The official evaluation (the VQA team's ``vqaEval.py``) scores a predicted answer against the
ten human answers of a question:

1. the prediction: tabs and newlines become spaces, ends are stripped, then the punctuation
   step and the digit/article step below;
2. the human answers: the punctuation step only, and only when the ten are not all the same
   string (ten equal answers are compared as they are);
3. for each of the ten leave-one-out subsets of nine answers, min(matches / 3, 1) where
   matches counts the subset's answers equal to the prediction; the question's accuracy is
   the mean over the ten subsets. So 2 agreeing humans give 0.6, 3 give 0.9, 4 or more 1.

The punctuation step: each mark of a fixed list is deleted where the text has it next to a
space (or anywhere, when the text has a digit-comma-digit group) and otherwise replaced by a
space; then periods not followed by a digit are deleted (at most 32: the script passes
``re.UNICODE``, whose value is 32, where ``re.sub`` takes its count). The digit/article step
lower-cases, splits on whitespace, maps the number words ``none``, ``zero`` .. ``ten`` to digits,
drops the articles ``a``, ``an``, ``the`` and restores apostrophes in a fixed table of
contractions (``dont`` -> ``don't``). Written from the algorithm, not copied.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence

from mmengine.evaluator import BaseMetric

from ..models.parts import ComponentArgumentError
from ..registry import METRICS

_MARKS = ';/[]"{}()=+\\_-><@`,?!'  # the official list; '.', "'" and ':' are not in it
_DIGIT_COMMA_DIGIT = re.compile(r'\d,\d')
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r'\.(?!\d)')
_PERIODS_DELETED = 32  # re.UNICODE, passed as re.sub's count in the official script
_NUMBER_WORDS = {
    'none': '0',
    'zero': '0',
    'one': '1',
    'two': '2',
    'three': '3',
    'four': '4',
    'five': '5',
    'six': '6',
    'seven': '7',
    'eight': '8',
    'nine': '9',
    'ten': '10',
}
_ARTICLES = frozenset(('a', 'an', 'the'))
# The official table of contractions, as data: each word is the restored form, with `_` where
# the written form lacks an apostrophe (`don_t`: `dont` -> `don't`; `couldn't_ve`: `couldn'tve`
# -> `couldn't've`). Left out, with no effect on any score: the table's identities (`let's`,
# `she's`) and its capitalised keys (`Im`, `Ive`, `Id've`, `I'dve`), which never meet the
# lower-cased words.
_CONTRACTION_MARKS = """
ain_t aren_t can_t could_ve couldn_t couldn't_ve couldn_t've didn_t doesn_t don_t hadn_t
hadn_t've hadn't_ve hasn_t haven_t he_d he_d've he'd_ve he_s how_d how_ll how_s isn_t it_d
it_d've it'd_ve it_ll ma_am mightn_t mightn_t've mightn't_ve might_ve mustn_t must_ve
needn_t not_ve o_clock oughtn_t _ow's'at 'ow_s'at 'ow's_at shan_t she_d've she'd_ve
should_ve shouldn_t shouldn_t've shouldn't_ve somebody_d've somebody'd_ve somebody_ll
somebody_s someone_d someone_d've someone'd_ve someone_ll someone_s something_d
something_d've something'd_ve something_ll that_s there_d there_d've there'd_ve there_re
there_s they_d they_d've they'd_ve they_ll they_re they_ve _twas wasn_t we_d've we'd_ve
we_ve weren_t what_ll what_re what_s what_ve when_s where_d where_s where_ve who_d
who_d've who'd_ve who_ll who_s who_ve why_ll why_re why_s won_t would_ve wouldn_t
wouldn_t've wouldn't_ve y_all y_all'll y'all_ll y_all'd've y'all_d've y'all'd_ve you_d
you_d've you'd_ve you_ll you_re you_ve
"""
_CONTRACTIONS = {
    word.replace('_', ''): word.replace('_', "'") for word in _CONTRACTION_MARKS.split()
}
_CONTRACTIONS["somebody'd"] = 'somebodyd'  # sic: the one entry that drops an apostrophe


def process_punctuation(text: str) -> str:
    """The official punctuation step (see the module docstring)."""
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _MARKS:
        spaced = f'{mark} ' in text or f' {mark}' in text
        out = out.replace(mark, '' if delete_all or spaced else ' ')
    return _PERIOD_NOT_BEFORE_DIGIT.sub('', out, count=_PERIODS_DELETED)


def process_digit_article(text: str) -> str:
    """The official digit/article step: lower-case, number words -> digits, no articles,
    apostrophes restored in the contractions of the table; words joined by single spaces."""
    words = []
    for word in text.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in _ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return ' '.join(words)


def normalize_answer(text: str) -> str:
    """A predicted answer as the official evaluation compares it (``'Two dogs.'`` ->
    ``'2 dogs'``). Also how the zoo normalises training answers and the answer list."""
    text = text.replace('\n', ' ').replace('\t', ' ').strip()
    return process_digit_article(process_punctuation(text))


def question_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """One question's official accuracy in [0, 1]: the mean over the leave-one-out subsets
    of the human ``answers`` of min(matches / 3, 1)."""
    if isinstance(answers, str) or not answers:
        raise ValueError(f'a question needs a non-empty list of human answers, got {answers!r}')
    predicted = normalize_answer(prediction)
    if len(set(answers)) > 1:
        answers = [process_punctuation(answer) for answer in answers]
    matches = sum(answer == predicted for answer in answers)
    subsets = [min((matches - (answer == predicted)) / 3, 1.0) for answer in answers]
    return sum(subsets) / len(subsets)


def vqa_accuracy(predictions: list[str], answers: list[list[str]]) -> float:
    """The official VQA accuracy in [0, 1] of ``predictions`` (one string per question)
    against ``answers`` (each question's human answers, ten in VQAv2): the mean of
    :func:`question_accuracy` over the questions."""
    if len(predictions) != len(answers):
        raise ValueError(f'{len(predictions)} predictions but {len(answers)} answer lists')
    if not predictions:
        raise ValueError('no predictions to score')
    scores = [question_accuracy(p, a) for p, a in zip(predictions, answers)]
    return sum(scores) / len(scores)


@METRICS.register_module()
class VQAAccuracy(BaseMetric):
    """The official VQA accuracy of ``pred_answer`` against the sample's ``gt_answer`` (the
    ten human answers), in percent as the evaluation server reports it.

    Keys (prefix ``vqa``): ``accuracy``; ``accuracy_<type>`` per ``answer_type`` of the
    samples that have one (VQAv2: ``accuracy_yes_no``, ``accuracy_number``,
    ``accuracy_other``); ``count``, the questions scored.

    Args:
        format_only: only write ``outfile`` (test-dev and test have no answers); then the one
            key is ``count``, the questions written.
        outfile: a JSON file of ``[{"question_id": int, "answer": str}]``, the evaluation
            server's results format; written on the main process. None: none.
        collect_device, prefix: as mmengine's ``BaseMetric``.
    """

    default_prefix = 'vqa'

    def __init__(
        self,
        format_only: bool = False,
        outfile: str | None = None,
        collect_device: str = 'cpu',
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and not outfile:
            raise ComponentArgumentError(
                'VQAAccuracy(format_only=True) writes results only: give outfile='
            )
        self.format_only, self.outfile = format_only, outfile

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_answer' not in sample:
                raise ComponentArgumentError(
                    'VQAAccuracy: a sample has no pred_answer; use a VQAHead model'
                )
            result = dict(question_id=sample.get('question_id'), answer=sample['pred_answer'])
            if not self.format_only:
                if not sample.get('gt_answer'):
                    raise ComponentArgumentError(
                        'VQAAccuracy: a sample has no gt_answer (test-dev and test questions '
                        'have none); set format_only=True and outfile= to write the results file'
                    )
                result['accuracy'] = question_accuracy(sample['pred_answer'], sample['gt_answer'])
                result['answer_type'] = sample.get('answer_type')
            self.results.append(result)

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        if self.outfile:
            write_results(self.outfile, results)
        metrics: dict[str, float] = {'count': len(results)}
        if self.format_only or not results:
            return metrics
        metrics['accuracy'] = 100 * sum(r['accuracy'] for r in results) / len(results)
        by_type = defaultdict(list)
        for result in results:
            if result['answer_type'] is not None:
                by_type[result['answer_type']].append(result['accuracy'])
        for answer_type, scores in sorted(by_type.items()):
            name = re.sub(r'\W+', '_', str(answer_type)).strip('_')
            metrics[f'accuracy_{name}'] = 100 * sum(scores) / len(scores)
        return metrics


def write_results(path: str, results: list[dict]) -> None:
    """The evaluation server's results file: ``[{"question_id": int, "answer": str}]``."""
    from ..checkpoint import atomic_write

    rows = []
    for result in results:
        if result['question_id'] is None:
            raise ComponentArgumentError(
                'VQAAccuracy: a sample has no question_id for the results file'
            )
        rows.append({'question_id': int(result['question_id']), 'answer': result['answer']})
    data = json.dumps(rows).encode('utf-8')
    atomic_write(path, lambda stream: stream.write(data))


__all__ = [
    'VQAAccuracy',
    'normalize_answer',
    'process_digit_article',
    'process_punctuation',
    'question_accuracy',
    'vqa_accuracy',
]
