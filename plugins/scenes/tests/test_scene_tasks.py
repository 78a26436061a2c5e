"""Scene versions of VQAv2, NLVR2, SNLI-VE and COCO captions: the published layouts, labels
that the analyser confirms from the written pixels, balance, and no answer in the text alone."""

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from davinci_zoo_scenes import HELD_OUT_PAIRS, analyse, parse_caption, uses_held_out_pair
from davinci_zoo_scenes.tasks import TASKS, caption, generate_task, nlvr2, snli_ve, vqa
from davinci_zoo_scenes.tasks.cli import main as tasks_main
from PIL import Image

from davinci_zoo.cli import run_tool

SCALE = 0.1  # ~400 VQA / 300 NLVR2 / 300 SNLI-VE training items: a few seconds
SEED = 0
CHANCE_MARGIN = 0.05


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """All four tasks written by the command, as a user runs it."""
    out = tmp_path_factory.mktemp('scenes_tasks')
    run_tool(tasks_main, ['--out', str(out), '--seed', str(SEED), '--scale', str(SCALE)])
    return out


def read_rgb(path):
    with Image.open(path) as image:
        assert image.size == (32, 32), path
        return np.asarray(image.convert('RGB'))


def read_json(path):
    return json.loads(Path(path).read_text(encoding='utf-8'))


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding='utf-8').splitlines()]


def text_only_accuracy(train, test, group_of=lambda text: None):
    """Majority label per text learned on ``train`` [(text, label)], scored on ``test``.

    Ties go to the smallest label; a text unseen in training gets the majority of the
    training texts of its group (``group_of(text)``, e.g. its template).
    """
    by_text, by_group = defaultdict(Counter), defaultdict(Counter)
    for text, label in train:
        by_text[text][label] += 1
        by_group[group_of(text)][label] += 1

    def majority(counts):
        return min(counts, key=lambda label: (-counts[label], label))

    guesses = [
        majority(by_text[text] if text in by_text else by_group[group_of(text)]) for text, _ in test
    ]
    return float(np.mean([guess == label for guess, (_, label) in zip(guesses, test)]))


def test_text_only_baseline_finds_a_label_the_text_gives_away():
    leaky = [('is it red?', 'yes'), ('is it red?', 'yes'), ('is it blue?', 'no')]
    assert text_only_accuracy(leaky, [('is it red?', 'yes'), ('is it blue?', 'no')]) == 1.0
    assert text_only_accuracy(leaky, [('is it green?', 'yes'), ('is it green?', 'no')]) == 0.5


def assert_each_text_takes_each_label(pairs, labels_of_text=None):
    """Every text appears equally often with each of its labels: ``labels_of_text(text)``, or
    (None) at least two."""
    by_text = defaultdict(Counter)
    for text, label in pairs:
        by_text[text][label] += 1
    for text, counts in by_text.items():
        if labels_of_text is None:
            assert len(counts) >= 2, (text, counts)
        else:
            assert set(counts) == set(labels_of_text(text)), (text, counts)
        assert len(set(counts.values())) == 1, (text, counts)


def names_held_out(text):
    return any(f'{colour} {shape}' in text for colour, shape in HELD_OUT_PAIRS)


# ---------------------------------------------------------------- the command


def test_command_writes_every_task_with_its_meta(root):
    assert sorted(path.name for path in root.iterdir()) == sorted(TASKS)
    for task in TASKS:
        meta = read_json(root / task / 'scenes_task.json')
        assert meta['complete'] and meta['task'] == task and meta['seed'] == SEED
        assert sorted(map(tuple, meta['held_out_pairs'])) == sorted(HELD_OUT_PAIRS)
        assert all(count > 0 for count in meta['splits'].values()), meta['splits']
    assert read_json(root / 'vqa' / 'scenes_task.json')['splits']['train2014'] >= 350


def tree_hashes(folder):
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob('*'))
        if path.is_file()
    }


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path):
    for name in ('first', 'second', 'other'):
        seed = 1 if name == 'other' else 0
        for task in TASKS:
            generate_task(task, tmp_path / name, seed=seed, scale=0.02)
    first, second = tree_hashes(tmp_path / 'first'), tree_hashes(tmp_path / 'second')
    assert len(first) > 100
    assert first == second
    other = tree_hashes(tmp_path / 'other')
    common = first.keys() & other.keys()
    changed = [name for name in common if other[name] != first[name]]
    assert len(changed) > 0.9 * len(common)


