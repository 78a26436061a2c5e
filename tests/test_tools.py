"""The tools end user mistakes with one line and exit status 2, not a traceback."""

import importlib.util
import re

import pytest
import torch
from conftest import FIXTURES, REPO, run_tool

TOY_CONFIG = str(FIXTURES / 'configs' / 'toy_regression.py')
DOWNSTREAM = REPO / 'configs' / 'downstream'


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(capsys, tool, *argv):
    from davinci_zoo.cli import run_tool as run

    with pytest.raises(SystemExit) as exit_info:
        run(load_tool(tool).main, list(argv))
    err = capsys.readouterr().err.strip()
    return exit_info.value.code, err


def test_missing_config(capsys, tmp_path):
    code, err = run_in_process(capsys, 'train', str(tmp_path / 'nope.py'))
    assert code == 2 and err == f'error: config file {tmp_path / "nope.py"} does not exist'


def test_config_with_a_syntax_error(capsys, tmp_path):
    broken = tmp_path / 'broken.py'
    broken.write_text('model = dict(type="X"\n')
    code, err = run_in_process(capsys, 'train', str(broken))
    assert code == 2 and 'syntax error' in err and '\n' not in err


def test_cfg_options_typo_is_refused_with_a_suggestion(capsys):
    code, err = run_in_process(capsys, 'train', TOY_CONFIG, '--cfg-options', 'model.hidden_dim=8')
    assert code == 2
    assert "'hidden_dim' does not exist at model" in err and "did you mean 'hidden'" in err
    assert '+model.hidden_dim' in err


def test_amp_without_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    code, err = run_in_process(capsys, 'train', TOY_CONFIG, '--amp')
    assert code == 2 and '--amp needs a CUDA GPU' in err


def test_missing_resume_checkpoint(capsys, tmp_path):
    code, err = run_in_process(capsys, 'train', TOY_CONFIG, '--resume', str(tmp_path / 'x.pth'))
    assert code == 2 and 'x.pth does not exist' in err


def test_missing_test_checkpoint(capsys, tmp_path):
    code, err = run_in_process(capsys, 'test', TOY_CONFIG, str(tmp_path / 'x.pth'))
    assert code == 2 and 'x.pth does not exist' in err


def test_cfg_options_new_key_with_plus_and_list_index():
    from davinci_zoo.cli import apply_cfg_options, load_config

    cfg = load_config(TOY_CONFIG)
    apply_cfg_options(
        cfg, {'+model.extra': 3, 'custom_hooks.1.type': 'RNGStateHook', 'model.hidden': 8}
    )
    assert cfg.model.extra == 3 and cfg.model.hidden == 8
    assert cfg.custom_hooks[1].type == 'RNGStateHook'


@pytest.mark.slow(budget_s=240)
def test_cli_errors_for_unknown_type_and_mismatched_checkpoint(tmp_path):
    """Real child processes: one line on stderr, exit 2, no traceback."""
    unknown = run_tool(
        'tools/train.py',
        TOY_CONFIG,
        '--work-dir',
        str(tmp_path / 'a'),
        '--cfg-options',
        'model.type=ToyRegresor',
    )
    assert unknown.returncode == 2, unknown.stderr
    last = unknown.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and "did you mean 'ToyRegressor'" in last
    assert 'Traceback' not in unknown.stderr

    wrong = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'net.0.weight': torch.zeros(4, 8)}}, wrong)
    mismatch = run_tool('tools/test.py', TOY_CONFIG, str(wrong), '--work-dir', str(tmp_path / 'b'))
    assert mismatch.returncode == 2, mismatch.stderr
    last = mismatch.stderr.strip().splitlines()[-1]
    assert last.startswith('error: checkpoint') and 'missing keys' in last
    assert 'net.0.weight (4, 8) vs (16, 8)' in last
    assert 'Traceback' not in mismatch.stderr


def test_benchmarks_report_the_device_the_model_ran_on(monkeypatch):
    """A GPU on the machine does not turn a CPU measurement into a 'cuda' one."""
    benchmark = load_tool('benchmark')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    info = benchmark.machine_info(torch.nn.Linear(2, 2))
    assert info['device'] == 'cpu' and info['threads'] == torch.get_num_threads()


def test_misspelt_constructor_argument_is_one_line(capsys):
    """`+model.foo=1` reaches the constructor; the error names the class and what it takes."""
    code, err = run_in_process(capsys, 'train', TOY_CONFIG, '--cfg-options', '+model.hidden_size=8')
    assert code == 2 and '\n' not in err
    assert err == (
        "error: ToyRegressor has no argument 'hidden_size' (did you mean 'hidden'?); "
        'check the config and --cfg-options'
    )


def test_wrongly_typed_cfg_option_is_one_line(capsys):
    code, err = run_in_process(
        capsys, 'train', TOY_CONFIG, '--cfg-options', 'train_dataloader.batch_size=abc'
    )
    assert code == 2
    assert err == (
        "error: --cfg-options train_dataloader.batch_size='abc': expected a number "
        '(the config has 4)'
    )


def test_a_type_error_inside_a_component_keeps_its_traceback():
    """Only the registry's own call is a config mistake; a TypeError raised by code is a bug."""
    from davinci_zoo.cli import run_tool as run

    def main(argv):
        return len(3)

    with pytest.raises(TypeError, match='has no len'):
        run(main, [])


