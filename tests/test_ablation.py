"""The objective ablation: nested data scales, grid planning, resumable stages, the results
files, held-out losses, and the CI grid end to end (killed after its first cell, rerun)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import REPO, tiny_davinci_config, tool_env
from test_tools import load_tool, run_in_process
from torch.utils.data import Dataset

from davinci_zoo.ablation.execute import recipe, run_cell, stage_state
from davinci_zoo.ablation.grid import Metric, read_grid
from davinci_zoo.ablation.plan import Cell, cell_command_lines, plan_cells, select_cells
from davinci_zoo.ablation.results import write_results
from davinci_zoo.ablation.stages import Launch, Stage, read_result, shown
from davinci_zoo.datasets.subset import SubsetDataset
from davinci_zoo.registry import DATASETS, OBJECTIVES

ABLATIONS = REPO / 'configs' / 'ablations'
PNG = b'\x89PNG\r\n\x1a\n'


def launch(out) -> Launch:
    return Launch(sys.executable, str(REPO / 'tools'), str(out))


# -- SubsetDataset -------------------------------------------------------------------------
class Numbers(Dataset):
    """Items 0..n-1 with a metainfo and get_data_info, as mmengine datasets have."""

    metainfo = dict(classes=('a', 'b'))

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return int(range(self.n)[index])

    def get_data_info(self, index):
        return dict(index=index)


def test_subsets_are_seeded_and_nested():
    small, large = SubsetDataset(Numbers(100), 10, seed=3), SubsetDataset(Numbers(100), 40, seed=3)
    assert len(small) == 10 and len(large) == 40
    assert [small[i] for i in range(10)] == [large[i] for i in range(10)]  # inside the larger
    assert len({large[i] for i in range(40)}) == 40  # no item twice
    again = SubsetDataset(Numbers(100), 10, seed=3)
    assert [again[i] for i in range(10)] == [small[i] for i in range(10)]
    other = SubsetDataset(Numbers(100), 10, seed=4)
    assert [other[i] for i in range(10)] != [small[i] for i in range(10)]
    assert [small[i] for i in range(10)] != list(range(10))  # a permutation, not the head
    half = SubsetDataset(Numbers(100), 0.5, seed=3)
    assert len(half) == 50 and [half[i] for i in range(40)] == [large[i] for i in range(40)]
    assert len(SubsetDataset(Numbers(7), 1.0)) == 7
    assert small.metainfo == Numbers.metainfo
    assert small.get_data_info(2) == dict(index=small[2])
    with pytest.raises(IndexError):
        small[10]


@pytest.mark.parametrize(
    'size, message',
    [(101, 'more than the 100 items'), (0, 'at least 1'), (1.5, 'in (0, 1]'), (0.0, 'in (0, 1]')],
)
def test_subset_sizes_out_of_range_are_refused(size, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(']', r'\]')):
        SubsetDataset(Numbers(100), size)
    with pytest.raises(TypeError):
        SubsetDataset(Numbers(100), '10')


def test_subset_builds_its_dataset_from_a_config():
    scenes = dict(type='ProceduralScenes', num_scenes=30, seed=1)
    subset = DATASETS.build(dict(type='SubsetDataset', dataset=scenes, size=5, seed=0))
    whole = DATASETS.build(scenes)
    assert [subset[i]['caption'] for i in range(5)] == [
        whole[int(i)]['caption'] for i in subset.indices
    ]


# -- planning ------------------------------------------------------------------------------
def test_the_scene_grid_plans_six_mixes_at_three_nested_scales(tmp_path):
    grid = read_grid(str(ABLATIONS / 'grid_scenes32.py'))
    cells = plan_cells(grid, launch(tmp_path))
    assert len(cells) == 18 and len({cell.name for cell in cells}) == 18
    assert [cell.name for cell in cells[:3]] == ['plm_pim_500', 'plm_pim_2000', 'plm_pim_8000']
    steps = {cell.steps for cell in cells}
    assert len(steps) == 1  # the same steps in every cell
    by_name = {cell.name: cell for cell in cells}
    teaches = {cell.mix: cell.teaches for cell in cells}
    assert teaches == dict(
        plm_pim={'write', 'paint'},
        plm={'write'},
        pim={'paint'},
        mlm_itm_itc=set(),
        captioning={'write'},
        captioning_mim={'write'},
    )
    assert by_name['plm_500'].not_applicable() == {'paint_accuracy'}
    assert by_name['pim_500'].not_applicable() == {'caption_accuracy'}
    assert by_name['mlm_itm_itc_8000'].not_applicable() == {'caption_accuracy', 'paint_accuracy'}
    assert by_name['plm_pim_2000'].not_applicable() == set()
    # every stage of the evaluation, in order; write_paint does not apply to MLM+ITM+ITC
    encoder_only = by_name['mlm_itm_itc_500']
    names = [stage.name for stage in encoder_only.stages]
    assert names == ['pretrain', 'write_paint', 'heldout', 'vqa', 'probe']
    states = [stage_state(encoder_only, stage) for stage in encoder_only.stages]
    assert states == ['run', 'n/a', 'run', 'run', 'run']
    pretrain, write_paint, heldout, vqa, probe = by_name['pim_2000'].stages
    assert 'train_dataloader.dataset.size=2000' in pretrain.commands[0]
    assert '--resume' in pretrain.commands[0]
    checkpoint = os.path.join(by_name['pim_2000'].folder, 'pretrain', f'iter_{steps.pop()}.pth')
    assert pretrain.result == checkpoint
    mix = shown(str(ABLATIONS / 'pim.py'))
    assert write_paint.commands[0][2:4] == (mix, shown(checkpoint))
    assert f'model.pretrained={shown(checkpoint)}' in vqa.commands[0]
    assert 'optim_wrapper.optimizer.lr=0.0002' in vqa.commands[0]  # the rate it was measured at
    assert vqa.commands[1][2] == shown(str(REPO / 'configs/downstream/vqa/vqa_scenes32.py'))
    assert 'probe_scenes_shapes' in probe.commands[0]
    assert dict(probe.requires)['data/scenes_tasks/classification/cifar-10-batches-py'].startswith(
        'python -m davinci_zoo_scenes.tasks'
    )
    assert heldout.commands[0][1:3] == ('-m', 'davinci_zoo.ablation.heldout')


def test_every_mix_differs_only_in_its_objectives():
    from mmengine.config import Config

    base = Config.fromfile(str(ABLATIONS / 'plm_pim.py')).to_dict()
    for path in sorted(ABLATIONS.glob('*.py')):
        cfg = Config.fromfile(str(path))
        if 'mixes' in cfg:
            continue
        other = cfg.to_dict()
        assert other['model'].pop('objectives') and base['model'].get('objectives')
        assert {**other, 'model': None} == {**base, 'model': None}, path
        assert other['model'] == {k: v for k, v in base['model'].items() if k != 'objectives'}
    assert base['train_dataloader']['dataset']['type'] == 'SubsetDataset'


def test_print_commands_gives_a_line_per_cell_or_per_stage_of_the_unfinished_work(capsys, tmp_path):
    tool = load_tool('ablate')
    grid = str(ABLATIONS / 'grid_ci.py')
    tool.main([grid, '--out', str(tmp_path / 'out'), '--print-commands'])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.count(' && ') == 1 for line in lines)
    assert 'tools/train.py' in lines[0] and 'train_dataloader.dataset.size=16' in lines[0]
    assert 'tools/test.py' in lines[0].split(' && ')[1]
    tool.main([grid, '--out', str(tmp_path / 'out'), '--print-commands', 'stage'])
    assert len(capsys.readouterr().out.splitlines()) == 8
    # a finished stage is not printed again
    cells = plan_cells(read_grid(grid), launch(tmp_path / 'out'))
    record = os.path.join(cells[0].folder, 'pretrain.json')
    os.makedirs(cells[0].folder)
    with open(record, 'w') as stream:
        json.dump(dict(metrics={}, wall_s=1.0, recipe=recipe(cells[0].stages[0])), stream)
    tool.main([grid, '--out', str(tmp_path / 'out'), '--cells', 'plm_16', '--print-commands'])
    (line,) = capsys.readouterr().out.splitlines()
    assert 'tools/train.py' not in line and 'tools/test.py' in line and ' && ' not in line
    assert cell_command_lines(cells[0], True, []) == []


def grid_text(mixes=None, scales="{'1': 1}", evaluation='{}', key='x') -> str:
    mixes = mixes or f'dict(a={str(ABLATIONS / "plm.py")!r})'
    return f'mixes = {mixes}\nscales = {scales}\nscale_key = {key!r}\nevaluation = {evaluation}\n'


def test_bad_grids_and_cells_are_one_line(capsys, tmp_path):
    grid = tmp_path / 'grid.py'
    cases = [
        (grid_text(mixes="dict(a='nope.py')"), 'nope.py does not exist'),
        (grid_text(mixes='{}'), 'mixes must be'),
        (grid_text(), "'x' does not exist"),
        (grid_text(scales="{'1': -1}"), 'positive number'),
        (grid_text(evaluation='dict(nope={})'), "unknown evaluation stage 'nope'"),
        (grid_text(evaluation='dict(vqa=dict(epochs=1))'), 'evaluation.vqa needs config, metrics'),
        ('mixes = {}\n', "has no 'scales'"),
        (
            grid_text(evaluation="dict(write_paint=dict(metrics=dict(c=('k', 'write', 3))))"),
            'evaluation.write_paint.metrics.c: give a result key or (key, ability)',
        ),
        (
            grid_text(
                mixes=f'dict(a_b={str(ABLATIONS / "plm.py")!r}, a={str(ABLATIONS / "pim.py")!r})',
                scales="{'c': 8, 'b_c': 8}",
                key='train_dataloader.dataset.size',
            ),
            'two cells are named a_b_c',
        ),
    ]
    for text, expected in cases:
        grid.write_text(text)
        code, err = run_in_process(capsys, 'ablate', str(grid), '--out', str(tmp_path / 'o'))
        assert code == 2 and err.startswith('error: ') and expected in err, err
        assert len(err.splitlines()) == 1
    code, err = run_in_process(
        capsys, 'ablate', str(ABLATIONS / 'grid_ci.py'), '--out', str(tmp_path), '--cells', 'x_1'
    )
    assert code == 2 and "unknown cell 'x_1'; the grid has plm_16, plm_32, pim_16, pim_32" in err
    with pytest.raises(Exception, match='unknown cell'):
        select_cells(plan_cells(read_grid(str(ABLATIONS / 'grid_ci.py')), launch(tmp_path)), 'y')


@OBJECTIVES.register_module()
class AblationTestPainter(torch.nn.Module):
    """Never built: the planner reads only the class's ``teaches``."""

    teaches = ('paint',)


