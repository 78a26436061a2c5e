"""VQAv2: the official accuracy on hand-computed cases, the loader on files in the official
layout (bad rows counted), the head's ranking and loss against hand-computed values, the
answer-list converter, the API and tools, and the scene config fine-tuned through the tools."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch
from conftest import REPO, run_tool, tiny_davinci_config
from davinci_zoo_scenes import generate_scenes, render
from mmengine.config import Config
from mmpretrain.structures import DataSample
from PIL import Image

from davinci_zoo.apis import InputError, answer
from davinci_zoo.cli import UserError
from davinci_zoo.datasets.bad_rows import DataFileError
from davinci_zoo.datasets.mixing import mixed_collate
from davinci_zoo.datasets.vqa import VQAv2
from davinci_zoo.evaluation.vqa import (
    VQAAccuracy,
    normalize_answer,
    process_punctuation,
    question_accuracy,
    vqa_accuracy,
)
from davinci_zoo.models.heads.vqa import join_prompt
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.registry import MODELS
from davinci_zoo.text import pad_texts, tokenize_texts

SCENES_CONFIG = REPO / 'configs' / 'downstream' / 'vqa' / 'vqa_scenes32.py'
BASE_CONFIG = REPO / 'configs' / 'downstream' / 'vqa' / 'vqa_base.py'
SAMPLE_KEYS = ['answer_weight', 'gt_answer', 'question_id', 'answer_type']
TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='PreCaption', keys=['question'], max_words=30),
    dict(type='TokenizeText', keys=['question', 'answers']),
    dict(type='PackDaVinciInputs', text_keys=['question', 'answers'], algorithm_keys=SAMPLE_KEYS),
]
TEST_PIPELINE = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='PreCaption', keys=['question'], max_words=50),
    dict(type='TokenizeText', keys=['question']),
    dict(type='PackDaVinciInputs', text_keys=['question'], algorithm_keys=SAMPLE_KEYS),
]


def load_tool(name: str):
    """A tools/ script as a module (its functions, without a subprocess)."""
    path = REPO / 'tools' / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# The official accuracy, by hand
# --------------------------------------------------------------------------------------------
def humans(*groups: tuple[str, int]) -> list[str]:
    """Ten human answers from (answer, how many) groups."""
    answers = [text for text, count in groups for _ in range(count)]
    assert len(answers) == 10
    return answers


@pytest.mark.parametrize(
    ('prediction', 'answers', 'expected'),
    [
        # the prediction's digit/article step: number words, articles, contractions, case
        ('two', humans(('2', 10)), 1.0),
        ('a dog', humans(('dog', 10)), 1.0),
        ('dont', humans(("don't", 10)), 1.0),
        ('Yes.', humans(('yes', 10)), 1.0),
        # punctuation: '?' not next to a space becomes a space; a digit-comma-digit group
        # deletes commas; a period before a digit stays
        ('dog?', humans(('dog', 10)), 1.0),
        ('red,blue', humans(('red blue', 10)), 1.0),
        ('1,000', humans(('1000', 10)), 1.0),
        ('2.5', humans(('2.5', 10)), 1.0),
        # ten equal human answers are compared as written: no punctuation step for them
        ('dog', humans(('dog.', 10)), 0.0),
        # ... but disagreeing ones get it (never the digit step): 9 of 'dog.' become 'dog'
        ('dog', humans(('dog.', 9), ('cat', 1)), 1.0),
        ('two', humans(('two', 5), ('three', 5)), 0.0),  # 'two' -> '2', the humans' stays
    ],
)
def test_normalisation_decides_the_score(prediction, answers, expected):
    assert question_accuracy(prediction, answers) == pytest.approx(expected)


@pytest.mark.parametrize(
    ('agreeing', 'expected'),
    [
        # leave one of the ten out, min(matches / 3, 1) over the nine left, mean over the ten
        (0, 0.0),
        (1, (1 * 0 / 3 + 9 * 1 / 3) / 10),  # 0.3
        (2, (2 * 1 / 3 + 8 * 2 / 3) / 10),  # 0.6
        (3, (3 * 2 / 3 + 7 * 1.0) / 10),  # 0.9 (mmpretrain's VQAAcc, without subsets: 1.0)
        (4, 1.0),
    ],
)
def test_leave_one_out_subsets(agreeing, expected):
    answers = humans(('red', agreeing), ('blue', 10 - agreeing))
    assert question_accuracy('red', answers) == pytest.approx(expected)


def test_vqa_accuracy_is_the_mean_over_questions_and_checks_its_input():
    predictions = ['red', 'two']
    answers = [humans(('red', 3), ('blue', 7)), humans(('2', 2), ('3', 8))]
    assert vqa_accuracy(predictions, answers) == pytest.approx((0.9 + 0.6) / 2)
    assert normalize_answer('  The Two\tDogs! ') == '2 dogs'
    assert process_punctuation('.' * 40) == '.' * 8  # the script strips at most 32 periods
    with pytest.raises(ValueError, match='2 predictions but 1'):
        vqa_accuracy(predictions, answers[:1])
    with pytest.raises(ValueError, match='non-empty list'):
        question_accuracy('red', [])


def test_metric_reports_percent_per_answer_type_and_writes_the_server_file(tmp_path):
    samples = [
        dict(pred_answer='yes', gt_answer=humans(('yes', 10)), question_id=1, answer_type='yes/no'),
        dict(pred_answer='no', gt_answer=humans(('yes', 10)), question_id=2, answer_type='yes/no'),
        dict(
            pred_answer='two',
            gt_answer=humans(('2', 2), ('3', 8)),
            question_id=3,
            answer_type='number',
        ),
        dict(
            pred_answer='red',
            gt_answer=humans(('red', 3), ('blue', 7)),
            question_id=4,
            answer_type='other',
        ),
    ]
    outfile = tmp_path / 'results.json'
    metric = VQAAccuracy(outfile=str(outfile))
    metric.process({}, samples[:2])
    metric.process({}, samples[2:])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['accuracy'] == pytest.approx(100 * (1 + 0 + 0.6 + 0.9) / 4)
    assert metrics['accuracy_yes_no'] == pytest.approx(50.0)
    assert metrics['accuracy_number'] == pytest.approx(60.0)
    assert metrics['accuracy_other'] == pytest.approx(90.0)
    assert metrics['count'] == 4
    written = json.loads(outfile.read_text())
    assert written == [
        {'question_id': i + 1, 'answer': s['pred_answer']} for i, s in enumerate(samples)
    ]

    only = VQAAccuracy(format_only=True, outfile=str(tmp_path / 'test-dev.json'))
    only.process({}, [dict(pred_answer='yes', question_id=7)])  # test-dev: no gt_answer
    assert only.compute_metrics(only.results) == {'count': 1}
    assert json.loads((tmp_path / 'test-dev.json').read_text()) == [
        {'question_id': 7, 'answer': 'yes'}
    ]
    with pytest.raises(ComponentArgumentError, match='format_only=True'):
        VQAAccuracy().process({}, [dict(pred_answer='yes', question_id=7)])
    with pytest.raises(ComponentArgumentError, match='outfile'):
        VQAAccuracy(format_only=True)


# --------------------------------------------------------------------------------------------
# Files in the official layout
# --------------------------------------------------------------------------------------------
def write_images(root, subset: str, image_ids: list[int], seed: int = 0) -> list:
    """Scene renders as ``{subset}/COCO_{subset}_{id:012d}.jpg``; returns the scenes."""
    scenes = generate_scenes(len(image_ids), seed, two_object_prob=0.0)
    (root / subset).mkdir(parents=True, exist_ok=True)
    for image_id, scene in zip(image_ids, scenes):
        path = root / subset / f'COCO_{subset}_{image_id:012d}.jpg'
        Image.fromarray(render(scene, 32)).save(path, quality=95, subsampling=0)
    return scenes


def ten_answers(values: list[str]) -> list[dict]:
    return [
        dict(answer=value, answer_confidence='yes', answer_id=number)
        for number, value in enumerate(values, 1)
    ]


def write_subset(root, subset: str, rows: list[dict], annotated: bool = True) -> None:
    """The official question (and annotation) file of ``subset``; rows: question entries,
    with ``answers`` (ten strings) and ``answer_type`` for the annotation."""
    questions = [
        {k: v for k, v in row.items() if k not in ('answers', 'answer_type')} for row in rows
    ]
    (root / f'v2_OpenEnded_mscoco_{subset}_questions.json').write_text(
        json.dumps(
            dict(
                info={},
                task_type='Open-Ended',
                data_type='mscoco',
                license={},
                data_subtype=subset,
                questions=questions,
            )
        )
    )
    if not annotated:
        return
    annotations = [
        dict(
            question_type='what color is the',
            multiple_choice_answer=row['answers'][0],
            answers=ten_answers(row['answers']),
            image_id=row['image_id'],
            answer_type=row.get('answer_type', 'other'),
            question_id=row['question_id'],
        )
        for row in rows
        if 'answers' in row
    ]
    (root / f'v2_mscoco_{subset}_annotations.json').write_text(
        json.dumps(
            dict(
                info={},
                license={},
                data_subtype=subset,
                annotations=annotations,
                data_type='mscoco',
            )
        )
    )


def colour_questions(root, subset: str, count: int, first_id: int, seed: int) -> list[dict]:
    """``count`` 'what color is the shape?' questions on new scene images, answered by ten
    agreeing humans; returns the rows written."""
    ids = list(range(first_id, first_id + count))
    scenes = write_images(root, subset, ids, seed)
    return [
        dict(
            image_id=image_id,
            question=f'What color is the {scene.description.objects[0].shape}?',
            question_id=image_id * 10,
            answers=[scene.description.objects[0].colour] * 10,
            answer_type='other',
        )
        for image_id, scene in zip(ids, scenes)
    ]


def test_the_loader_reads_the_official_layout_and_counts_bad_rows(tmp_path):
    write_images(tmp_path, 'train2014', [1, 2, 3])
    rows = [
        # 'two' and '2' merge once normalised; the humans' answers stay as written
        dict(
            image_id=1,
            question='How many dogs?',
            question_id=10,
            answers=['two'] * 3 + ['2'] * 2 + ['Dog.'] * 5,
            answer_type='number',
        ),
        dict(image_id=2, question='Is it red?', question_id=20, answers=['yes'] * 10),
        dict(image_id=3, question='What is it?', question_id=30),  # no annotation: bad row
        dict(image_id=9, question='Where?', question_id=90, answers=['here'] * 10),  # no image
        dict(image_id='x', question='Bad id?', question_id=40),  # malformed: bad row
    ]
    write_subset(tmp_path, 'train2014', rows)
    dataset = VQAv2(str(tmp_path), 'train2014', TRAIN_PIPELINE, max_bad_fraction=None)
    assert len(dataset) == 5
    first = dataset[0]
    sample = first['data_samples']
    assert sample.question == 'how many dogs'
    assert sample.answers == ['2', 'dog'] and sample.answer_weight == pytest.approx([0.5, 0.5])
    assert sample.gt_answer == rows[0]['answers']
    assert sample.question_id == 10 and sample.answer_type == 'number'
    assert sample.img_path.endswith('train2014/COCO_train2014_000000000001.jpg')
    assert tuple(first['inputs']['images'].shape) == (3, 32, 32)
    assert len(first['inputs']['answers']) == 2  # one tokenised text per distinct answer
    assert (first['bad_rows'], first['seen_rows']) == (0, 1)
    # rows 2-4 are bad: index 2 falls through them to row 0, counting three
    third = dataset[2]
    assert third['data_samples'].question_id == 10
    assert (third['bad_rows'], third['seen_rows']) == (3, 4)
    assert dataset.tally.bad == 3

    batch = mixed_collate([dataset[0], dataset[1]])
    answers = batch['inputs']['answers']
    assert answers.owner.tolist() == [0, 0, 1]  # 2 answers of question 0, 1 of question 1
    weights = [w for s in batch['data_samples'] for w in s.answer_weight]
    assert weights == pytest.approx([0.5, 0.5, 1.0])


def test_test_dev_reads_questions_only_with_images_in_test2015(tmp_path):
    write_images(tmp_path, 'test2015', [5])
    write_subset(
        tmp_path, 'test-dev2015', [dict(image_id=5, question='Why?', question_id=50)], False
    )
    dataset = VQAv2(str(tmp_path), ['test-dev2015'], TEST_PIPELINE)
    sample = dataset[0]['data_samples']
    assert sample.img_path.endswith('test2015/COCO_test2015_000000000005.jpg')
    assert sample.question_id == 50 and 'gt_answer' not in sample


def test_visual_genome_qa_joins_with_weight_half(tmp_path):
    write_images(tmp_path, 'train2014', [1])
    write_subset(
        tmp_path,
        'train2014',
        [dict(image_id=1, question='Q?', question_id=1, answers=['a b'] * 10)],
    )
    vg = tmp_path / 'vg'
    (vg / 'VG_100K_2').mkdir(parents=True)
    Image.new('RGB', (40, 30), (255, 0, 0)).save(vg / 'VG_100K_2' / '7.jpg')
    qa = dict(
        qa_id=700,
        image_id=7,
        question='What color is the car?',
        answer='Red.',
        a_objects=[],
        q_objects=[],
    )
    missing = dict(qa, qa_id=800, image_id=8)  # no such image: bad row
    data = [dict(id=7, qas=[qa]), dict(id=8, qas=[missing]), dict(id=9)]  # no qas: bad row
    (vg / 'question_answers.json').write_text(json.dumps(data))
    dataset = VQAv2(
        str(tmp_path),
        ['train2014'],
        TRAIN_PIPELINE,
        vg_file=str(vg / 'question_answers.json'),
        max_bad_fraction=None,
    )
    assert len(dataset) == 4
    sample = dataset[1]['data_samples']
    assert sample.answers == ['red'] and sample.answer_weight == [0.5]
    assert sample.question_id == 700 and sample.img_path == str(vg / 'VG_100K_2' / '7.jpg')
    item = dataset[2]  # both bad rows, then the first row again
    assert item['data_samples'].question_id == 1 and item['bad_rows'] == 2


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='v2_OpenEnded_mscoco_train2014_questions.json'):
        VQAv2(str(tmp_path), ['train2014'])
    write_subset(tmp_path, 'val2014', [dict(image_id=1, question='Q?', question_id=1)], False)
    with pytest.raises(FileNotFoundError, match='v2_mscoco_val2014_annotations.json'):
        VQAv2(str(tmp_path), ['val2014'])  # val has answers: its annotation file must exist
    (tmp_path / 'v2_mscoco_val2014_annotations.json').write_text('{"annotations": ')
    with pytest.raises(DataFileError, match='v2_mscoco_val2014_annotations.json is not valid JSON'):
        VQAv2(str(tmp_path), ['val2014'])
    (tmp_path / 'v2_mscoco_val2014_annotations.json').write_text('[]')
    with pytest.raises(DataFileError, match='"annotations" list'):
        VQAv2(str(tmp_path), ['val2014'])


# --------------------------------------------------------------------------------------------
# The head
# --------------------------------------------------------------------------------------------
CANDIDATES = ['yes', 'no', 'red car', 'red']


def vqa_model(**head):
    torch.manual_seed(0)
    config = tiny_davinci_config(
        objectives=[], head=dict(type='VQAHead', answer_list=CANDIDATES, **head)
    )
    return MODELS.build(config)


def bigram_logits(model, bumps: dict[int, dict[int, float]]):
    """A decoder_logits whose text logits at a position depend only on the id there: 0 for
    every next id but ``bumps[id][next]``."""
    size = model.vocab.id_range('text')[1]

    def decoder_logits(ids, positions, memory, memory_mask, modality, padding_mask=None, keep=None):
        assert modality == 'text'
        logits = torch.zeros(*ids.shape, size)
        for previous, row in bumps.items():
            for following, value in row.items():
                logits[..., following] += (ids == previous).float() * value
        return logits if keep is None else logits[keep]

    return decoder_logits


def log_prob(bumps, previous: int, following: int, size: int) -> float:
    """log p(following | previous) under bigram_logits, by hand: value - log(sum exp)."""
    row = bumps.get(previous, {})
    total = (size - len(row)) + sum(math.exp(v) for v in row.values())
    return row.get(following, 0.0) - math.log(total)


def sequence_log_prob(bumps, size: int, *ids: int) -> float:
    """log p(ids[1:] | ids[0]) under bigram_logits: the sum of each step's log_prob."""
    return sum(log_prob(bumps, a, b, size) for a, b in zip(ids, ids[1:]))


