"""Runner round trips through tools/train.py: resume, a writer killed mid-save, CPU DDP."""

import json
import shutil
import subprocess

import pytest
import torch
from conftest import FIXTURES, REPO, run_tool, tool_env

from davinci_zoo.checkpoint import load_checkpoint_file

CONFIG = str(FIXTURES / 'configs' / 'toy_regression.py')
pytestmark = [pytest.mark.slow(budget_s=300), pytest.mark.subprocess]


def train(work_dir, *extra, **env):
    result = run_tool('tools/train.py', CONFIG, '--work-dir', str(work_dir), *extra, **env)
    return result


def final_weights(work_dir, rank=0):
    return torch.load(work_dir / f'weights_rank{rank}.pt')


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    result = train(work_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return work_dir


@pytest.fixture(scope='module')
def stopped_at_12(tmp_path_factory):
    """A run interrupted right after its checkpoint at iteration 12 (of 24)."""
    work_dir = tmp_path_factory.mktemp('stopped')
    result = train(work_dir, TOY_STOP_AT_ITER='12')
    assert result.returncode == 0, result.stderr[-3000:]
    assert (work_dir / 'iter_12.pth').is_file() and not (work_dir / 'iter_16.pth').exists()
    return work_dir


def copy_of(work_dir, tmp_path):
    target = tmp_path / 'work'
    shutil.copytree(work_dir, target)
    (target / 'last_checkpoint').write_text(str(target / 'iter_12.pth'))
    return target


def test_stopped_then_resumed_run_equals_an_uninterrupted_one(
    uninterrupted, stopped_at_12, tmp_path
):
    work_dir = copy_of(stopped_at_12, tmp_path)
    resumed = train(work_dir, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 12' in resumed.stdout + resumed.stderr
    assert_same_weights(final_weights(uninterrupted), final_weights(work_dir))


def test_dropout_stream_matters_so_the_equality_above_is_meaningful(
    uninterrupted, stopped_at_12, tmp_path
):
    """Resuming without the saved random state diverges: the test above can fail."""
    work_dir = copy_of(stopped_at_12, tmp_path)
    assert 'rng_state' in load_checkpoint_file(work_dir / 'iter_12.pth')
    resumed = train(
        work_dir,
        '--resume',
        '--cfg-options',
        'custom_hooks.0.type=ToyRecordHook',
        'custom_hooks.1.type=ToyRecordHook',
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = final_weights(uninterrupted), final_weights(work_dir)
    assert any(not torch.equal(a[key], b[key]) for key in a)


def test_resume_skips_a_last_checkpoint_that_points_at_a_broken_file(stopped_at_12, tmp_path):
    work_dir = copy_of(stopped_at_12, tmp_path)
    broken = work_dir / 'iter_12.pth'
    broken.write_bytes(broken.read_bytes()[:100])  # e.g. a copy cut short
    resumed = train(work_dir, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 8' in resumed.stdout + resumed.stderr


def test_killed_during_a_checkpoint_save_resumes_from_the_previous_one(uninterrupted, tmp_path):
    killed = train(tmp_path, TOY_KILL_DURING_SAVE='iter_16.pth')
    assert killed.returncode == -9  # SIGKILL half way through writing iter_16.pth
    assert not (tmp_path / 'iter_16.pth').exists()
    assert any(p.name.startswith('.iter_16.pth.') for p in tmp_path.iterdir())  # the half file
    assert (tmp_path / 'last_checkpoint').read_text().strip() == str(tmp_path / 'iter_12.pth')
    assert load_checkpoint_file(tmp_path / 'iter_12.pth')['meta']['iter'] == 12
    resumed = train(tmp_path, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 12' in resumed.stdout + resumed.stderr
    assert_same_weights(final_weights(uninterrupted), final_weights(tmp_path))


def test_two_cpu_processes_with_gloo(tmp_path):
    result = subprocess.run(
        [
            'bash',
            'tools/dist_train.sh',
            CONFIG,
            '2',
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            'default_hooks.checkpoint.interval=24',
        ],
        cwd=REPO,
        env=tool_env(PORT='29531'),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [json.loads((tmp_path / f'seen_rank{rank}.json').read_text()) for rank in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 24 * 4
    first_pass = [set(s[:32]) for s in seen]  # one pass over the 64 samples, split in two
    assert not first_pass[0] & first_pass[1]
    assert first_pass[0] | first_pass[1] == set(range(64))
    assert_same_weights(final_weights(tmp_path, 0), final_weights(tmp_path, 1))
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_24.pth']


def test_tools_test_evaluates_a_trained_checkpoint(uninterrupted, tmp_path):
    checkpoint = tmp_path / 'model.pth'
    shutil.copy(uninterrupted / 'iter_24.pth', checkpoint)
    result = run_tool('tools/test.py', CONFIG, str(checkpoint), '--work-dir', str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'mse:' in result.stdout + result.stderr
