"""GLUE: every task's TSV files load in the distribution's exact layouts (malformed rows counted),
pairs become ``[CLS] a [SEP] b [SEP]``, the metrics equal hand-computed values, test predictions
land in the GLUE server's files, the submission tool completes them, and the scene config
fine-tunes and scores through tools/train.py and tools/test.py."""

from __future__ import annotations

import json
import math
import re
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from test_davinci_configs import ARCHITECTURE_KEYS
from test_davinci_model import build_model

from davinci_zoo.datasets.bad_rows import DataFileError
from davinci_zoo.datasets.glue import TASKS, GLUEDataset, glue_task, read_glue_file
from davinci_zoo.datasets.mixing import mixed_collate
from davinci_zoo.datasets.text_pair import TokenizeTextPair, longest_first
from davinci_zoo.evaluation.glue import TASK_METRICS, GLUEMetric, glue_scores
from davinci_zoo.evaluation.glue_submission import SERVER_FILES, check_submission, write_wnli
from davinci_zoo.models.parts import ComponentArgumentError
from davinci_zoo.text import sequences
from davinci_zoo.text.wordpiece import shared_tokenizer

PAIRS = [
    ('The cat sat on the mat.', 'A cat is sitting on a mat.'),
    ('He said "no" , then left .', "It's not the same thing ; is it?"),
    ('Stocks fell 3% on Monday.', 'Markets were closed.'),
]
MNLI_PARSES = ['( a b )', '( c d )', '(ROOT (S a b))', '(ROOT (S c d))']


def _sts_meta(index):
    return [str(index), 'main-captions', 'MSRvid', '2012test', f'{index:04d}', 'none', 'none']


# task -> (labelled header or None, labelled row, test header, test row); rows from
# (position, texts, label string). The official glue_data layouts (docs/tasks/glue.md).
LAYOUTS = {
    'CoLA': (
        None,
        lambda i, t, y: ['gj04', y, '' if y == '1' else '*', t[0]],
        ['index', 'sentence'],
        lambda i, t: [str(i), t[0]],
    ),
    'SST-2': (
        ['sentence', 'label'],
        lambda i, t, y: [t[0] + ' ', y],
        ['index', 'sentence'],
        lambda i, t: [str(i), t[0]],
    ),
    'MRPC': (
        ['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'],
        lambda i, t, y: [y, str(702876 + i), str(702977 + i), *t],
        ['index', '#1 ID', '#2 ID', '#1 String', '#2 String'],
        lambda i, t: [str(i), str(1089874 + i), str(1089925 + i), *t],
    ),
    'STS-B': (
        ['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2']
        + ['sentence1', 'sentence2', 'score'],
        lambda i, t, y: [*_sts_meta(i), *t, y],
        ['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2']
        + ['sentence1', 'sentence2'],
        lambda i, t: [*_sts_meta(i), *t],
    ),
    'QQP': (
        ['id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate'],
        lambda i, t, y: [str(133273 + i), str(2 * i + 1), str(2 * i + 2), *t, y],
        ['id', 'question1', 'question2'],
        lambda i, t: [str(i), *t],
    ),
    'MNLI': (
        ['index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse']
        + ['sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse', 'sentence1']
        + ['sentence2', 'label1', 'gold_label'],
        lambda i, t, y: [str(i), '31193', f'31193{i}n', 'government', *MNLI_PARSES, *t, y, y],
        ['index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse']
        + ['sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse', 'sentence1']
        + ['sentence2'],
        lambda i, t: [str(i), '31193', f'31193{i}n', 'government', *MNLI_PARSES, *t],
    ),
    'QNLI': (
        ['index', 'question', 'sentence', 'label'],
        lambda i, t, y: [str(i), *t, y],
        ['index', 'question', 'sentence'],
        lambda i, t: [str(i), *t],
    ),
    'RTE': (
        ['index', 'sentence1', 'sentence2', 'label'],
        lambda i, t, y: [str(i), *t, y],
        ['index', 'sentence1', 'sentence2'],
        lambda i, t: [str(i), *t],
    ),
    'WNLI': (
        ['index', 'sentence1', 'sentence2', 'label'],
        lambda i, t, y: [str(i), *t, y],
        ['index', 'sentence1', 'sentence2'],
        lambda i, t: [str(i), *t],
    ),
}