def test_what_a_mix_teaches_comes_from_its_objectives_classes(tmp_path):
    mix = tmp_path / 'mix.py'
    mix.write_text(
        f'_base_ = [{str(ABLATIONS / "plm.py")!r}]\n'
        "model = dict(objectives=[dict(type='AblationTestPainter'), dict(type='PrefixLM')])\n"
    )
    grid = tmp_path / 'grid.py'
    grid.write_text(
        "mixes = dict(mix='mix.py')\nscales = {'8': 8}\n"
        "scale_key = 'train_dataloader.dataset.size'\n"
        "evaluation = dict(write_paint=dict(metrics=dict(c=('k', 'write'), p=('q', 'paint'))))\n"
    )
    (cell,) = plan_cells(read_grid(str(grid)), launch(tmp_path))
    assert cell.teaches == {'write', 'paint'} and cell.not_applicable() == set()
    mix.write_text(mix.read_text().replace(", dict(type='PrefixLM')", ''))
    (cell,) = plan_cells(read_grid(str(grid)), launch(tmp_path))
    assert cell.teaches == {'paint'} and cell.not_applicable() == {'c'}


# -- running stages ------------------------------------------------------------------------
def python_writing(path, values, count_file) -> tuple[str, ...]:
    """A command that counts its run in ``count_file`` and writes ``values`` to ``path``."""
    code = (
        'import json, os, sys; '
        f'open({str(count_file)!r}, "a").write("x"); '
        f'os.makedirs(os.path.dirname({str(path)!r}), exist_ok=True); '
        f'json.dump({values!r}, open({str(path)!r}, "w"))'
    )
    return (sys.executable, '-c', code)