def use_bigram_decoder(monkeypatch, model, bumps):
    """Make ``model``'s decoder the bigram_logits of ``bumps``; return the by-hand
    ``log p(ids[1:] | ids[0])`` under it (sequence_log_prob)."""
    monkeypatch.setattr(model, 'decoder_logits', bigram_logits(model, bumps))
    size = model.vocab.id_range('text')[1]
    return lambda *ids: sequence_log_prob(bumps, size, *ids)


def word_ids(model, *words: str) -> list[int]:
    """The first WordPiece id of each word."""
    return [int(model.text_tokenizer.encode_words(word).ids[0]) for word in words]


def question_batch(model, count: int = 1) -> dict:
    """Model inputs: random images and 'what is it' questions."""
    images = model.data_preprocessor.normalize(torch.rand(count, 3, 32, 32))
    questions = tokenize_texts(model.text_tokenizer, ['what is it'] * count)
    return dict(images=images, question=questions)


def test_ranking_keeps_top_k_by_first_token_then_the_likeliest_answer(monkeypatch):
    model = vqa_model(top_k=3).eval()
    yes, no, red, car = word_ids(model, 'yes', 'no', 'red', 'car')
    cls, sep = model.vocab.text_bos_id, model.vocab.text_eos_id
    # first token: red > no > yes; 'yes' then ends surely, so it is the likeliest answer
    # overall, but its first token ranks last and top_k=3 leaves it out
    bumps = {
        cls: {red: 6.0, no: 5.0, yes: 1.0},
        yes: {sep: 30.0},
        no: {sep: 2.0},
        red: {car: 4.0, sep: 3.0},
        car: {sep: 5.0, car: 1.0},
        sep: {sep: 7.0},
    }
    lp = use_bigram_decoder(monkeypatch, model, bumps)
    plain = {
        'no': lp(cls, no, sep),
        'red car': lp(cls, red, car, sep),
        'red': lp(cls, red, sep),
        'yes': lp(cls, yes, sep),
    }
    assert max(plain, key=plain.get) == 'yes'
    batch = question_batch(model, 2)
    chosen, scores = model.head.rank(model, batch)
    assert sorted(CANDIDATES[i] for i in chosen[0].tolist()) == ['no', 'red', 'red car']
    for index, score in zip(chosen[0].tolist(), scores[0].tolist()):
        assert score == pytest.approx(plain[CANDIDATES[index]], abs=1e-4)
    top3 = max(['no', 'red car', 'red'], key=plain.get)
    samples = model(batch, None, mode='predict')
    assert [s.pred_answer for s in samples] == [top3, top3]
    assert model.head.answers(model, batch, top_k=4) == ['yes', 'yes']

    # the original's ranking: a second [SEP] is scored and the first token counts twice
    model.head.original_ranking, model.head._candidates = True, None
    original = {
        'no': lp(cls, no) + lp(cls, no, sep, sep),
        'red car': lp(cls, red) + lp(cls, red, car, sep, sep),
        'red': lp(cls, red) + lp(cls, red, sep, sep),
    }
    chosen, scores = model.head.rank(model, batch)
    for index, score in zip(chosen[0].tolist(), scores[0].tolist()):
        assert score == pytest.approx(original[CANDIDATES[index]], abs=1e-4)


