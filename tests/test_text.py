"""Text: the `tokenizers`-based WordPiece gives the ids of the tokenizer it replaced, and the
sequences cut from once-tokenised texts equal tokenising the cut strings.

``fixtures/wordpiece_golden.jsonl`` holds 512 texts (scene captions, sentences, punctuation,
accents, CJK, emoji, control and zero-width characters, words of 100 and 101 characters,
literal special tokens, empty and blank texts, random character soup and random vocabulary
words) with the ids the project's earlier pure-Python WordPiece gave them.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from conftest import FIXTURES

from davinci_zoo.text import (
    TokenizedText,
    WordPieceTokenizer,
    pad_texts,
    sequences,
    tokenize_texts,
    word_span,
)

CLS, SEP = 101, 102


@pytest.fixture(scope='module')
def golden():
    text = (FIXTURES / 'wordpiece_golden.jsonl').read_text(encoding='utf-8')
    lines = [line for line in text.split('\n') if line]  # texts hold U+2028: not splitlines()
    rows = [json.loads(line) for line in lines[1:]]
    assert len(rows) == 512
    return rows


@pytest.fixture(scope='module')
def tokenizer():
    return WordPieceTokenizer()


def by_strings(tokenizer, text: str) -> list[int]:
    """What the earlier objectives did: ``[CLS] ids [SEP]``, ``[CLS]`` alone for ''."""
    return tokenizer.encode(text) if text else [CLS]


def test_the_same_ids_as_the_tokenizer_it_replaced(golden, tokenizer):
    mismatches = [row['text'] for row in golden if tokenizer.encode(row['text']) != row['ids']]
    assert mismatches == []
    edge = {row['text']: row['ids'] for row in golden}
    assert edge[''] == edge[' '] == edge['\t'] == [CLS, SEP]
    assert edge['y' * 101] == [CLS, 100, SEP]  # over 100 characters: [UNK]
    assert len(edge['x' * 100]) > 3  # 100 characters still go through WordPiece
    assert 100 in edge['emoji 🙂👍🏽 family 👨\u200d👩\u200d👧']  # an unknown character
    literal = edge['[CLS] literal [SEP] [MASK] [UNK] [PAD]']
    assert literal.count(CLS) == 1 and literal.count(SEP) == 1  # written tokens are text
    assert tokenizer.encode('A small Red-circle.', add_special_tokens=False) == [
        1037,
        2235,
        2417,
        1011,
        4418,
        1012,
    ]


def test_word_splits_of_one_tokenisation_equal_tokenising_the_split_strings(golden, tokenizer):
    """Every split point k of every golden text: ids with word < k (and >= k), wrapped in
    [CLS] .. [SEP], equal tokenising ' '.join(words[:k]) (and [k:]) -- the earlier
    objectives' way -- including the [CLS]-alone empty prefix."""
    checked = 0
    for row in golden:
        text = row['text'].strip()
        words = text.split(' ') if text else []
        single = pad_texts([tokenizer.encode_words(row['text'])])
        assert int(single.num_words[0]) == len(words)
        for k in range(len(words)):
            split = torch.tensor([k])
            prefix, _ = sequences(single, word_span(single, 0, split), split == 0)
            suffix, _ = sequences(single, word_span(single, split, len(words)), split < 0)
            assert prefix[0].tolist() == by_strings(tokenizer, ' '.join(words[:k]))
            assert suffix[0].tolist() == by_strings(tokenizer, ' '.join(words[k:]))
            checked += 1
    assert checked > 2000


def test_sequences_pad_truncate_and_write_empty_texts_as_cls_alone(tokenizer):
    texts = tokenize_texts(tokenizer, ['a small red circle', '', '   ', 'one two three four five'])
    assert texts.num_words.tolist() == [4, 0, 0, 5] and texts.owner.tolist() == [0, 1, 2, 3]
    ids, mask = sequences(texts)
    assert ids.tolist() == [
        [CLS, 1037, 2235, 2417, 4418, SEP, 0],
        [CLS, 0, 0, 0, 0, 0, 0],
        [CLS, 0, 0, 0, 0, 0, 0],
        [CLS, 2028, 2048, 2093, 2176, 2274, SEP],
    ]
    assert mask.sum(1).tolist() == [6, 1, 1, 7]
    ids, mask = sequences(texts, max_tokens=4)  # the first max_tokens - 2 ids and [SEP]
    assert ids.tolist()[0] == [CLS, 1037, 2235, SEP] and ids.tolist()[3] == [CLS, 2028, 2048, SEP]
    forced = torch.tensor([True, False, False, False])  # a dropped caption: [CLS] alone
    ids, mask = sequences(texts, empty=forced)
    assert ids[0].tolist() == [CLS] + [0] * 6 and mask[0].sum() == 1
    assert ids[1].tolist()[:2] == [CLS, SEP]  # not forced: an empty text's [CLS] [SEP]
    nothing = tokenize_texts(tokenizer, ['', ''])
    assert sequences(nothing)[0].tolist() == [[CLS], [CLS]]
    truncated = tokenize_texts(tokenizer, ['word ' * 40])
    ids, _ = sequences(truncated, word_span(truncated, 0, 30), max_tokens=30)
    assert ids.shape == (1, 30) and ids[0, -1] == SEP


def test_ragged_texts_keep_their_rows():
    texts = [
        TokenizedText(torch.tensor([5, 6]), torch.tensor([0, 1]), 2),
        TokenizedText(torch.tensor([7]), torch.tensor([0]), 1),
        TokenizedText(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 0),
    ]
    batch = pad_texts(texts, owner=[0, 0, 1])
    assert batch.ids.tolist() == [[5, 6], [7, 0], [0, 0]]
    assert batch.words.tolist() == [[0, 1], [0, -1], [-1, -1]]
    assert batch.owner.tolist() == [0, 0, 1] and batch.num_texts == 3
    picked = batch.select(torch.tensor([False, True, True]))
    assert picked.ids.tolist() == [[7, 0], [0, 0]] and picked.owner.tolist() == [0, 1]


def test_tokenizer_pickles_for_spawned_workers_and_decodes(tokenizer):
    copy = pickle.loads(pickle.dumps(tokenizer))
    assert copy.encode('a cyan hexagon') == tokenizer.encode('a cyan hexagon')
    assert tokenizer.decode([CLS, 1037, 22330, 2319, 102, 0]) == 'a cyan'
    assert tokenizer.tokenize('Cyan') == ['cy', '##an']
    with pytest.raises(ValueError, match='sha256'):
        WordPieceTokenizer(FIXTURES / 'wordpiece_golden.jsonl')


def test_a_tokenised_text_is_an_id_tensor_and_its_words(tokenizer):
    text = tokenizer.encode_words("  don't  stop ")  # strip, then single spaces
    assert text.ids.tolist() == tokenizer.encode("don't  stop", add_special_tokens=False)
    assert text.words.tolist() == [0, 0, 0, 2] and text.num_words == 3  # '' is word 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        words = [''.join(rng.choice(list('abcxyz-!'), rng.integers(1, 6))) for _ in range(5)]
        tokens = tokenizer.encode_words(' '.join(words))
        for index, word in enumerate(words):
            expected = tokenizer.encode(word, add_special_tokens=False)
            assert tokens.ids[tokens.words == index].tolist() == expected