def fake_cell(tmp_path, teaches=frozenset({'write'})) -> Cell:
    """A cell with a 'pretrain' stage (no metrics) and a 'write_paint' stage (two metrics)."""
    folder = tmp_path / 'out' / 'mix_1'
    cell = Cell('mix_1', 'mix', '1', 1, 'mix.py', str(folder), 2, teaches, {})
    runs = tmp_path / 'runs'
    pretrain = Stage(
        'pretrain',
        (python_writing(cell.checkpoint, {}, runs),),
        cell.checkpoint,
    )
    result = str(folder / 'write_paint' / 'metrics.json')
    write_paint = Stage(
        'write_paint',
        (python_writing(result, {'w': 0.5, 'p': 0.25, 'other': 1.0}, runs),),
        result,
        (Metric('caption', 'w', 'write'), Metric('paint', 'p', 'paint')),
    )
    return replace(cell, stages=(pretrain, write_paint))


def test_stages_run_once_record_their_metrics_and_are_skipped_afterwards(tmp_path):
    cell, said = fake_cell(tmp_path), []
    outcome = run_cell(cell, said.append)
    assert outcome.ran == ['pretrain', 'write_paint'] and outcome.failed is None
    record = json.loads((tmp_path / 'out' / 'mix_1' / 'write_paint.json').read_text())
    assert record['metrics'] == {'caption': 0.5}  # painting is n/a for this mix
    assert record['wall_s'] >= 0
    assert (tmp_path / 'runs').read_text() == 'xx'
    again = run_cell(cell, said.append)
    assert again.ran == [] and again.skipped == ['pretrain', 'write_paint']
    assert (tmp_path / 'runs').read_text() == 'xx'  # nothing ran twice
    assert 'mix_1/write_paint: finished before' in said