def test_one_task_alone_gives_the_same_files(root, tmp_path):
    generate_task('snli_ve', tmp_path, seed=SEED, scale=SCALE)
    assert tree_hashes(tmp_path / 'snli_ve') == tree_hashes(root / 'snli_ve')


def test_command_errors_are_one_line(tmp_path, capsys):
    cases = [
        (['--tasks', 'vqa,gqa'], 'unknown gqa'),
        (['--scale', '0'], '--scale must be a positive number'),
        (['--image-size', '16'], '--image-size must be at least 32'),
    ]
    foreign = tmp_path / 'vqa'
    foreign.mkdir()
    (foreign / 'mine.txt').write_text('not the generator')
    cases.append((['--tasks', 'vqa'], 'was not written by this generator'))
    for arguments, message in cases:
        with pytest.raises(SystemExit) as stop:
            run_tool(tasks_main, ['--out', str(tmp_path), '--scale', '0.01', *arguments])
        assert stop.value.code == 2
        error = capsys.readouterr().err
        assert error.startswith('error: ') and message in error and error.count('\n') == 1
    assert (foreign / 'mine.txt').exists()


def test_a_second_run_replaces_its_own_folder(tmp_path):
    generate_task('caption', tmp_path, seed=0, scale=0.02)
    stale = tmp_path / 'caption' / 'train2014' / 'COCO_train2014_999999999999.jpg'
    stale.write_bytes(b'left over')
    generate_task('caption', tmp_path, seed=0, scale=0.02)
    assert not stale.exists() and not (tmp_path / 'caption.partial').exists()


# ---------------------------------------------------------------- VQAv2


def vqa_items(root, subtype):
    """[(question, answer, annotation, image path)] of one VQA split, checking its structure."""
    folder = root / 'vqa'
    questions = read_json(folder / f'v2_OpenEnded_mscoco_{subtype}_questions.json')
    annotations = read_json(folder / f'v2_mscoco_{subtype}_annotations.json')
    assert questions['task_type'] == 'Open-Ended' and questions['data_type'] == 'mscoco'
    assert questions['data_subtype'] == annotations['data_subtype'] == subtype
    assert {'info', 'license'} <= questions.keys() & annotations.keys()
    by_id = {question['question_id']: question for question in questions['questions']}
    assert len(by_id) == len(questions['questions']) == len(annotations['annotations'])
    items = []
    for annotation in annotations['annotations']:
        question = by_id[annotation['question_id']]
        assert set(question) == {'image_id', 'question', 'question_id'}
        assert question['image_id'] == annotation['image_id']
        assert question['question'][0].isupper() and question['question'].endswith('?')
        answer = annotation['multiple_choice_answer']
        assert answer == answer.lower().strip()
        assert [a['answer'] for a in annotation['answers']] == [answer] * 10
        assert [a['answer_id'] for a in annotation['answers']] == list(range(1, 11))
        assert {a['answer_confidence'] for a in annotation['answers']} == {'yes'}
        assert annotation['answer_type'] in {'yes/no', 'number', 'other'}
        assert question['question'].lower().startswith(annotation['question_type'])
        if annotation['answer_type'] == 'number':
            assert answer.isdigit()
        path = folder / subtype / f'COCO_{subtype}_{annotation["image_id"]:012d}.jpg'
        items.append((question['question'], answer, annotation, path))
    return items


def test_vqa_answers_are_what_the_written_images_show(root):
    meta = read_json(root / 'vqa' / 'scenes_task.json')
    for subtype in ('train2014', 'val2014'):
        unseen = []
        for question, answer, annotation, path in vqa_items(root, subtype):
            reading = analyse(read_rgb(path))
            assert reading is not None, path
            assert vqa.answer_question(question, reading) == answer, (question, path)
            if uses_held_out_pair(reading) or names_held_out(question):
                unseen.append(annotation['question_id'])
        assert sorted(unseen) == sorted(meta['unseen'][subtype])
        if subtype == 'train2014':
            assert not unseen, 'training questions show or name a held-out pair'
        else:
            assert unseen, 'the test split should report some unseen combinations'


