"""VQAv2 from its official files (questions, annotations, COCO images), plus Visual Genome QA.

The official layout, every name relative to ``data_root`` (docs/tasks/vqa.md)::

    v2_OpenEnded_mscoco_train2014_questions.json   {"questions": [{"image_id", "question",
                                                     "question_id"}, ...], ...}
    v2_mscoco_train2014_annotations.json           {"annotations": [{"question_id", "image_id",
                                                     "question_type", "answer_type",
                                                     "multiple_choice_answer", "answers":
                                                     [{"answer", "answer_confidence",
                                                     "answer_id"} x 10]}], ...}
    train2014/COCO_train2014_000000000009.jpg       (COCO's image folders as they unzip)

test2015 and test-dev2015 have questions only; test-dev's images are in ``test2015/``. Visual
Genome's official ``question_answers.json`` (``[{"id": image_id, "qas": [{"qa_id", "image_id",
"question", "answer", ...}]}]``, images in ``VG_100K/`` or ``VG_100K_2/``) adds training
questions with one answer each.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from torch.utils.data import Dataset

from ..evaluation.vqa import normalize_answer
from ..registry import DATASETS
from .bad_rows import BadDataError, BadRow, BadRowTally, DataFileError
from .transforms import build_pipeline, run_pipeline

QUESTION_FILE = 'v2_OpenEnded_mscoco_{subset}_questions.json'
ANNOTATION_FILE = 'v2_mscoco_{subset}_annotations.json'
IMAGE_FILE = '{image_subset}/COCO_{image_subset}_{image_id:012d}.jpg'
#: subsets whose images live in another subset's folder
IMAGE_SUBSET = {'test-dev2015': 'test2015'}


class Row(NamedTuple):
    """One question as read from its file: parsed when accessed, so a bad one is counted."""

    file: str
    where: str  # 'file row N', for messages
    subset: str | None  # the VQAv2 subset; None for Visual Genome
    raw: object  # the question entry (VQAv2) or the qa entry (Visual Genome)


def read_json_file(path: str, what: str):
    """A JSON file's content; a one-line error naming the file when missing or broken."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} {path} does not exist; see docs/tasks/vqa.md')
    with open(path, encoding='utf-8') as stream:
        try:
            return json.load(stream)
        except json.JSONDecodeError as error:
            raise DataFileError(f'{what} {path} is not valid JSON ({error})') from None


def listed(content, key: str, path: str) -> list:
    """``content[key]`` when it is a list; else a one-line error naming the file."""
    if not isinstance(content, dict) or not isinstance(content.get(key), list):
        raise DataFileError(f'{path} must hold an object with a "{key}" list (the official layout)')
    return content[key]