def test_a_record_of_other_commands_is_stale_and_fails_the_stage(tmp_path):
    cell = fake_cell(tmp_path)
    run_cell(cell, lambda line: None)
    other = (sys.executable, '-c', 'print("another recipe")')
    changed = replace(cell, stages=(replace(cell.stages[0], commands=(other,)), cell.stages[1]))
    assert [stage_state(changed, stage) for stage in changed.stages] == ['stale', 'done']
    outcome = run_cell(changed, lambda line: None)
    assert outcome.failed[0] == 'pretrain' and 'made by other commands' in outcome.failed[1]
    assert 'use a new --out folder' in outcome.failed[1]
    moved = replace(
        cell,
        stages=tuple(  # another Python (venv) runs the same recipe
            replace(stage, commands=tuple(('python3', *c[1:]) for c in stage.commands))
            for stage in cell.stages
        ),
    )
    assert [stage_state(moved, stage) for stage in moved.stages] == ['done', 'done']


def test_a_result_that_ran_elsewhere_is_collected_not_rerun(tmp_path):
    cell = fake_cell(tmp_path, teaches=frozenset({'write', 'paint'}))
    for stage in cell.stages:  # as a cluster job running the printed commands leaves them
        subprocess.run(stage.commands[0], check=True)
    outcome = run_cell(cell, lambda line: None)
    assert outcome.collected == ['pretrain', 'write_paint'] and outcome.ran == []
    record = json.loads((tmp_path / 'out' / 'mix_1' / 'write_paint.json').read_text())
    assert record['metrics'] == {'caption': 0.5, 'paint': 0.25} and record['wall_s'] is None