def test_the_loss_is_the_weighted_summed_nll_over_the_questions(monkeypatch):
    model = vqa_model()
    vocab = model.text_tokenizer
    red, car = word_ids(model, 'red', 'car')
    cls, sep = model.vocab.text_bos_id, model.vocab.text_eos_id
    bumps = {cls: {red: 2.0}, red: {sep: 1.0, car: 0.5}, car: {sep: 3.0}}
    lp = use_bigram_decoder(monkeypatch, model, bumps)
    inputs = question_batch(model, 2)
    answer_texts = [vocab.encode_words(t) for t in ('red', 'red car', 'red')]
    inputs['answers'] = pad_texts(answer_texts, owner=[0, 0, 1])
    samples = [DataSample(answer_weight=[0.7, 0.3]), DataSample(answer_weight=[1.0])]
    loss = model.head.loss(model, inputs, samples)['loss_vqa']

    expected = -(0.7 * lp(cls, red, sep) + 0.3 * lp(cls, red, car, sep) + lp(cls, red, sep)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match='2 answer weights for 3 answers'):
        model.head.loss(
            model, inputs, [DataSample(answer_weight=[1.0]), DataSample(answer_weight=[1.0])]
        )


def test_join_prompt_puts_each_answer_right_after_its_prompt():
    prompt_ids = torch.tensor([[101, 7, 8, 102], [101, 102, 0, 0]])
    prompt_mask = (prompt_ids > 0).long()
    ids = torch.tensor([[101, 20, 102, 0], [101, 30, 31, 102]])
    joined, mask, answer = join_prompt(prompt_ids, prompt_mask, ids, (ids > 0).long())
    assert joined.tolist() == [[101, 7, 8, 102, 20, 102], [101, 102, 30, 31, 102, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]]
    assert answer.long().tolist() == [[0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 0]]