def test_vqa_answers_are_balanced_per_template_and_question(root):
    templates = {template.name: template for template in vqa.TEMPLATES}
    for subtype in ('train2014', 'val2014'):
        items = vqa_items(root, subtype)
        pairs = [(question, answer) for question, answer, _, _ in items]
        if subtype == 'val2014':
            assert_each_text_takes_each_label(
                pairs, lambda text: templates[vqa.template_of(text)].labels
            )
        else:  # training leaves out the answers that need a held-out pair
            assert_each_text_takes_each_label(pairs)
        by_template = defaultdict(Counter)
        for question, answer in pairs:
            by_template[vqa.template_of(question)][answer] += 1
        assert set(by_template) == set(templates)
        for name in ('count', 'count_shape', 'exist', 'above', 'left_of'):
            counts = by_template[name]
            assert set(counts) == set(templates[name].labels)
            assert len(set(counts.values())) == 1, (subtype, name, counts)


def test_vqa_text_alone_answers_at_chance(root):
    train = [(q, a) for q, a, _, _ in vqa_items(root, 'train2014')]
    test = [(q, a) for q, a, _, _ in vqa_items(root, 'val2014')]
    report = {}
    for template in vqa.TEMPLATES:
        part = [(q, a) for q, a in test if vqa.template_of(q) == template.name]
        accuracy = text_only_accuracy(train, part, vqa.template_of)
        chance = 1 / len(template.labels)
        report[template.name] = (round(accuracy, 3), round(chance, 3))
        assert accuracy <= chance + CHANCE_MARGIN, (template.name, accuracy, chance)
    print(f'\nVQA text-only accuracy (template: accuracy, chance): {report}')


# ---------------------------------------------------------------- NLVR2


def nlvr2_rows(root, split):
    rows = read_jsonl(root / 'nlvr2' / f'{split}.json')
    for row in rows:
        assert re.fullmatch(rf'{split}-\d+-\d+-0', row['identifier']), row['identifier']
        assert row['label'] in ('True', 'False')
        assert ('directory' in row) == (split == 'train')
        folder = nlvr2.image_folder(split, row)
        stem = nlvr2.image_stem(row['identifier'])
        assert row['left_url'] == f'{folder}/{stem}-img0.png'
        assert row['right_url'] == f'{folder}/{stem}-img1.png'
    assert len({row['identifier'] for row in rows}) == len(rows)
    return rows


def test_nlvr2_layout_and_labels_read_from_the_image_pairs(root):
    meta = read_json(root / 'nlvr2' / 'scenes_task.json')
    assert sorted(meta['splits']) == ['dev', 'test1', 'train']
    for split in ('train', 'dev', 'test1'):
        unseen = []
        for row in nlvr2_rows(root, split):
            folder = root / 'nlvr2' / nlvr2.image_folder(split, row)
            stem = nlvr2.image_stem(row['identifier'])
            with Image.open(folder / f'{stem}-img0.png') as image:
                assert image.format == 'PNG'
            left, right = (analyse(read_rgb(folder / f'{stem}-img{k}.png')) for k in (0, 1))
            assert left is not None and right is not None, row
            assert nlvr2.statement_label(row['sentence'], left, right) == row['label'], row
            shown = uses_held_out_pair(left) or uses_held_out_pair(right)
            if shown or names_held_out(row['sentence']):
                unseen.append(row['identifier'])
        assert sorted(unseen) == sorted(meta['unseen'][split])
        if split == 'train':
            assert not unseen, 'training pairs show or name a held-out pair'
    train_rows = nlvr2_rows(root, 'train')
    assert len({row['directory'] for row in train_rows}) > 10


def test_nlvr2_statements_take_both_labels_and_text_alone_is_at_chance(root):
    rows = {split: nlvr2_rows(root, split) for split in ('train', 'dev', 'test1')}
    for split_rows in rows.values():
        pairs = [(row['sentence'], row['label']) for row in split_rows]
        assert_each_text_takes_each_label(pairs, lambda text: nlvr2.LABELS)
        assert Counter(label for _, label in pairs)['True'] * 2 == len(pairs)
        templates = Counter(nlvr2.template_of(text) for text, _ in pairs)
        assert set(templates) == {template.name for template in nlvr2.TEMPLATES}
    train = [(row['sentence'], row['label']) for row in rows['train']]
    for split in ('dev', 'test1'):
        test = [(row['sentence'], row['label']) for row in rows[split]]
        accuracy = text_only_accuracy(train, test)
        print(f'\nNLVR2 {split} text-only accuracy: {accuracy:.3f} (chance 0.5)')
        assert accuracy <= 0.5 + CHANCE_MARGIN