def integer(entry: dict, key: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRow(f'{key} {value!r:.40} is not an integer')
    return value


def text(entry: dict, key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise BadRow(f'{key} {value!r:.40} is not a string')
    return value


@DATASETS.register_module()
class VQAv2(Dataset):
    """VQAv2 questions with their image and, where the subset has annotations, the answers.

    Args:
        data_root: the folder holding the official question and annotation files and the
            COCO image folders.
        subsets: VQAv2 subsets read in order, e.g. ``['train2014', 'val2014']`` or
            ``'test-dev2015'``. A subset's annotation file is read when it exists; it must
            exist unless the subset's name starts with ``test``.
        pipeline: transforms from the fields below to a packed item (docs/tasks/vqa.md).
        question_file, annotation_file, image_file: name patterns relative to ``data_root``
            (default: the official names; ``{subset}``, ``{image_subset}``, ``{image_id}``).
        vg_file: Visual Genome's ``question_answers.json`` to add (None: none).
        vg_image_root: the folder holding ``vg_image_dirs``; default ``dirname(vg_file)``.
        vg_image_dirs: the folders under it searched for ``{image_id}.jpg``.
        vg_answer_weight: the weight of a Visual Genome answer (the original's 0.5).
        normalize_answers: train on answers normalised as the official evaluation normalises
            predictions (``'Two.'`` -> ``'2'``; equal ones merge); False: as written.
        max_bad_fraction, min_rows: the bad-row limit (docs/data.md, Bad rows).

    The pipeline starts from ``img_path``, ``question`` (raw), ``question_id``, ``image_id``,
    ``sample_idx`` and ``dataset`` (``'vqa'`` or ``'vg'``); annotated questions also have
    ``answers`` (the distinct answers), ``answer_weight`` (count / number of answers; Visual
    Genome: ``vg_answer_weight``), ``gt_answer`` (every human answer as written, for the
    metric) and, in VQAv2, ``answer_type`` and ``question_type``. A bad row (not an object, a
    missing or mistyped field, a question without annotation, no usable answer, a missing
    image) is skipped for the next row and counted.
    """

    def __init__(
        self,
        data_root: str,
        subsets: str | Sequence[str] = (),
        pipeline: Sequence = (),
        question_file: str = QUESTION_FILE,
        annotation_file: str = ANNOTATION_FILE,
        image_file: str = IMAGE_FILE,
        vg_file: str | None = None,
        vg_image_root: str | None = None,
        vg_image_dirs: Sequence[str] = ('VG_100K', 'VG_100K_2'),
        vg_answer_weight: float = 0.5,
        normalize_answers: bool = True,
        max_bad_fraction: float | None = 0.01,
        min_rows: int = 1000,
    ) -> None:
        self.data_root, self.image_file = data_root, image_file
        self.subsets = [subsets] if isinstance(subsets, str) else list(subsets)
        self.rows: list[Row] = []
        self.annotations: dict[str, dict] = {}  # subset -> question_id -> annotation
        for subset in self.subsets:
            self._read_subset(subset, question_file, annotation_file)
        self.vg_image_root = vg_image_root or os.path.dirname(vg_file or '')
        self.vg_image_dirs, self.vg_answer_weight = list(vg_image_dirs), vg_answer_weight
        if vg_file is not None:
            self._read_visual_genome(vg_file)
        if not self.rows:
            raise DataFileError(f'VQAv2: no questions in subsets {self.subsets} of {data_root}')
        self.normalize_answers = normalize_answers
        self.pipeline = build_pipeline(pipeline)
        self.tally = BadRowTally(type(self).__name__, max_bad_fraction, min_rows)

    # -- reading the files -------------------------------------------------------------------
    def _read_subset(self, subset: str, question_file: str, annotation_file: str) -> None:
        path = os.path.join(self.data_root, question_file.format(subset=subset))
        questions = listed(read_json_file(path, 'VQA question file'), 'questions', path)
        self.rows += [Row(path, f'{path} row {n}', subset, q) for n, q in enumerate(questions)]
        annotations = os.path.join(self.data_root, annotation_file.format(subset=subset))
        if os.path.isfile(annotations) or not subset.startswith('test'):
            content = read_json_file(annotations, 'VQA annotation file')
            self.annotations[subset] = {
                entry['question_id']: entry
                for entry in listed(content, 'annotations', annotations)
                if isinstance(entry, dict) and 'question_id' in entry
            }

    def _read_visual_genome(self, path: str) -> None:
        images = read_json_file(path, 'Visual Genome QA file')
        if not isinstance(images, list):
            raise DataFileError(
                f'{path} must hold a list of {{"id", "qas"}} objects (Visual Genome)'
            )
        for number, image in enumerate(images):
            qas = image.get('qas') if isinstance(image, dict) else None
            if not isinstance(qas, list):  # counted as one bad row when read
                self.rows.append(Row(path, f'{path} image {number}', None, image))
                continue
            self.rows += [
                Row(path, f'{path} image {number} qa {k}', None, qa) for k, qa in enumerate(qas)
            ]

    # -- one row -----------------------------------------------------------------------------
    def row_fields(self, row: Row, position: int) -> dict:
        """The pipeline's input for ``row``; BadRow when it cannot be used."""
        if not isinstance(row.raw, dict):
            raise BadRow(f'not a JSON object with the expected fields: {row.raw!r:.60}')
        if row.subset is None:
            return self._visual_genome_fields(row.raw, position)
        entry = row.raw
        question_id, image_id = integer(entry, 'question_id'), integer(entry, 'image_id')
        subset = IMAGE_SUBSET.get(row.subset, row.subset)
        fields = dict(
            img_path=os.path.join(
                self.data_root, self.image_file.format(image_subset=subset, image_id=image_id)
            ),
            question=text(entry, 'question'),
            question_id=question_id,
            image_id=image_id,
            sample_idx=position,
            dataset='vqa',
        )
        if row.subset in self.annotations:
            annotation = self.annotations[row.subset].get(question_id)
            if annotation is None:
                raise BadRow(f'question {question_id} has no annotation')
            fields.update(self._annotated(annotation))
        return fields

    def _annotated(self, annotation: dict) -> dict:
        answers = annotation.get('answers')
        if not isinstance(answers, list) or not answers:
            raise BadRow('the annotation has no "answers" list')
        written = [text(a, 'answer') if isinstance(a, dict) else None for a in answers]
        if None in written:
            raise BadRow('an entry of "answers" is not an object')
        fields = dict(gt_answer=written, **self.weighted(written, 1 / len(written)))
        for key in ('answer_type', 'question_type'):
            if isinstance(annotation.get(key), str):
                fields[key] = annotation[key]
        return fields

    def weighted(self, written: list[str], unit: float) -> dict:
        """``answers`` (distinct, first-seen order) and ``answer_weight`` (unit x count)."""
        cleaned = [normalize_answer(a) if self.normalize_answers else a.strip() for a in written]
        counts = Counter(answer for answer in cleaned if answer)
        if not counts:
            raise BadRow(f'no usable answer in {written!r:.60}')
        return dict(answers=list(counts), answer_weight=[unit * n for n in counts.values()])

    def _visual_genome_fields(self, qa: dict, position: int) -> dict:
        image_id, answer = integer(qa, 'image_id'), text(qa, 'answer')
        folders = [
            os.path.join(self.vg_image_root, d, f'{image_id}.jpg') for d in self.vg_image_dirs
        ]
        found = [path for path in folders if os.path.isfile(path)]
        if not found:
            raise BadRow(f'image {image_id}.jpg is in none of {folders}')
        return dict(
            img_path=found[0],
            question=text(qa, 'question'),
            question_id=integer(qa, 'qa_id'),
            image_id=image_id,
            sample_idx=position,
            dataset='vg',
            gt_answer=[answer],
            **self.weighted([answer], self.vg_answer_weight),
        )

    # -- Dataset -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.rows)):
            position = (index + offset) % len(self.rows)
            row = self.rows[position]
            try:
                item = run_pipeline(self.pipeline, self.row_fields(row, position))
            except BadRow as error:
                self.tally.skip(row.file, row.where, str(error))
                continue
            return dict(item, **self.tally.accept())
        raise BadDataError(f'{type(self).__name__}: no usable row in {len(self.rows)} rows')


__all__ = ['VQAv2']