def test_decoder_logits_at_kept_positions_are_the_full_ones_there():
    model = vqa_model().eval()
    batch = question_batch(model, 2)
    memory, memory_mask = model.head.encode(model, batch)
    ids, mask = model.tokenize(['red car', 'no'])
    positions = torch.arange(ids.shape[1])
    keep = torch.tensor([[False, True, True, False], [True, False, True, False]])
    with torch.no_grad():
        full = model.decoder_logits(ids, positions, memory, memory_mask, 'text', mask)
        kept = model.decoder_logits(ids, positions, memory, memory_mask, 'text', mask, keep=keep)
    assert kept.shape == (4, full.shape[-1])
    assert torch.allclose(kept, full[keep], atol=1e-5)


def test_with_the_question_in_the_decoder_answers_follow_the_question(monkeypatch):
    """question_in_decoder: the decoder reads [CLS] question [SEP] and the answer after it,
    so the first answer token is predicted at the question's [SEP]; the loss and the
    ranking score the answer tokens only."""
    model = vqa_model(top_k=4, question_in_decoder=True).eval()
    what, yes, no, red, car = word_ids(model, 'what', 'yes', 'no', 'red', 'car')
    cls, sep = model.vocab.text_bos_id, model.vocab.text_eos_id
    # after [CLS] 'red' would lead; after the question's [SEP] 'no' does
    bumps = {
        cls: {red: 9.0, what: 1.0},
        sep: {no: 6.0, red: 2.0, sep: 1.0},
        no: {sep: 2.0},
        red: {car: 4.0, sep: 3.0},
        car: {sep: 5.0},
        yes: {sep: 1.0},
    }
    lp = use_bigram_decoder(monkeypatch, model, bumps)
    expected = {
        'no': lp(sep, no, sep),
        'red car': lp(sep, red, car, sep),
        'red': lp(sep, red, sep),
        'yes': lp(sep, yes, sep),
    }
    batch = question_batch(model, 2)
    chosen, scores = model.head.rank(model, batch)
    for index, score in zip(chosen[0].tolist(), scores[0].tolist()):
        assert score == pytest.approx(expected[CANDIDATES[index]], abs=1e-4)
    assert model.head.answers(model, batch) == ['no', 'no']
    model.head.question_in_decoder = False  # the original's: the first token after [CLS]
    assert model.head.answers(model, batch) == ['red', 'red']

    model.head.question_in_decoder = True
    model.train()
    inputs = question_batch(model, 2)
    inputs['answers'] = pad_texts(
        [model.text_tokenizer.encode_words(t) for t in ('red car', 'no')], owner=[0, 1]
    )
    samples = [DataSample(answer_weight=[1.0]), DataSample(answer_weight=[0.5])]
    loss = model.head.loss(model, inputs, samples)['loss_vqa']
    by_hand = -(expected['red car'] + 0.5 * expected['no']) / 2
    assert float(loss) == pytest.approx(by_hand, rel=1e-4)