@pytest.mark.parametrize('workers', [0, 1], ids=['main-process', 'worker'])
def test_too_many_bad_rows_is_one_line_even_from_a_loader_worker(capsys, workers):
    """BadDataError is the data's fault: one line, exit 2. From a DataLoader worker it comes
    back with the worker's traceback inside its message; only the original message is kept."""
    from torch.utils.data import DataLoader, Dataset

    from davinci_zoo.cli import run_tool as run
    from davinci_zoo.datasets.bad_rows import BadDataError

    message = 'ann.jsonl: 2 of 2 rows are bad; repair it or raise max_bad_fraction'

    class Broken(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            raise BadDataError(message)

    def main(argv):
        next(iter(DataLoader(Broken(), num_workers=workers)))

    with pytest.raises(SystemExit) as exit_info:
        run(main, [])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f'error: {message}\n'


@pytest.mark.parametrize(
    ('setting', 'message'),
    [
        ('ann_file', r'error: \S+dataset_coco.json is not valid JSON \(Expecting value: line 1'),
        ('split', r"error: split must be among \('train', 'restval', 'val', 'test'\), got 'dev'"),
    ],
)
def test_a_malformed_data_file_or_dataset_argument_is_one_line(capsys, tmp_path, setting, message):
    """A data file not in its published layout (DataFileError) and a dataset argument out of
    range (ComponentArgumentError) end the tool with one line naming the file or argument."""
    ann_file = tmp_path / 'dataset_coco.json'
    ann_file.write_text('{"images": []}' if setting == 'split' else 'not json')
    # its own logger: a Runner built in the same second would reuse the last case's, whose
    # handler writes to that case's (closed) captured stdout
    options = [f'train_dataloader.dataset.ann_file={ann_file}', f'+experiment_name={setting}']
    if setting == 'split':
        options.append('train_dataloader.dataset.split=dev')
    config = REPO / 'configs' / 'downstream' / 'caption_coco' / 'caption_coco_scenes32.py'
    code, err = run_in_process(
        capsys,
        'train',
        str(config),
        '--work-dir',
        str(tmp_path / 'work'),
        '--cfg-options',
        'model.pretrained=None',
        f'train_dataloader.dataset.data_root={tmp_path}',
        *options,
    )
    assert code == 2 and '\n' not in err
    assert re.match(message, err), err


def test_swapping_a_base_dataset_without_delete_names_the_fix(capsys, tmp_path):
    """A child that gives a base's dataset another type inherits the base's keys; the one-line
    error says so and names ``_delete_=True``."""
    child = tmp_path / 'child.py'
    child.write_text(
        f"_base_ = ['{REPO / 'configs' / 'tokenizers' / 'vqgan_f4_scenes32.py'}']\n"
        f"train_dataloader = dict(dataset=dict(type='ImageFolderImages', data_root='{tmp_path}'))\n"
    )
    code, err = run_in_process(capsys, 'train', str(child), '--work-dir', str(tmp_path / 'w'))
    assert code == 2 and '\n' not in err
    assert err.startswith("error: ImageFolderImages has no argument 'num_scenes' (it takes: ")
    assert 'add _delete_=True' in err


def test_training_with_a_tokenizer_that_has_no_weights_is_refused(capsys, tmp_path):
    """A DaVinci that paints needs its frozen tokenizer's weights (a file or inside
    ``pretrained``); a config that gives neither stops before anything is built, while one
    that gives a file, or a model that builds no tokenizer, passes the check."""
    from mmengine.config import Config

    from davinci_zoo.cli import check_tokenizer_weights

    painter = str(
        REPO / 'configs' / 'downstream' / 'text2image_coco' / 'text2image_coco_scenes32.py'
    )
    ann_file = tmp_path / 'dataset_coco.json'  # present: the input-path check passes
    ann_file.write_text('{"images": []}')
    options = (
        '--work-dir',
        str(tmp_path),
        '--cfg-options',
        'model.pretrained=None',
        f'train_dataloader.dataset.ann_file={ann_file}',
        f'train_dataloader.dataset.data_root={tmp_path}',
    )
    code, err = run_in_process(capsys, 'train', painter, *options)
    assert code == 2 and 'frozen image tokenizer without weights' in err and '\n' not in err

    cfg = Config.fromfile(painter)
    cfg.model.pretrained = None
    weights = tmp_path / 'vqgan.safetensors'
    cfg.model.image_tokenizer.checkpoint = str(weights)
    check_tokenizer_weights(cfg)  # a file: fine
    cfg.model.image_tokenizer.checkpoint = None
    cfg.load_from = str(tmp_path / 'epoch_1.pth')
    check_tokenizer_weights(cfg)  # resuming: the checkpoint holds the tokenizer
    writer = Config.fromfile(str(DOWNSTREAM / 'vqa' / 'vqa_scenes32.py'))
    writer.model.pretrained = None
    check_tokenizer_weights(writer)  # builds no tokenizer
    tokenizer = Config.fromfile(str(REPO / 'configs' / 'tokenizers' / 'vqgan_f4_scenes32.py'))
    check_tokenizer_weights(tokenizer)  # trains its tokenizer


def test_a_run_shorter_than_the_warm_up_drops_the_decay_that_would_start_after_it():
    """The fine-tuning recipes warm up over their first epochs; a one-epoch smoke run would
    make mmengine refuse the decay that begins after it, so that scheduler is dropped (and
    said), while a run long enough keeps every scheduler as written."""
    from mmengine.config import Config

    from davinci_zoo.engine.runtime import fit_schedulers_to_run

    cfg = Config.fromfile(str(DOWNSTREAM / 'vqa' / 'vqa_base.py'))  # warm-up 4 of 8 epochs
    written = [dict(s) for s in cfg.param_scheduler]
    assert fit_schedulers_to_run(cfg) == [] and cfg.param_scheduler == written
    cfg.train_cfg.max_epochs = 4
    changes = fit_schedulers_to_run(cfg)
    assert changes == ['LinearLR from epoch 4 dropped: the run ends at epoch 4']
    assert cfg.param_scheduler == written[:1]