def test_a_failed_stage_is_reported_with_its_error_line_and_ends_the_cell(tmp_path):
    cell = fake_cell(tmp_path)
    failing = (sys.executable, '-c', 'import sys; print("working"); sys.exit("error: no data")')
    cell = replace(cell, stages=(replace(cell.stages[0], commands=(failing,)), cell.stages[1]))
    said = []
    outcome = run_cell(cell, said.append)
    assert outcome.failed == ('pretrain', 'exit status 1: error: no data')
    assert outcome.ran == [] and not (tmp_path / 'runs').exists()  # write_paint did not run
    log = (tmp_path / 'out' / 'mix_1' / 'pretrain.log').read_text()
    assert 'working' in log and 'error: no data' in log and log.startswith('$ ')
    assert any('FAILED' in line and 'pretrain.log' in line for line in said)


def test_missing_data_fails_the_stage_naming_the_command_that_makes_it(tmp_path):
    cell = fake_cell(tmp_path)
    need = (str(tmp_path / 'data' / 'vqa'), 'python -m davinci_zoo_scenes.tasks --tasks vqa')
    write_paint = replace(cell.stages[1], requires=(need,))
    cell = replace(cell, stages=(cell.stages[0], write_paint))
    outcome = run_cell(cell, lambda line: None)
    assert outcome.failed == (
        'write_paint',
        f'{need[0]} does not exist; make it with: python -m davinci_zoo_scenes.tasks --tasks vqa',
    )


def test_a_stage_whose_metrics_are_all_not_applicable_does_not_run(tmp_path):
    cell = fake_cell(tmp_path, teaches=frozenset())
    outcome = run_cell(cell, lambda line: None)
    assert outcome.ran == ['pretrain'] and outcome.skipped == ['write_paint']
    assert (tmp_path / 'runs').read_text() == 'x'


def test_a_result_lacking_a_metric_fails_the_stage(tmp_path):
    cell = fake_cell(tmp_path)
    stage = replace(cell.stages[1], metrics=(Metric('caption', 'missing_key', None),))
    outcome = run_cell(replace(cell, stages=(cell.stages[0], stage)), lambda line: None)
    assert outcome.failed[0] == 'write_paint' and "no 'missing_key'" in outcome.failed[1]


def test_the_probe_suite_csv_is_read_as_task_and_metric(tmp_path):
    path = tmp_path / 'results.csv'
    path.write_text(
        'task,model,metric,value,method,detail\n'
        'probe_scenes_shapes,ckpt.pth,accuracy,61.25,bn_linear,x\n'
    )
    assert read_result(str(path)) == {'probe_scenes_shapes/accuracy': 61.25}
    assert read_result(str(tmp_path / 'iter_8.pth')) == {}