# ---------------------------------------------------------------- SNLI-VE


SNLI_FIELDS = {
    'Flikr30kID',
    'annotator_labels',
    'captionID',
    'gold_label',
    'pairID',
    'sentence1',
    'sentence1_binary_parse',
    'sentence1_parse',
    'sentence2',
    'sentence2_binary_parse',
    'sentence2_parse',
}


def snli_rows(root, split):
    rows = read_jsonl(root / 'snli_ve' / f'snli_ve_{split}.jsonl')
    for row in rows:
        assert set(row) == SNLI_FIELDS and list(row) == sorted(row)
        assert row['gold_label'] in snli_ve.LABELS and row['annotator_labels'] == [
            row['gold_label']
        ]
        assert re.fullmatch(r'\d+\.jpg', row['Flikr30kID'])
        assert row['captionID'] == row['Flikr30kID'] + '#0'
        assert row['pairID'] == row['captionID'] + 'r1' + row['gold_label'][0]
        assert row['sentence2_binary_parse'].replace('( ', '').replace(' )', '').split() == (
            re.findall(r"[\w']+|[^\w\s]", row['sentence2'])
        )
    return rows


def test_snli_ve_labels_read_from_the_images_and_neutral_is_hidden(root):
    meta = read_json(root / 'snli_ve' / 'scenes_task.json')
    for split in ('train', 'dev', 'test'):
        rows, unseen = snli_rows(root, split), []
        for row in rows:
            path = root / 'snli_ve' / 'flickr30k_images' / row['Flikr30kID']
            with Image.open(path) as image:
                assert image.format == 'JPEG'
            pixels = read_rgb(path)
            hidden = snli_ve.find_occluder(pixels)
            assert hidden is not None, path
            assert analyse(pixels) is None  # the grey square is no scene object
            reading = analyse(snli_ve.visible_part(pixels, hidden))
            assert reading is not None and reading.position != hidden, path
            assert parse_caption(row['sentence1'].rstrip('.')) == reading
            label = snli_ve.hypothesis_label(row['sentence2'], reading, hidden)
            assert label == row['gold_label'], row
            if label == 'neutral':
                position = re.search(r'(top|bottom) (left|right)', row['sentence2']).group(0)
                assert position == hidden
                box = pixels[snli_ve.quadrant_box(position, 32)].astype(int)
                assert np.abs(box - snli_ve.OCCLUDER_GREY).max() <= 16
            if uses_held_out_pair(reading) or names_held_out(row['sentence2']):
                unseen.append(row['pairID'])
        assert sorted(unseen) == sorted(meta['unseen'][split])
        if split == 'train':
            assert not unseen, 'training images show or name a held-out pair'


def test_snli_ve_hypotheses_take_every_label_and_text_alone_is_at_chance(root):
    rows = {split: snli_rows(root, split) for split in ('train', 'dev', 'test')}
    for split_rows in rows.values():
        pairs = [(row['sentence2'], row['gold_label']) for row in split_rows]
        assert_each_text_takes_each_label(pairs, lambda text: snli_ve.LABELS)
        counts = Counter(label for _, label in pairs)
        assert len(set(counts.values())) == 1 and set(counts) == set(snli_ve.LABELS)
    train = [(row['sentence2'], row['gold_label']) for row in rows['train']]
    for split in ('dev', 'test'):
        test = [(row['sentence2'], row['gold_label']) for row in rows[split]]
        accuracy = text_only_accuracy(train, test)
        print(f'\nSNLI-VE {split} text-only accuracy: {accuracy:.3f} (chance 0.333)')
        assert accuracy <= 1 / 3 + CHANCE_MARGIN


def test_occluder_helpers():
    image = np.zeros((32, 32, 3), np.uint8)
    covered = snli_ve.draw_occluder(image, 'bottom left')
    assert snli_ve.find_occluder(covered) == 'bottom left'
    assert snli_ve.find_occluder(image) is None
    assert covered[16:, :16].min() == snli_ve.OCCLUDER_GREY and covered[:16].max() == 0
    assert snli_ve.visible_part(covered, 'bottom left').max() == 0


# ---------------------------------------------------------------- COCO captions (Karpathy)


