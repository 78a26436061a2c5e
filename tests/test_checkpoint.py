"""Safe checkpoint reading (allowlist, safetensors) and atomic writing."""

import os

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from davinci_zoo.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
    atomic_write,
    check_state_dict_matches,
    load_checkpoint_file,
    save_checkpoint_file,
)

MARKER = []


class Payload:
    """Unpickling this would run code: it appends to MARKER."""

    def __reduce__(self):
        return (MARKER.append, ('executed',))


def mmengine_like_checkpoint():
    buffer = HistoryBuffer()
    buffer.update(1.5)
    return {
        'meta': {'epoch': 1, 'iter': 8, 'seed': 0},
        'state_dict': {'w': torch.arange(4.0)},
        'message_hub': {
            'log_scalars': {'loss': buffer},
            'runtime_info': {'eta': np.float64(2.5), 'hist': np.zeros(3)},
        },
    }


def test_reads_an_mmengine_checkpoint_with_history_buffers(tmp_path):
    path = tmp_path / 'iter_8.pth'
    torch.save(mmengine_like_checkpoint(), path)
    loaded = load_checkpoint_file(path)
    assert torch.equal(loaded['state_dict']['w'], torch.arange(4.0))
    assert loaded['message_hub']['log_scalars']['loss'].current() == 1.5
    assert loaded['message_hub']['runtime_info']['eta'] == 2.5


def test_refuses_a_pth_that_pickles_other_objects_without_running_them(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': Payload()}, path)
    MARKER.clear()
    with pytest.raises(UnsafeCheckpointError, match='list.append|allowlist'):
        load_checkpoint_file(path)
    assert MARKER == []


def test_safetensors_round_trip_with_metadata(tmp_path):
    path = tmp_path / 'weights.safetensors'
    tensors = {'a': torch.randn(2, 3), 'b': torch.arange(5)}
    save_checkpoint_file({'state_dict': tensors, 'meta': {'config': 'x', 'n': 3}}, path)
    loaded = load_checkpoint_file(path)
    assert loaded['meta'] == {'config': 'x', 'n': 3}
    assert all(torch.equal(loaded['state_dict'][k], v) for k, v in tensors.items())


def test_missing_truncated_and_corrupt_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match='does not exist'):
        load_checkpoint_file(tmp_path / 'nope.pth')
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_checkpoint_file(truncated)
    corrupt = tmp_path / 'corrupt.safetensors'
    corrupt.write_bytes(b'not a safetensors file')
    with pytest.raises(CheckpointError, match='safetensors'):
        load_checkpoint_file(corrupt)


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / 'ckpt.pth'
    save_checkpoint_file({'state_dict': {'w': torch.ones(3)}}, path)

    def fail_half_way(stream):
        stream.write(b'partial bytes')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        atomic_write(path, fail_half_way)
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'], torch.ones(3))
    assert sorted(os.listdir(tmp_path)) == ['ckpt.pth']


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    path = tmp_path / 'file.bin'
    atomic_write(path, lambda stream: stream.write(b'x'))
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


def test_mismatch_names_missing_unexpected_and_mis_shaped_keys():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    state = model.state_dict()
    state.pop('1.bias')
    state['extra.weight'] = torch.zeros(1)
    state['0.weight'] = torch.zeros(4, 2)
    with pytest.raises(CheckpointMismatchError) as error:
        check_state_dict_matches(model, state)
    message = str(error.value)
    assert 'missing keys (1): 1.bias' in message
    assert 'unexpected keys (1): extra.weight' in message
    assert '0.weight (4, 2) vs (3, 2)' in message
    check_state_dict_matches(model, model.state_dict())


def test_weights_of_pretraining_objectives_the_model_lacks_are_left_out_and_nothing_else():
    """A task model scored on a pretraining checkpoint: ITC's and ITM's weights (objectives.<i>.)
    are dropped; any other extra key still stops the load."""
    from davinci_zoo.checkpoint import without_unused_objective_weights

    model = torch.nn.Sequential(torch.nn.Linear(2, 3))
    pretraining = dict(model.state_dict())
    pretraining['objectives.2.logit_scale'] = torch.zeros(())
    pretraining['objectives.3.head.weight'] = torch.zeros(2, 3)
    kept, dropped = without_unused_objective_weights(model, pretraining)
    assert dropped == ['objectives.2.logit_scale', 'objectives.3.head.weight']
    check_state_dict_matches(model, kept)
    pretraining['encoder.extra'] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match=r'unexpected keys \(1\): encoder.extra'):
        check_state_dict_matches(model, without_unused_objective_weights(model, pretraining)[0])
    # a model that has those objectives keeps their weights (and a mis-shaped one is reported)
    owner = torch.nn.Module()
    owner.objectives = torch.nn.ModuleList([torch.nn.Linear(3, 2)])
    state = {'objectives.0.weight': torch.zeros(2, 3), 'objectives.0.bias': torch.zeros(3)}
    kept, dropped = without_unused_objective_weights(owner, state)
    assert dropped == [] and set(kept) == set(state)
    with pytest.raises(CheckpointMismatchError, match='objectives.0.bias'):
        check_state_dict_matches(owner, kept)


def test_tools_accept_a_pretraining_checkpoint_whose_objectives_the_task_model_lacks(tmp_path):
    """tools/test.py's check (check_checkpoint_fits) and apis.load_weights on a checkpoint
    with ITC's weights that the model does not have: it loads; the model's weights are set."""
    from davinci_zoo.apis import load_weights
    from davinci_zoo.engine.runtime import check_checkpoint_fits

    source = torch.nn.Sequential(torch.nn.Linear(2, 3))
    state = dict(source.state_dict())
    state['objectives.2.image_projection.weight'] = torch.zeros(4, 3)
    path = tmp_path / 'iter_700.pth'
    save_checkpoint_file({'state_dict': state}, path)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3))
    check_checkpoint_fits(model, str(path))
    load_weights(model, path)
    assert torch.equal(model[0].weight, source[0].weight)
    state['0.extra'] = torch.zeros(1)
    save_checkpoint_file({'state_dict': state}, path)
    with pytest.raises(CheckpointMismatchError, match='0.extra'):
        check_checkpoint_fits(model, str(path))