def test_training_on_a_fixture_lowers_the_loss(tmp_path):
    rows = colour_questions(tmp_path, 'train2014', 8, 1, seed=3)
    write_subset(tmp_path, 'train2014', rows)
    dataset = VQAv2(str(tmp_path), 'train2014', TRAIN_PIPELINE)
    model = vqa_model().train()
    batch = model.data_preprocessor(mixed_collate([dataset[i] for i in range(8)]), True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = model.loss(batch['inputs'], batch['data_samples'])['loss_vqa']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses


# --------------------------------------------------------------------------------------------
# The answer list, the API and the tool's checks
# --------------------------------------------------------------------------------------------
def test_the_answer_list_converter_counts_normalised_votes(tmp_path, capsys):
    annotations = [
        dict(question_id=i, multiple_choice_answer=a)
        for i, a in enumerate(['two'] * 3 + ['2'] * 2 + ['Dog'] * 3 + ['cat'] + ['the'])
    ]
    annotations.append(dict(question_id=99))  # no multiple_choice_answer: skipped
    files = []
    for number, part in enumerate((annotations[:6], annotations[6:])):
        files.append(tmp_path / f'v2_mscoco_part{number}_annotations.json')
        files[-1].write_text(json.dumps(dict(annotations=part)))
    tool = load_tool('dataset_converters/vqa_answer_list.py')
    out = tmp_path / 'answer_list.json'
    assert tool.main([*map(str, files), str(out), '--min-count', '2']) == ['2', 'dog']
    assert json.loads(out.read_text()) == ['2', 'dog']
    printed = capsys.readouterr().out
    assert (
        'wrote 2 answers' in printed and '1 annotations without a multiple_choice_answer' in printed
    )
    assert '1 answers empty once normalised' in printed
    assert tool.main([*map(str, files), str(out), '--max-answers', '1', '--min-count', '1']) == [
        '2'
    ]
    with pytest.raises(UserError, match='lower --min-count'):
        tool.main([*map(str, files), str(out), '--min-count', '50'])


def test_answer_api_and_the_tools_checks(tmp_path):
    model = vqa_model().eval()
    answers = answer(model, torch.rand(2, 3, 32, 32), ['what is it?', 'is it red?'])
    assert len(answers) == 2 and all(a in CANDIDATES for a in answers)
    with pytest.raises(InputError, match='2 images but 1 questions'):
        answer(model, torch.rand(2, 3, 32, 32), ['what is it?'])
    with pytest.raises(InputError, match='empty once cleaned'):
        answer(model, torch.rand(1, 3, 32, 32), ['???'])
    with pytest.raises(InputError, match='non-empty strings'):
        answer(model, torch.rand(1, 3, 32, 32), ['  '])
    other = MODELS.build(tiny_davinci_config(objectives=[], head=dict(type='WritePaintHead')))
    with pytest.raises(InputError, match='VQAHead; this one has WritePaintHead'):
        answer(other, torch.rand(1, 3, 32, 32), ['what?'])
    tool = load_tool('answer.py')
    image = tmp_path / 'a.png'
    Image.new('RGB', (32, 32)).save(image)
    assert tool.image_question_pairs([str(image), 'what?']) == ([str(image)], ['what?'])
    with pytest.raises(UserError, match='odd number'):
        tool.image_question_pairs([str(image)])
    with pytest.raises(UserError, match='does not exist'):
        tool.image_question_pairs([str(tmp_path / 'b.png'), 'what?'])
    with pytest.raises(UserError, match='is empty'):
        tool.image_question_pairs([str(image), ' '])


# --------------------------------------------------------------------------------------------
# The configs
# --------------------------------------------------------------------------------------------
def test_the_base_config_pipelines_read_the_official_layout(tmp_path):
    """The paper recipe's pipelines at 480 px on fixture files (the model is not built)."""
    cfg = Config.fromfile(str(BASE_CONFIG))
    assert cfg.model.head.type == 'VQAHead' and cfg.model.image_size == 480
    rows = colour_questions(tmp_path, 'train2014', 1, 1, seed=0)
    write_subset(tmp_path, 'train2014', rows)
    train = VQAv2(str(tmp_path), 'train2014', cfg.train_dataloader.dataset.pipeline)
    item = train[0]
    assert tuple(item['inputs']['images'].shape) == (3, 480, 480)
    assert item['data_samples'].answers == [rows[0]['answers'][0]]
    test = VQAv2(str(tmp_path), 'train2014', cfg.test_dataloader.dataset.pipeline)
    assert tuple(test[0]['inputs']['images'].shape) == (3, 480, 480)
    assert 'answers' not in test[0]['inputs']


def test_the_scene_model_has_the_quick_start_models_keys():
    """So work_dirs/quickstart/davinci/iter_700.pth loads into it strictly (the head, the
    tokenizer and the pretraining objectives' own weights aside: the pretrained load drops
    those)."""
    scenes = Config.fromfile(str(SCENES_CONFIG)).model
    scenes.update(pretrained=None, head=dict(scenes.head, answer_list=CANDIDATES))
    quick = Config.fromfile(str(REPO / 'configs' / 'davinci_tiny_scenes32.py')).model
    quick.update(image_embedding_init='normal', head=None)
    quick.image_tokenizer.checkpoint = None
    task_keys = set(MODELS.build(scenes).state_dict())
    dropped_on_load = ('image_tokenizer.', 'objectives.')
    quick_keys = {k for k in MODELS.build(quick).state_dict() if not k.startswith(dropped_on_load)}
    assert task_keys - quick_keys == set() and quick_keys - task_keys == set()


def scene_fixture_config(tmp_path) -> str:
    """vqa_scenes32.py on fixture files in the official layout, written by the test: 8 train
    questions (2 iterations of 4 in the one epoch), 4 test questions, no checkpoint to start
    from; the results file is written too."""
    data = tmp_path / 'vqa'
    data.mkdir()
    write_subset(data, 'train2014', colour_questions(data, 'train2014', 8, 1, seed=1))
    write_subset(data, 'val2014', colour_questions(data, 'val2014', 4, 100, seed=2))
    tool = load_tool('dataset_converters/vqa_answer_list.py')
    annotations = str(data / 'v2_mscoco_train2014_annotations.json')
    tool.main([annotations, str(data / 'answers.json'), '--min-count', '1'])
    lines = [
        f'_base_ = [{str(SCENES_CONFIG)!r}]',
        f'model = dict(pretrained=None, head=dict(answer_list={str(data / "answers.json")!r}))',
        f'train_dataloader = dict(batch_size=4, dataset=dict(data_root={str(data)!r}))',
        'train_cfg = dict(max_epochs=1)',
        f'test_dataloader = dict(dataset=dict(data_root={str(data)!r}))',
        f'test_evaluator = dict(outfile={str(tmp_path / "results.json")!r})',
    ]
    path = tmp_path / 'vqa_fixture.py'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


@pytest.mark.slow(budget_s=120)
@pytest.mark.subprocess
def test_the_scene_config_fine_tunes_and_tests_through_the_tools(tmp_path):
    """2 iterations of vqa_scenes32.py through tools/train.py; tools/test.py writes the
    accuracy keys and the server's results file; tools/answer.py answers from the checkpoint."""
    config = scene_fixture_config(tmp_path)
    work = tmp_path / 'work'
    one_thread = dict(OMP_NUM_THREADS='1')
    train = run_tool('tools/train.py', config, '--work-dir', str(work), **one_thread)
    assert train.returncode == 0, train.stderr[-3000:]
    assert 'loss_vqa: ' in train.stdout + train.stderr
    checkpoint = str(work / 'epoch_1.pth')
    metrics = tmp_path / 'metrics.json'
    test = run_tool(
        'tools/test.py',
        config,
        checkpoint,
        '--work-dir',
        str(work),
        '--metrics-json',
        str(metrics),
        **one_thread,
    )
    assert test.returncode == 0, test.stderr[-3000:]
    scores = json.loads(metrics.read_text())
    assert {'vqa/accuracy', 'vqa/accuracy_other', 'vqa/count'} <= set(scores)
    assert 0 <= scores['vqa/accuracy'] <= 100 and scores['vqa/count'] == 4
    written = json.loads((tmp_path / 'results.json').read_text())
    assert sorted(r['question_id'] for r in written) == [1000, 1010, 1020, 1030]
    image = str(tmp_path / 'vqa' / 'val2014' / 'COCO_val2014_000000000100.jpg')
    answered = run_tool(
        'tools/answer.py', config, checkpoint, image, 'What color is the shape?', **one_thread
    )
    assert answered.returncode == 0, answered.stderr[-3000:]
    path, question, text = answered.stdout.strip().split('\t')
    assert (path, question) == (image, 'What color is the shape?')
    assert text in json.loads((tmp_path / 'vqa' / 'answers.json').read_text())
    missing = run_tool('tools/answer.py', config, checkpoint, image, **one_thread)
    assert missing.returncode == 2 and missing.stderr.strip().startswith('error: give IMAGE')