def label_strings(task) -> list[str]:
    """A label string per fixture row, as the task's files write them."""
    task = glue_task(task)
    if task.regression:
        return ['5.000', '0.750', '3.200']
    return [task.classes[i % len(task.classes)] for i in range(len(PAIRS))]


def texts_of(task, pair) -> tuple[str, ...]:
    return pair[: len(glue_task(task).texts)]


def write_tsv(path: Path, header, rows) -> None:
    """Tab-separated lines; a str in ``rows`` is written as it is (a malformed line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([] if header is None else ['\t'.join(header)]) + [
        r if isinstance(r, str) else '\t'.join(r) for r in rows
    ]
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')


def write_labelled(path: Path, task: str, malformed: bool = True) -> None:
    """Three good rows in ``task``'s labelled layout and, with ``malformed``, one row short of
    a column and one with a label the task does not have."""
    header, row, _, _ = LAYOUTS[glue_task(task).name]
    rows = [
        row(i, texts_of(task, p), y) for i, (p, y) in enumerate(zip(PAIRS, label_strings(task)))
    ]
    if malformed:
        good = row(7, texts_of(task, PAIRS[0]), label_strings(task)[0])
        rows.insert(1, '\t'.join(good[:-1]))  # a column short
        bad_label = '7.5' if glue_task(task).regression else 'maybe'
        rows.append(row(8, texts_of(task, PAIRS[0]), bad_label))
    write_tsv(path, header, rows)


def write_test(path: Path, task: str, indices=(0, 1, 2)) -> None:
    _, _, header, row = LAYOUTS[glue_task(task).name]
    write_tsv(path, header, [row(i, texts_of(task, PAIRS[i % 3])) for i in indices])


def write_task(root: Path, task: str) -> Path:
    """``root/<TASK>/`` with train.tsv and dev.tsv (each with two malformed rows) and test.tsv."""
    folder = root / glue_task(task).name
    for split in ('train', 'dev'):
        write_labelled(folder / f'{split}.tsv', task)
    write_test(folder / 'test.tsv', task)
    return folder


PIPELINE = [
    dict(type='TokenizeTextPair', keys=['text', 'text_pair'], max_tokens=128),
    dict(
        type='PackDaVinciInputs',
        text_keys=['text'],
        algorithm_keys=['gt_value'],
        meta_keys=['sample_idx', 'glue_index', 'glue_subset'],
    ),
]
SINGLE = ('CoLA', 'SST-2')


@pytest.mark.parametrize('name', [task.name for task in TASKS.values() if task.name != 'MNLI'])
def test_every_task_reads_its_layout_and_counts_malformed_rows(name, tmp_path, caplog):
    """train.tsv: the three good rows with their texts and labels; the short row and the bad
    label are skipped, counted on the items and logged with file and line. test.tsv: no
    labels, the first column as the server's index."""
    folder = write_task(tmp_path, name)
    task = glue_task(name)
    dataset = GLUEDataset(name, str(folder), 'train', pipeline=PIPELINE)
    assert len(dataset) == 3
    for row, pair, label in zip(dataset.rows, PAIRS, label_strings(name)):
        assert row.texts == texts_of(name, pair if name != 'SST-2' else (pair[0] + ' ',))
        assert row.target == (float(label) if task.regression else task.classes.index(label))
    assert sum(dataset[i]['bad_rows'] for i in range(3)) == 2
    assert [dataset[i]['seen_rows'] for i in range(3)] == [1, 2, 2]
    warnings = [r.getMessage() for r in caplog.records if 'skipping' in r.getMessage()]
    assert len(warnings) == 2 and f'{folder / "train.tsv"} line ' in warnings[0]
    assert 'columns, expected' in warnings[0]
    assert ('not in [0, 5]' if task.regression else "'maybe' is not one of") in warnings[1]

    sample = dataset[1]['data_samples']
    if task.regression:
        assert sample.gt_value == 0.75 and 'gt_label' not in sample
    else:
        assert int(sample.gt_label) == task.classes.index(label_strings(name)[1])
    expected_text = PAIRS[1][0] if name in SINGLE else ' [SEP] '.join(PAIRS[1])
    assert sample.text.strip() == expected_text

    test = GLUEDataset(name, str(folder), 'test', pipeline=PIPELINE)
    assert [row.index for row in test.rows] == ['0', '1', '2']
    assert all(row.target is None for row in test.rows)
    assert 'gt_label' not in test[0]['data_samples'] and 'gt_value' not in test[0]['data_samples']
    assert test[2]['data_samples'].glue_index == '2'