# -- results -------------------------------------------------------------------------------
def test_results_have_a_row_per_cell_and_n_a_where_the_mix_cannot(tmp_path):
    writer = fake_cell(tmp_path)
    losses = str(tmp_path / 'out' / 'mix_1' / 'heldout' / 'metrics.json')
    values = {'heldout/loss_a': 2.5}
    heldout = Stage('heldout', (python_writing(losses, values, tmp_path / 'runs'),), losses)
    writer = replace(writer, stages=(*writer.stages, heldout))  # no metrics named: every key
    painter = replace(
        fake_cell(tmp_path, teaches=frozenset({'paint'})),
        name='other_1',
        mix='other',
        folder=str(tmp_path / 'out' / 'other_1'),
    )
    painter = replace(painter, stages=writer.stages)  # same commands: the same result files
    run_cell(writer, lambda line: None)
    unfinished = replace(writer, name='mix_2', scale='2', size=2, folder=str(tmp_path / 'o2'))
    paths = write_results([writer, unfinished, painter], str(tmp_path / 'out'))
    with open(paths[0]) as stream:
        rows = list(csv.DictReader(stream))
    assert [row['cell'] for row in rows] == ['mix_1', 'mix_2', 'other_1']
    assert rows[0]['caption'] == '0.5' and rows[0]['paint'] == '' and rows[0]['status'] == 'done'
    assert rows[1]['status'] == 'not run' and rows[1]['caption'] == ''
    assert rows[0]['time_cell_s'] != '' and float(rows[0]['time_write_paint_s']) >= 0
    assert rows[0]['heldout/loss_a'] == '2.5' and rows[2]['heldout/loss_a'] == ''
    with open(paths[1]) as stream:
        table = stream.read()
    assert '| mix | 1 | 0.5 | n/a |' in table  # the writer cannot paint
    assert '| mix | 2 |  | n/a |' in table  # not run yet: empty, paint still n/a
    assert '| other | 1 | n/a |' in table
    assert '| mix | scale | loss_a |' in table and '| mix | 1 | 2.5 |' in table  # held-out
    assert '1 of 3 cells finished; pretraining steps per cell: 2' in table
    with open(paths[2], 'rb') as stream:
        assert stream.read(8) == PNG


# -- held-out losses -----------------------------------------------------------------------
SCENES = dict(
    type='ProceduralScenes',
    num_scenes=6,
    seed=3,
    pipeline=[dict(type='TokenizeText', keys=['caption']), dict(type='PackDaVinciInputs')],
)


@pytest.fixture(scope='module')
def tiny_model():
    from davinci_zoo.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(tiny_davinci_config()).eval()


def scene_loader():
    from davinci_zoo.datasets.mixing import mixed_collate

    scenes = DATASETS.build(SCENES)
    return torch.utils.data.DataLoader(scenes, batch_size=4, collate_fn=mixed_collate)


def test_heldout_losses_are_row_weighted_means_under_a_fixed_seed(tiny_model):
    from davinci_zoo.ablation.heldout import heldout_losses

    model, loader = tiny_model, scene_loader()
    losses = heldout_losses(model, loader, seed=5)
    assert set(losses) == {'heldout/loss_prefixlm', 'heldout/loss_prefiximage'}
    assert heldout_losses(model, loader, seed=5) == losses  # repeatable
    # by hand: the same seeds, then each batch's losses weighted by its 4 and 2 rows
    np.random.seed(5)
    torch.manual_seed(5)
    batches = []
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            batches.append((len(batch['data_samples']), model.loss(data['inputs'])))
    assert [n for n, _ in batches] == [4, 2]
    for key in ('loss_prefixlm', 'loss_prefiximage'):
        expected = sum(n * float(found[key]) for n, found in batches) / 6
        assert losses[f'heldout/{key}'] == pytest.approx(expected, rel=1e-6)


