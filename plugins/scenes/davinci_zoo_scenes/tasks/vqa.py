"""VQAv2 from scenes, in the official files of the VQA v2 release.

    vqa/v2_OpenEnded_mscoco_train2014_questions.json  {info, task_type, data_type, license,
        data_subtype, questions: [{image_id, question, question_id}]}
    vqa/v2_mscoco_train2014_annotations.json          {info, license, data_subtype,
        annotations: [{question_type, multiple_choice_answer, answers: 10 x {answer,
        answer_confidence, answer_id}, image_id, answer_type, question_id}], data_type}
    vqa/train2014/COCO_train2014_000000000001.jpg     one scene per question
    (and the same for val2014, the test split)

Every question text is asked of several scenes, once with each answer it can take, so each
template's answers are uniform (yes/no 50/50, counts uniform) and no answer follows from the
text. Answers are written normalised (lowercase, digits), all ten annotators agreeing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..vocabulary import COLOURS, POSITIONS, SHAPES, SIZES, uses_held_out_pair
from .files import SPLIT_ID_STRIDE, checked_render, scaled, split_rng, write_bytes, write_json
from .sampling import (
    Pool,
    Template,
    allowed_pairs,
    balanced_groups,
    mentions_held_out,
    objects_with,
    parse_text,
    scene_descriptions,
    scene_weights,
)

TASK_NUMBER = 1
# (data_subtype, questions at scale 1, leaves out the held-out colour/shape pairs)
SPLITS = (('train2014', 4000, True), ('val2014', 800, False))
ANSWERS_PER_QUESTION = 10


@dataclass(frozen=True)
class QuestionTemplate(Template):
    """A question pattern with the VQA fields of its annotations."""

    question_type: str
    answer_type: str


def _only(found, attribute):
    """``attribute`` of the one object found; None when there is none or several."""
    return getattr(found[0], attribute) if len(found) == 1 else None


def _relation(relation):
    """Judge of 'is the A <relation> the B?': only asked of two-object scenes showing A and B."""

    def judge(params, description):
        if description.relation is None:
            return None
        shown = tuple((obj.colour, obj.shape) for obj in description.objects)
        asked = ((params['colour'], params['shape']), (params['colour2'], params['shape2']))
        if set(shown) != set(asked):
            return None
        return 'yes' if description.relation == relation and shown == asked else 'no'

    return judge


def _position(params, description):
    """The quadrant of the asked object in a one-object scene (None for any other scene)."""
    present = objects_with(description, params['colour'], params['shape'])
    return description.position if present else None


TEMPLATES = (
    QuestionTemplate(
        'count',
        'How many shapes are there?',
        ('1', '2'),
        lambda p, d: str(len(d.objects)),
        'how many',
        'number',
    ),
    QuestionTemplate(
        'count_shape',
        'How many {shape}s are there?',
        ('0', '1', '2'),
        lambda p, d: str(len(objects_with(d, shape=p['shape']))),
        'how many',
        'number',
    ),
    QuestionTemplate(
        'exist',
        'Is there a {colour} {shape}?',
        ('yes', 'no'),
        lambda p, d: 'yes' if objects_with(d, p['colour'], p['shape']) else 'no',
        'is there a',
        'yes/no',
    ),
    QuestionTemplate(
        'colour',
        'What color is the {shape}?',
        tuple(COLOURS),
        lambda p, d: _only(objects_with(d, shape=p['shape']), 'colour'),
        'what color is the',
        'other',
    ),
    QuestionTemplate(
        'shape',
        'What shape is the {colour} object?',
        SHAPES,
        lambda p, d: _only(objects_with(d, colour=p['colour']), 'shape'),
        'what shape is the',
        'other',
    ),
    QuestionTemplate(
        'size',
        'What size is the {colour} {shape}?',
        SIZES,
        lambda p, d: _only(objects_with(d, p['colour'], p['shape']), 'size'),
        'what size is the',
        'other',
    ),
    QuestionTemplate(
        'position', 'Where is the {colour} {shape}?', POSITIONS, _position, 'where is the', 'other'
    ),
    QuestionTemplate(
        'above',
        'Is the {colour} {shape} above the {colour2} {shape2}?',
        ('yes', 'no'),
        _relation('above'),
        'is the',
        'yes/no',
    ),
    QuestionTemplate(
        'left_of',
        'Is the {colour} {shape} to the left of the {colour2} {shape2}?',
        ('yes', 'no'),
        _relation('left of'),
        'is the',
        'yes/no',
    ),
)


def answer_question(question, description):
    """The normalised answer to ``question`` about a scene ``description`` (None: not askable)."""
    template, params = parse_text(TEMPLATES, question)
    return template.judge(params, description)


def template_of(question):
    """The name of the template that wrote ``question``."""
    return parse_text(TEMPLATES, question)[0].name


def _split_items(rng, count, exclude_held_out):
    """[(template, question, answer, description, names a held-out pair)], shuffled."""
    descriptions = scene_descriptions(exclude_held_out)
    pool = Pool(descriptions, scene_weights(descriptions))
    pairs = allowed_pairs(exclude_held_out)
    items = []
    for template, params, answers in balanced_groups(rng, TEMPLATES, count, pairs, pool.labels):
        question = template.write(params)
        for answer in answers:
            description = pool.draw(rng, template, params, answer)
            items.append((template, question, answer, description, mentions_held_out(params)))
    order = rng.permutation(len(items))
    return [items[index] for index in order]


def _header(seed):
    info = dict(
        description=f'VQA v2 questions on procedural scenes (davinci-zoo-scenes, seed {seed})',
        version='2.0',
    )
    return info, dict(name='Apache-2.0', url='https://www.apache.org/licenses/LICENSE-2.0')


def _annotation(template, answer, image_id, question_id):
    answers = [
        dict(answer=answer, answer_confidence='yes', answer_id=number)
        for number in range(1, ANSWERS_PER_QUESTION + 1)
    ]
    return dict(
        question_type=template.question_type,
        multiple_choice_answer=answer,
        answers=answers,
        image_id=image_id,
        answer_type=template.answer_type,
        question_id=question_id,
    )


def _write_split(root, subtype, items, first_id, rng, image_size, seed):
    questions, annotations, unseen = [], [], []
    for offset, (template, question, answer, description, mentions) in enumerate(items):
        image_id = first_id + offset
        question_id = image_id * 1000
        _, data = checked_render(rng, description, image_size, 'JPEG')
        write_bytes(root / subtype / f'COCO_{subtype}_{image_id:012d}.jpg', data)
        questions.append(dict(image_id=image_id, question=question, question_id=question_id))
        annotations.append(_annotation(template, answer, image_id, question_id))
        if mentions or uses_held_out_pair(description):
            unseen.append(question_id)
    info, license_ = _header(seed)
    write_json(
        root / f'v2_OpenEnded_mscoco_{subtype}_questions.json',
        dict(
            info=info,
            task_type='Open-Ended',
            data_type='mscoco',
            license=license_,
            data_subtype=subtype,
            questions=questions,
        ),
    )
    write_json(
        root / f'v2_mscoco_{subtype}_annotations.json',
        dict(
            info=info,
            license=license_,
            data_subtype=subtype,
            annotations=annotations,
            data_type='mscoco',
        ),
    )
    return unseen


def write(root, seed, scale, image_size):
    """Write every split under ``root``; the counts and unseen question ids per split."""
    splits, unseen = {}, {}
    for number, (subtype, count, exclude_held_out) in enumerate(SPLITS):
        rng = split_rng(seed, TASK_NUMBER, number)
        items = _split_items(rng, scaled(count, scale), exclude_held_out)
        first_id = number * SPLIT_ID_STRIDE + 1
        unseen[subtype] = _write_split(root, subtype, items, first_id, rng, image_size, seed)
        splits[subtype] = len(items)
    return dict(splits=splits, unseen=unseen)