def test_caption_karpathy_file_and_references_match_the_images(root):
    dataset = read_json(root / 'caption' / 'dataset_coco.json')
    assert dataset['dataset'] == 'coco' and set(dataset) == {'images', 'dataset'}
    images = dataset['images']
    assert Counter(entry['split'] for entry in images).keys() == {
        'train',
        'restval',
        'val',
        'test',
    }
    sentids = [sentence['sentid'] for entry in images for sentence in entry['sentences']]
    assert sorted(sentids) == list(range(len(sentids)))
    assert [entry['imgid'] for entry in images] == list(range(len(images)))
    assert len({entry['cocoid'] for entry in images}) == len(images)
    for entry in images:
        assert entry['filepath'] == ('train2014' if entry['split'] == 'train' else 'val2014')
        assert entry['filename'] == f'COCO_{entry["filepath"]}_{entry["cocoid"]:012d}.jpg'
        assert entry['sentids'] == [sentence['sentid'] for sentence in entry['sentences']]
        raws = [sentence['raw'] for sentence in entry['sentences']]
        assert len(raws) == 5 and len(set(raws)) == 5
        for sentence in entry['sentences']:
            assert sentence['imgid'] == entry['imgid']
            assert sentence['tokens'] == re.findall(r'[a-z0-9]+', sentence['raw'].lower())
        reading = analyse(read_rgb(root / 'caption' / entry['filepath'] / entry['filename']))
        assert reading is not None
        assert parse_caption(raws[0].rstrip('.')) == reading
        assert raws == [caption.raw_caption(text) for text in caption.paraphrases(reading)]
        if entry['split'] in ('train', 'restval'):
            assert not uses_held_out_pair(reading)


def test_paraphrases_name_every_attribute_of_the_scene():
    from davinci_zoo_scenes import all_descriptions

    for description in all_descriptions()[::37]:
        for text in caption.paraphrases(description):
            for obj in description.objects:
                assert f'{obj.size} {obj.colour} {obj.shape}' in text
            where = description.position or ''
            assert where in text


# ---------------------------------------------------------------- the core's loaders


def test_the_core_loaders_read_every_generated_row(root):
    """VQAv2, NLVR2, SNLIVE and CocoKarpathyCaptions read the sets with no bad row."""
    from davinci_zoo.datasets.coco_karpathy import CocoKarpathyCaptions
    from davinci_zoo.datasets.nlvr2 import NLVR2
    from davinci_zoo.datasets.snli_ve import SNLIVE
    from davinci_zoo.datasets.vqa import VQAv2

    def items(dataset):
        read = [dataset[index] for index in range(len(dataset))]
        assert [item['sample_idx'] for item in read] == list(range(len(dataset))), 'skipped'
        for item in read:
            paths = item['img_path'] if isinstance(item['img_path'], list) else [item['img_path']]
            assert all(Path(path).is_file() for path in paths), paths
        return read

    for subtype in ('train2014', 'val2014'):
        expected = {
            annotation['question_id']: answer
            for _, answer, annotation, _ in vqa_items(root, subtype)
        }
        read = items(VQAv2(data_root=str(root / 'vqa'), subsets=[subtype]))
        assert {item['question_id']: item['answers'] for item in read} == {
            question_id: [answer] for question_id, answer in expected.items()
        }
    for split, folder in (('train', 'images/train'), ('dev', 'dev'), ('test1', 'test1')):
        dataset = NLVR2(
            ann_file=str(root / 'nlvr2' / f'{split}.json'), data_root=str(root / 'nlvr2' / folder)
        )
        labels = {row['identifier']: row['label'] for row in nlvr2_rows(root, split)}
        read = items(dataset)
        assert {item['key']: dataset.classes[item['gt_label']] for item in read} == labels
    for split in ('train', 'dev', 'test'):
        dataset = SNLIVE(
            ann_file=str(root / 'snli_ve' / f'snli_ve_{split}.jsonl'),
            data_root=str(root / 'snli_ve' / 'flickr30k_images'),
        )
        labels = {row['pairID']: row['gold_label'] for row in snli_rows(root, split)}
        read = items(dataset)
        assert {item['key']: dataset.classes[item['gt_label']] for item in read} == labels
    karpathy = root / 'caption'
    meta = read_json(karpathy / 'scenes_task.json')
    for splits in (['train', 'restval'], ['val'], ['test']):
        dataset = CocoKarpathyCaptions(
            ann_file=str(karpathy / 'dataset_coco.json'), data_root=str(karpathy), split=splits
        )
        read = items(dataset)
        assert len(read) == sum(meta['splits'][split] for split in splits)
        assert all(len(item['caption']) == 5 for item in read)