def test_mnli_reads_matched_mismatched_and_the_diagnostic_set_as_subsets(tmp_path):
    """dev = dev_matched + dev_mismatched (16 columns, five annotator labels), test = the two
    test files (10 columns), diagnostic = ../diagnostic/diagnostic.tsv; each row knows its
    subset (m, mm, ax) for the metric and the server's file names."""
    folder = tmp_path / 'MNLI'
    write_labelled(folder / 'train.tsv', 'MNLI', malformed=False)
    header, _, test_header, test_row = LAYOUTS['MNLI']
    dev_header = header[:-1] + ['label2', 'label3', 'label4', 'label5', 'gold_label']
    for stem, labels in (
        ('dev_matched', ['neutral', 'entailment']),
        ('dev_mismatched', ['contradiction']),
    ):
        rows = [
            [str(i), '1', f'{i}e', 'fiction', *MNLI_PARSES, *PAIRS[i], y, y, y, 'neutral', y, y]
            for i, y in enumerate(labels)
        ]
        write_tsv(folder / f'{stem}.tsv', dev_header, rows)
    write_tsv(folder / 'test_matched.tsv', test_header, [test_row(i, PAIRS[i]) for i in (0, 1)])
    write_tsv(folder / 'test_mismatched.tsv', test_header, [test_row(9, PAIRS[2])])
    write_tsv(
        tmp_path / 'diagnostic' / 'diagnostic.tsv',
        ['index', 'sentence1', 'sentence2'],
        [['0', *PAIRS[0]]],
    )

    train = GLUEDataset('mnli', str(folder), 'train')
    assert [row.target for row in train.rows] == [0, 1, 2]
    assert {row.subset for row in train.rows} == {''}
    dev = GLUEDataset('MNLI', str(folder), 'dev')
    assert [(row.subset, row.target) for row in dev.rows] == [('m', 1), ('m', 0), ('mm', 2)]
    test = GLUEDataset('MNLI', str(folder), 'test')
    assert [(row.subset, row.index) for row in test.rows] == [('m', '0'), ('m', '1'), ('mm', '9')]
    diagnostic = GLUEDataset('MNLI', str(folder), 'diagnostic')
    assert [(row.subset, row.target, row.texts) for row in diagnostic.rows] == [
        ('ax', None, PAIRS[0])
    ]
    assert glue_task('MNLI').server_file('ax') == 'AX.tsv'


def test_files_of_another_layout_or_missing_are_one_line_errors(tmp_path):
    write_task(tmp_path, 'RTE')
    message = r"RTE/train.tsv: the header .* has no column '#1 String', '#2 String', 'Quality'"
    with pytest.raises(DataFileError, match=message):
        read_glue_file(str(tmp_path / 'RTE' / 'train.tsv'), 'MRPC')
    with pytest.raises(
        FileNotFoundError, match=r'QNLI/dev.tsv does not exist; see docs/tasks/glue.md'
    ):
        GLUEDataset('QNLI', str(tmp_path / 'QNLI'), 'dev')
    with pytest.raises(ComponentArgumentError, match=r"no split 'val'; one of train, dev, test"):
        GLUEDataset('RTE', str(tmp_path / 'RTE'), 'val')
    with pytest.raises(ComponentArgumentError, match=r"unknown GLUE task 'SST-5'"):
        glue_task('SST-5')
    mrpc = write_task(tmp_path, 'MRPC') / 'train.tsv'
    mrpc.write_bytes('\ufeff'.encode() + mrpc.read_bytes())  # a byte-order mark is dropped
    assert len(read_glue_file(str(mrpc), 'MRPC')) == 3
    (tmp_path / 'RTE' / 'dev.tsv').write_bytes(
        b'index\tsentence1\tsentence2\tlabel\n0\ta\t\xff\tentailment\n'
    )
    with pytest.raises(DataFileError, match=r'no usable row .* line 2: not UTF-8'):
        GLUEDataset('RTE', str(tmp_path / 'RTE'), 'dev')


