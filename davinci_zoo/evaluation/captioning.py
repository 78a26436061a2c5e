"""Caption scores with pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L and CIDEr (COCO's set).

Light to import: pycocoevalcap is imported when :func:`caption_scores` runs. Its PTB
tokenizer and METEOR run Java; SPICE is left out (it downloads a model, which fails offline).
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Hashable, Mapping, Sequence

#: The keys :func:`caption_scores` returns, in pycocoevalcap's names.
SCORE_NAMES = ('Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr')


def caption_scores(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str] | str]
) -> dict[str, float]:
    """Score written captions against reference captions, corpus-level, as COCO does.

    Args:
        predictions: one written caption per id.
        references: the reference captions of the same ids (a list, or one string).

    Returns:
        ``Bleu_1`` .. ``Bleu_4``, ``METEOR``, ``ROUGE_L`` (fractions in [0, 1]) and ``CIDEr``
        (CIDEr-D as pycocoevalcap reports it: 0 and up, about 10 at most; papers print it
        x100). Texts are lower-cased and split by the PTB tokenizer first, punctuation dropped.
        CIDEr weighs n-grams by how rare they are among the references of all ids, so it is 0
        when there is only one id.

    Example:
        >>> caption_scores({1: 'a red ball'}, {1: ['a red ball', 'a ball on grass']})
    """
    gts, res = _coco_inputs(predictions, references)
    if shutil.which('java') is None:
        raise RuntimeError(
            'caption_scores needs Java for the PTB tokenizer and METEOR; install a Java '
            'runtime (e.g. apt-get install default-jre-headless, as tools/setup.sh does)'
        )
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    meteor = Meteor()  # its Java process starts up while the texts are tokenised
    try:
        tokenizer = PTBTokenizer()
        gts, res = tokenizer.tokenize(gts), tokenizer.tokenize(res)
        with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its n-gram counts
            bleu, _ = Bleu(4).compute_score(gts, res)
        scores = {f'Bleu_{n}': float(value) for n, value in enumerate(bleu, 1)}
        scores['METEOR'] = float(meteor.compute_score(gts, res)[0])
    finally:
        _close(meteor)
    scores['ROUGE_L'] = float(Rouge().compute_score(gts, res)[0])
    scores['CIDEr'] = float(Cider().compute_score(gts, res)[0])
    return {name: scores[name] for name in SCORE_NAMES}


def _coco_inputs(predictions, references) -> tuple[dict, dict]:
    """Check the two mappings; -> pycocoevalcap's ``{id: [{'caption': text}]}`` pair."""
    if not predictions:
        raise ValueError('caption_scores got no predictions')
    if set(predictions) != set(references):
        missing = sorted(map(str, set(predictions) - set(references)))[:3]
        extra = sorted(map(str, set(references) - set(predictions)))[:3]
        raise ValueError(
            'predictions and references must have the same ids; '
            f'without references: {missing or "none"}, without a prediction: {extra or "none"}'
        )
    gts, res = {}, {}
    for key, written in predictions.items():
        refs = [references[key]] if isinstance(references[key], str) else references[key]
        if not isinstance(written, str):
            raise ValueError(f'prediction {key!r} is not a string: {written!r:.60}')
        if not refs or not all(isinstance(r, str) and r.strip() for r in refs):
            raise ValueError(f'references of {key!r} must be non-empty strings: {refs!r:.60}')
        # One line per text: the PTB tokenizer and METEOR read line by line.
        res[key] = [{'caption': ' '.join(written.split())}]
        gts[key] = [{'caption': ' '.join(r.split())} for r in refs]
    return gts, res


def _close(meteor) -> None:
    """End METEOR's Java process (pycocoevalcap leaves it to garbage collection)."""
    with meteor.lock:
        meteor.meteor_p.stdin.close()
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()