def test_heldout_tool_scores_a_checkpoint_on_its_configs_test_set(capsys, tiny_model, tmp_path):
    from mmengine.config import Config

    from davinci_zoo.ablation import heldout
    from davinci_zoo.ablation.heldout import heldout_losses
    from davinci_zoo.checkpoint import save_checkpoint_file
    from davinci_zoo.cli import run_tool

    test_dataloader = dict(
        batch_size=4,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=SCENES,
        collate_fn=dict(type='davinci_zoo.mixed_collate'),
    )
    config = tmp_path / 'tiny.py'
    Config(dict(model=tiny_davinci_config(), test_dataloader=test_dataloader)).dump(str(config))
    checkpoint = tmp_path / 'tiny.pth'
    save_checkpoint_file(dict(state_dict=tiny_model.state_dict()), checkpoint)
    out = tmp_path / 'heldout' / 'metrics.json'
    argv = [str(config), str(checkpoint), '--out', str(out), '--seed', '5']
    losses = run_tool(heldout.main, argv)
    assert json.loads(out.read_text()) == losses
    assert losses == heldout_losses(tiny_model, scene_loader(), seed=5)
    shorter = run_tool(
        heldout.main, [*argv, '--cfg-options', 'test_dataloader.dataset.num_scenes=2']
    )
    assert shorter != losses  # the options reach the test set
    missing = [str(config), str(tmp_path / 'nope.pth'), '--out', str(out)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        run_tool(heldout.main, missing)
    err = capsys.readouterr().err.strip()
    assert stopped.value.code == 2 and err == f'error: checkpoint {missing[1]} does not exist'


# -- the CI grid, end to end ---------------------------------------------------------------
def write_random_tokenizer(path) -> None:
    """Random weights of the scene tokenizer, where the mix configs read the trained ones."""
    from mmengine.config import Config

    from davinci_zoo.checkpoint import save_checkpoint_file
    from davinci_zoo.registry import IMAGE_TOKENIZERS

    cfg = Config.fromfile(str(REPO / 'configs/_base_/models/vqgan_f4_scenes32.py'))
    tokenizer_cfg = dict(cfg.image_tokenizer.to_dict(), checkpoint=None)
    torch.manual_seed(0)
    tokenizer = IMAGE_TOKENIZERS.build(tokenizer_cfg)
    save_checkpoint_file(dict(state_dict=tokenizer.state_dict()), path)


def wait_for(paths, process, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert process.poll() is None, 'the grid ended before it could be killed'
        assert time.monotonic() < end, f'waited {timeout} s for {paths}'
        time.sleep(0.05)


@pytest.mark.subprocess
# 2 x 2 cells of 2 tool processes each, and the resumed one: 60-90 s alone, 120 s on a loaded host
@pytest.mark.slow(budget_s=180)
def test_ci_grid_killed_after_its_first_cell_resumes_and_writes_the_results(tmp_path):
    write_random_tokenizer(
        tmp_path / 'work_dirs' / 'quickstart' / 'tokenizer' / 'vqgan.safetensors'
    )
    command = [sys.executable, str(REPO / 'tools' / 'ablate.py'), str(ABLATIONS / 'grid_ci.py')]
    command += ['--out', 'out']
    out = tmp_path / 'out'
    with open(tmp_path / 'first.log', 'w') as log:
        first = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=tool_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed with its tool processes
        )
        try:
            # the first cell finished, the second one's pretraining half way (step 4 of 8)
            wait_for(
                [out / 'plm_16' / 'write_paint.json', out / 'plm_32' / 'pretrain' / 'iter_4.pth'],
                first,
                100,
            )
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert not (out / 'plm_32' / 'pretrain' / 'iter_8.pth').exists()  # killed half way

    second = subprocess.run(
        command, cwd=tmp_path, env=tool_env(), capture_output=True, text=True, timeout=100
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    said = second.stdout
    for stage in ('pretrain', 'write_paint'):
        assert f'plm_16/{stage}: finished before' in said  # the finished cell did not rerun
        for cell in ('plm_32', 'pim_16', 'pim_32'):
            assert f'{cell}/{stage}: done in' in said
    resumed = os.path.join('out', 'plm_32', 'pretrain', 'iter_4.pth')
    assert f'plm_32/pretrain: running (resumes from {resumed})' in said
    assert 'resumed epoch: 0, iter: 4' in (out / 'plm_32' / 'pretrain.log').read_text()

    with open(out / 'results.csv') as stream:
        rows = list(csv.DictReader(stream))
    assert [row['cell'] for row in rows] == ['plm_16', 'plm_32', 'pim_16', 'pim_32']
    assert all(row['status'] == 'done' and row['steps'] == '8' for row in rows)
    for row in rows:
        writes = row['mix'] == 'plm'
        assert (row['caption_accuracy'] != '') == writes and (row['paint_accuracy'] != '') != writes
        assert 0 <= float(row['caption_accuracy' if writes else 'paint_accuracy']) <= 1
        assert float(row['time_cell_s']) > 0
    assert (out / 'results.md').read_text().count('| n/a |') == 4
    assert (out / 'results.png').read_bytes()[:8] == PNG