def test_pairs_are_cls_a_sep_b_sep_cut_longest_first():
    """As BERT tokenises a pair: the ids of ``[CLS] a [SEP]`` then ``b [SEP]``; too long, the
    longer text loses its last ids first (the second on a tie)."""
    tokenizer = shared_tokenizer()
    a, b = 'the cat sat on the mat', 'a small red circle'
    step = TokenizeTextPair(max_tokens=128)
    results = step(dict(text=a, text_pair=b))
    ids, mask = sequences(
        mixed_collate([dict(inputs={'text': results['text_tokens']})])['inputs']['text']
    )
    assert ids[0].tolist() == tokenizer.encode(a) + tokenizer.encode(b)[1:]
    assert mask.sum() == len(ids[0]) and results['text'] == f'{a} [SEP] {b}'
    single = TokenizeTextPair(max_tokens=5)(dict(text=a))
    assert single['text_tokens'].ids.tolist() == tokenizer.encode(a)[1:4]

    cut = TokenizeTextPair(max_tokens=9)(dict(text=a, text_pair=b))['text_tokens']  # 6 + 4 ids
    assert cut.ids.tolist() == tokenizer.encode(a)[1:4] + [102] + tokenizer.encode(b)[1:4]
    assert cut.words.tolist() == [0, 1, 2, 3, 4, 5, 6] and cut.num_words == 7
    assert longest_first(6, 4, 6) == (3, 3) and longest_first(4, 4, 7) == (4, 3)


def test_the_metrics_equal_hand_computed_values():
    """Predictions [1, 1, 0, 0, 1] against [1, 0, 0, 1, 1]: TP 2, TN 1, FP 1, FN 1, so MCC
    (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6, accuracy 3/5, F1 2/3. Scores: Pearson by the formula,
    Spearman as the Pearson of the ranks."""
    predicted, true = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    assert glue_scores('CoLA', predicted, true) == pytest.approx({'mcc': 100 / 6})
    assert glue_scores('MRPC', predicted, true) == pytest.approx({'accuracy': 60.0, 'f1': 200 / 3})
    assert glue_scores('rte', [0, 1, 1, 1], [0, 1, 0, 1]) == pytest.approx({'accuracy': 75.0})
    assert glue_scores('MNLI', [0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx({'accuracy': 50.0})
    # deviations from the means: -1.5 -0.5 0.5 1.5 and -1.75 0.25 -0.75 2.25
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 5.0]
    pearson = (1.5 * 1.75 - 0.5 * 0.25 - 0.5 * 0.75 + 1.5 * 2.25) / math.sqrt(5 * 8.75)
    spearman = 1 - 6 * (0 + 1 + 1 + 0) / (4 * (16 - 1))  # ranks 1 2 3 4 against 1 3 2 4
    scores = glue_scores('STS-B', x, y)
    assert scores == pytest.approx({'pearson': 100 * pearson, 'spearman': 100 * spearman})


def samples(task, predictions, targets, subsets=None, indices=None) -> list[dict]:
    """Data samples as the heads and the GLUE pipeline leave them (``to_dict()``)."""
    regression = glue_task(task).regression
    rows = []
    for i, (p, t) in enumerate(zip(predictions, targets)):
        row = dict(
            glue_subset=(subsets or [''] * len(targets))[i],
            glue_index=str((indices or range(99))[i]),
        )
        row.update({'pred_score': p} if regression else {'pred_label': torch.tensor([p])})
        if t is not None:
            row.update({'gt_value': t} if regression else {'gt_label': torch.tensor([t])})
        rows.append(row)
    return rows


def evaluate(metric, rows) -> dict:
    metric.process({}, rows)
    return metric.evaluate(len(rows))


def test_the_metric_scores_mnli_subsets_apart_and_names_what_unlabelled_rows_need():
    metric = GLUEMetric('MNLI')
    rows = samples('MNLI', [0, 1, 2, 2, 0], [0, 1, 1, 2, 1], subsets=['m', 'm', 'm', 'mm', 'mm'])
    assert evaluate(metric, rows) == pytest.approx(
        {'glue/accuracy_m': 200 / 3, 'glue/accuracy_mm': 50.0}
    )
    assert evaluate(
        GLUEMetric('CoLA'), samples('CoLA', [1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    ) == pytest.approx({'glue/mcc': 100 / 6})
    with pytest.raises(
        ComponentArgumentError, match=r'no gt_label .* set test_evaluator.format_only=True'
    ):
        GLUEMetric('RTE').process({}, samples('RTE', [0], [None]))
    with pytest.raises(
        ComponentArgumentError, match=r'no pred_score; use a SequenceRegressionHead'
    ):
        GLUEMetric('STS-B').process({}, [dict(glue_index='0')])


def test_format_only_writes_the_servers_files(tmp_path):
    """index<TAB>prediction in the server's spelling: label strings for the NLI tasks,
    0/1 for the binary ones, STS-B's score with three decimals; MNLI's subsets apart."""
    out = tmp_path / 'submission'
    metric = GLUEMetric('MNLI', format_only=True, out_dir=str(out))
    rows = samples('MNLI', [2, 0, 1], [None] * 3, subsets=['m', 'mm', 'ax'], indices=[4, 0, 7])
    assert evaluate(metric, rows) == {'glue/rows_written': 3}
    assert (out / 'MNLI-m.tsv').read_text() == 'index\tprediction\n4\tcontradiction\n'
    assert (out / 'MNLI-mm.tsv').read_text() == 'index\tprediction\n0\tentailment\n'
    assert (out / 'AX.tsv').read_text() == 'index\tprediction\n7\tneutral\n'
    evaluate(
        GLUEMetric('STS-B', format_only=True, out_dir=str(out)),
        samples('STS-B', [4.12345, -0.2], [None, None]),
    )
    assert (out / 'STS-B.tsv').read_text() == 'index\tprediction\n0\t4.123\n1\t-0.200\n'
    evaluate(
        GLUEMetric('qqp', format_only=True, out_dir=str(out)), samples('QQP', [1, 0], [None, None])
    )
    assert (out / 'QQP.tsv').read_text() == 'index\tprediction\n0\t1\n1\t0\n'
    evaluate(GLUEMetric('QNLI', format_only=True, out_dir=str(out)), samples('QNLI', [1], [None]))
    assert (out / 'QNLI.tsv').read_text() == 'index\tprediction\n0\tnot_entailment\n'


def test_the_heads_train_on_glue_batches_text_only(tmp_path):
    """A tiny DaVinci on RTE and STS-B batches (no images): finite losses with gradients into
    the encoder, the classification head predicts labels, the regression head float scores
    whose squared error against gt_value is its loss."""
    torch.manual_seed(0)
    for task, head in (
        ('RTE', dict(type='SequenceClassificationHead', num_classes=2, max_tokens=40)),
        ('STS-B', dict(type='SequenceRegressionHead', max_tokens=40)),
    ):
        dataset = GLUEDataset(task, str(write_task(tmp_path, task)), 'train', pipeline=PIPELINE)
        model = build_model(objectives=[], head=head)
        batch = model.data_preprocessor(
            mixed_collate([dataset[i] for i in range(3)]), training=True
        )
        assert 'images' not in batch['inputs']
        losses = model(**batch, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(loss)
        loss.backward()
        assert model.encoder.layers[0].attention.self.query.weight.grad.abs().sum() > 0
        predicted = model(**batch, mode='predict')
        if task == 'RTE':
            assert 'loss_cls' in losses and all(int(s.pred_label) in (0, 1) for s in predicted)
        else:
            scores = [s.pred_score for s in predicted]
            assert all(isinstance(s, float) for s in scores)
            mse = sum((s - t) ** 2 for s, t in zip(scores, (5.0, 0.75, 3.2))) / 3
            assert float(losses['loss_mse'].detach()) == pytest.approx(mse, rel=1e-4)


def test_the_submission_tool_writes_wnli_and_checks_every_file(tmp_path):
    """WNLI.tsv: dev's majority label for every test row; each of the eleven files is
    checked against its test file; then the tool itself zips a complete folder."""
    glue, out = tmp_path / 'glue', tmp_path / 'submission'
    for server in SERVER_FILES:
        if server.task.name != 'MNLI' and server.task.name != 'WNLI':
            write_task(glue, server.task.name)
    mnli_test = LAYOUTS['MNLI'][2:]
    write_tsv(
        glue / 'MNLI' / 'test_matched.tsv',
        mnli_test[0],
        [mnli_test[1](i, PAIRS[i]) for i in (0, 1, 2)],
    )
    write_tsv(
        glue / 'MNLI' / 'test_mismatched.tsv',
        mnli_test[0],
        [mnli_test[1](i, PAIRS[i]) for i in (0, 1, 2)],
    )
    write_tsv(
        glue / 'diagnostic' / 'diagnostic.tsv',
        ['index', 'sentence1', 'sentence2'],
        [['0', *PAIRS[0]], ['1', *PAIRS[1]], ['2', *PAIRS[2]]],
    )
    write_test(glue / 'WNLI' / 'test.tsv', 'WNLI', indices=(0, 1, 2, 3))
    _, row, _, _ = LAYOUTS['WNLI']
    write_tsv(
        glue / 'WNLI' / 'dev.tsv',
        LAYOUTS['WNLI'][0],
        [row(i, PAIRS[i], y) for i, y in enumerate('101')],
    )
    assert write_wnli(str(out), str(glue)) == (str(out / 'WNLI.tsv'), 1)
    assert (out / 'WNLI.tsv').read_text() == 'index\tprediction\n0\t1\n1\t1\n2\t1\n3\t1\n'

    for server in SERVER_FILES:  # every other file, as GLUEMetric(format_only=True) writes them
        if server.task.name != 'WNLI':
            metric = GLUEMetric(server.task.name, format_only=True, out_dir=str(out))
            predictions = [1.5] * 3 if server.task.regression else [0] * 3
            evaluate(
                metric,
                samples(server.task.name, predictions, [None] * 3, subsets=[server.subset] * 3),
            )
    (out / 'RTE.tsv').write_text('index\tprediction\n0\tentailment\n5\tentailment\n2\tentailment\n')
    (out / 'CoLA.tsv').unlink()
    report = {check.name: check for check in check_submission(str(out), str(glue))}
    assert len(report) == 11 and report['CoLA.tsv'].message == 'missing'
    assert not report['RTE.tsv'].ok and 'indices are not the 3' in report['RTE.tsv'].message
    assert [name for name, check in report.items() if check.ok] == [
        'SST-2.tsv',
        'MRPC.tsv',
        'STS-B.tsv',
        'QQP.tsv',
        'MNLI-m.tsv',
        'MNLI-mm.tsv',
        'QNLI.tsv',
        'WNLI.tsv',
        'AX.tsv',
    ]

    evaluate(
        GLUEMetric('CoLA', format_only=True, out_dir=str(out)), samples('CoLA', [0] * 3, [None] * 3)
    )
    evaluate(
        GLUEMetric('RTE', format_only=True, out_dir=str(out)), samples('RTE', [0] * 3, [None] * 3)
    )
    result = run_tool(
        'tools/glue_submission.py', str(out), '--glue-root', str(glue), '--wnli-label', '0', '--zip'
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'label 0 for every row' in result.stdout and result.stdout.count(' ok ') == 11
    assert len(zipfile.ZipFile(out / 'submission.zip').namelist()) == 11


CONFIGS = {
    name: REPO / 'configs' / 'downstream' / 'glue' / f'{name}.py'
    for name in TASKS
    if name != 'wnli'
}


def test_the_task_configs_state_the_originals_recipe():
    """Every task config: its data folder, metric keys the metric gives, DaVinci base from the
    pretraining checkpoint with the head only, max_length 128, lr 2e-5, batch 32, 8 epochs."""
    for name, path in CONFIGS.items():
        cfg = Config.fromfile(str(path))
        task = glue_task(cfg.task)
        assert glue_task(name) is task and cfg.data_root == f'data/glue/{task.name}'
        metrics = {
            f'glue/{m}{s}'
            for m in TASK_METRICS[task.name]
            for s in (['_m', '_mm'] if name == 'mnli' else [''])
        }
        assert set(cfg.suite_metrics) == metrics, name
        assert cfg.model.objectives == [] and cfg.model.hidden_size == 768
        assert cfg.model.pretrained == 'work_dirs/davinci_base/iter_104000.pth'
        assert (
            cfg.model.head.max_tokens == 128
            and cfg.train_dataloader.dataset.pipeline[0].max_tokens == 128
        )
        head = 'SequenceRegressionHead' if task.regression else 'SequenceClassificationHead'
        assert cfg.model.head.type == head and cfg.model.head.get('num_classes', 1) == max(
            len(task.classes), 1
        )
        assert cfg.optim_wrapper.optimizer.lr == 2e-5 and cfg.train_dataloader.batch_size == 32
        assert cfg.train_cfg.max_epochs == 8 and cfg.param_scheduler[0].end == 50
        for loader, split in (('train', 'train'), ('val', 'dev'), ('test', 'dev')):
            dataset = cfg[f'{loader}_dataloader'].dataset
            assert (dataset.task, dataset.data_root, dataset.split) == (
                cfg.task,
                cfg.data_root,
                split,
            )
        assert (
            cfg.test_evaluator.task == cfg.task
            and cfg.default_hooks.checkpoint.save_best == cfg.suite_metrics[0]
        )


def test_the_documented_submission_options_apply_to_every_config():
    """``--cfg-options test_dataloader.dataset.split=test test_evaluator.format_only=True``
    (docs/tasks/glue.md) names keys every config has, so tools/test.py accepts it."""
    from davinci_zoo.cli import apply_cfg_options

    for path in [*CONFIGS.values(), REPO / 'configs' / 'downstream' / 'glue' / 'scenes_pairs.py']:
        cfg = Config.fromfile(str(path))
        options = {'test_dataloader.dataset.split': 'test', 'test_evaluator.format_only': True}
        apply_cfg_options(cfg, dict(options, **{'test_evaluator.out_dir': 'submission'}))
        assert cfg.test_dataloader.dataset.split == 'test' and cfg.test_evaluator.format_only
        assert cfg.val_evaluator.format_only is False  # validation still scores dev


def test_the_scene_config_is_the_quick_start_model_on_the_pairs():
    quick_start = Config.fromfile(str(REPO / 'configs' / 'davinci_tiny_scenes32.py')).model
    cfg = Config.fromfile(str(REPO / 'configs' / 'downstream' / 'glue' / 'scenes_pairs.py'))
    for key in ARCHITECTURE_KEYS:
        assert cfg.model.get(key) == quick_start.get(key), key
    assert cfg.model.pretrained == 'work_dirs/quickstart/davinci/iter_700.pth'
    assert cfg.data_root == 'data/scenes_tasks/pairs' and cfg.task == 'MRPC'
    assert cfg.suite_metrics == ['glue/accuracy', 'glue/f1']
    assert (
        cfg.test_dataloader.dataset.data_root == cfg.data_root and cfg.model.head.max_tokens == 40
    )


@pytest.mark.filterwarnings('ignore:Detected call of `scheduler.step\\(\\)` before')
def test_the_schedule_warms_up_over_50_steps_then_decays_to_zero():
    """The configs' two LinearLR factors, built as the Runner builds them (the epoch one
    ends at max_epochs, converted to steps), multiply: 2e-5 times a warm-up from 1e-3 to 1
    over the first 50 steps times a linear decay to 0 at the last step."""
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = Config.fromfile(str(CONFIGS['rte']))
    optimizer = torch.optim.AdamW(
        torch.nn.Linear(2, 2).parameters(), lr=cfg.optim_wrapper.optimizer.lr
    )
    wrapper = OptimWrapper(optimizer)
    epoch_length, epochs = 20, cfg.train_cfg.max_epochs
    total = epoch_length * epochs
    schedulers = []
    for scheduler in cfg.param_scheduler:
        scheduler = dict(scheduler)
        if scheduler['by_epoch']:
            scheduler.setdefault('end', epochs)
        schedulers.append(
            PARAM_SCHEDULERS.build(
                scheduler, default_args=dict(optimizer=wrapper, epoch_length=epoch_length)
            )
        )
    rates = []
    for _ in range(total):
        rates.append(wrapper.get_lr()['lr'][0])
        for scheduler in schedulers:
            scheduler.step()
    # mmengine's LinearLR reaches its end factor at step end - 1
    warm = [1e-3 + (1 - 1e-3) * min(step, 49) / 49 for step in range(total)]
    expected = [2e-5 * warm[step] * (1 - step / (total - 1)) for step in range(total)]
    assert rates == pytest.approx(expected, rel=1e-6, abs=1e-15)
    assert rates[49] == pytest.approx(2e-5 * (1 - 49 / (total - 1))) and rates[-1] == 0


@pytest.fixture(scope='module')
def quickstart_like_checkpoint(tmp_path_factory) -> str:
    """Weights of a DaVinci built from the quick start's config, as scenes_pairs.py's
    ``pretrained`` file: they must load strictly into its model."""
    from davinci_zoo.registry import MODELS

    cfg = Config.fromfile(str(REPO / 'configs' / 'davinci_tiny_scenes32.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('quickstart') / 'iter_700.pth'
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.mark.slow(budget_s=150)
@pytest.mark.subprocess
def test_the_scene_config_fine_tunes_and_scores_through_the_tools(
    tmp_path, quickstart_like_checkpoint
):
    """Two steps (4 pairs, batch 2, one epoch) on a fixture in MRPC's layout, dev after it;
    tools/test.py writes glue/accuracy and glue/f1 on dev."""
    data = write_task(tmp_path, 'MRPC')
    write_labelled(data / 'train.tsv', 'MRPC')  # 3 good rows
    with (data / 'train.tsv').open('a') as stream:
        stream.write('0\t1\t2\tA red square .\tA blue circle .\n')
    work = tmp_path / 'work'
    one_thread = dict(OMP_NUM_THREADS='1')
    config = str(REPO / 'configs' / 'downstream' / 'glue' / 'scenes_pairs.py')
    roots = [f'{loader}_dataloader.dataset.data_root={data}' for loader in ('train', 'val', 'test')]
    train = run_tool(
        'tools/train.py',
        config,
        '--work-dir',
        str(work),
        '--cfg-options',
        f'model.pretrained={quickstart_like_checkpoint}',
        'train_dataloader.batch_size=2',
        'train_cfg.max_epochs=1',
        *roots,
        **one_thread,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    log = train.stdout + train.stderr
    assert 'loss_cls: ' in log and 'glue/accuracy: ' in log and 'glue/f1: ' in log
    assert re.search(r'Epoch\(train\) +\[1\]\[2/2\]', log)  # exactly two steps
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
        '--cfg-options',
        *roots,
        **one_thread,
    )
    assert test.returncode == 0, test.stderr[-3000:]
    scores = json.loads(metrics.read_text())
    assert set(scores) == {'glue/accuracy', 'glue/f1'}
    assert abs(scores['glue/accuracy'] * 3 / 100 - round(scores['glue/accuracy'] * 3 / 100)) < 1e-4
