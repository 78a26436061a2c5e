"""Real third-party distributions, installed into a throw-away virtualenv.

The virtualenv is made with ``--system-site-packages`` (so it sees davinci-zoo and its
dependencies) and the plugins are installed with ``pip --no-index --no-deps
--no-build-isolation``; nothing is installed into the environment running the tests.
"""

import json
import re
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest
from conftest import FIXTURES, REPO, run_tool

pytestmark = [pytest.mark.slow(budget_s=400), pytest.mark.subprocess]

PLUGINS = ('good', 'broken', 'clash')


def readme_plugin_example(target):
    """Write the README's "Write a plugin" example as a distribution in ``target``."""
    readme = (REPO / 'README.md').read_text()
    blocks = dict(re.findall(r'<!-- plugin-example: (\S+) -->\n```\w+\n(.*?)```', readme, re.S))
    assert set(blocks) == {'pyproject.toml', 'davinci_zoo_palette.py'}
    target.mkdir()
    build = (
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    (target / 'pyproject.toml').write_text(
        build
        + blocks['pyproject.toml']
        + '\n[tool.setuptools]\npy-modules = ["davinci_zoo_palette"]\n'
    )
    (target / 'davinci_zoo_palette.py').write_text(blocks['davinci_zoo_palette.py'])
    return target


def readme_task_example(target):
    """Write the README's "Write a task plugin" example as a distribution in ``target``."""
    readme = (REPO / 'README.md').read_text()
    blocks = dict(re.findall(r'<!-- task-example: (\S+) -->\n```\w+\n(.*?)```', readme, re.S))
    assert set(blocks) == {
        'pyproject.toml',
        'davinci_zoo_brightness/__init__.py',
        'davinci_zoo_brightness/configs/brightness_tiny.py',
    }
    build = (
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    for name, text in blocks.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(build + text if name == 'pyproject.toml' else text)
    return target


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp('plugin-venv')
    subprocess.run(
        [
            sys.executable,
            '-m',
            'venv',
            '--system-site-packages',
            '--without-pip',
            str(root / 'venv'),
        ],
        check=True,
        timeout=120,
    )
    python = str(root / 'venv' / 'bin' / 'python')
    sources = [shutil.copytree(FIXTURES / 'plugins' / name, root / name) for name in PLUGINS]
    sources.append(readme_plugin_example(root / 'palette'))
    sources.append(readme_task_example(root / 'brightness'))
    subprocess.run(
        [
            python,
            '-m',
            'pip',
            'install',
            '-q',
            '--no-index',
            '--no-deps',
            '--no-build-isolation',
            *map(str, sources),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return python


def listing(python, **env):
    result = run_tool('tools/list_plugins.py', '--json', python=python, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_in(python, code, **env):
    return run_tool('-c', textwrap.dedent(code), python=python, **env)


def test_list_plugins_shows_providers_failures_and_conflicts(venv):
    data = listing(venv)
    rows = {(c['registry'], c['name']): c for c in data['components']}
    good = rows[('image tokenizer', 'GreyLevelTokenizer')]
    assert (good['provider'], good['version'], good['module']) == (
        'davinci-zoo-test-good',
        '1.2.3',
        'zoo_test_good.plugin',
    )
    assert rows[('image tokenizer', 'PaletteTokenizer')]['provider'] == 'davinci-zoo-palette'
    assert rows[('objective', 'ClashOnlyObjective')]['provider'] == 'davinci-zoo-test-clash'
    assert rows[('hook', 'RNGStateHook')]['provider'] == 'davinci-zoo'
    assert data['failed'] == [
        {
            'entry_point': 'test_broken',
            'provider': 'davinci-zoo-test-broken 0.0.1',
            'error': 'ImportError: zoo_test_broken needs the package "imaginary-codec", '
            'which is not installed',
        }
    ]
    assert data['conflicts'] == [
        {
            'registry': 'objective',
            'name': 'CodeReconstruction',
            'providers': ['davinci-zoo-test-clash 0.4.0', 'davinci-zoo-test-good 1.2.3'],
        }
    ]


BUILD = """
import torch
from mmengine.registry import DefaultScope
from davinci_zoo.registry import IMAGE_TOKENIZERS, OBJECTIVES, ComponentLookupError

with DefaultScope.overwrite_default_scope('davinci_zoo'):
    tokenizer = IMAGE_TOKENIZERS.build(dict(type='GreyLevelTokenizer', levels=4))
    images = torch.rand(2, 3, 16, 16)
    codes = tokenizer.encode(images)
    assert codes.shape == (2, 4, 4) and tokenizer.decode(codes).shape == (2, 3, 16, 16)
    print('built', type(tokenizer).__module__)
    OBJECTIVES.build(dict(type='ClashOnlyObjective'))
    print('built ClashOnlyObjective')
    for name in ('CodeReconstruction', 'BrokenTokenizer'):
        try:
            OBJECTIVES.build(dict(type=name))
        except ComponentLookupError as error:
            print(name, 'ERROR', error)
"""


def test_good_plugin_builds_broken_is_reported_clash_blocks_one_name(venv):
    result = run_in(venv, BUILD)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(' ', 1) for line in result.stdout.strip().splitlines())
    assert lines['built'] == 'ClashOnlyObjective'  # the clashing plugin's other name builds
    assert 'built zoo_test_good.plugin' in result.stdout
    conflict = lines['CodeReconstruction']
    assert 'davinci-zoo-test-good 1.2.3' in conflict and 'davinci-zoo-test-clash 0.4.0' in conflict
    missing = lines['BrokenTokenizer']
    assert "plugin 'test_broken' from davinci-zoo-test-broken 0.0.1 raised ImportError" in missing
    assert 'imaginary-codec' in missing


def test_environment_variable_selects_plugins(venv):
    names = {c['name'] for c in listing(venv, DAVINCI_ZOO_PLUGINS='none')['components']}
    assert 'RNGStateHook' in names and 'GreyLevelTokenizer' not in names

    only_good = listing(venv, DAVINCI_ZOO_PLUGINS='test_good')
    assert {c['provider'] for c in only_good['components']} == {
        'davinci-zoo',
        'davinci-zoo-test-good',
    }
    assert only_good['failed'] == [] and only_good['conflicts'] == []

    without_clash = listing(venv, DAVINCI_ZOO_PLUGINS='-test_clash,-test_broken')
    assert without_clash['failed'] == [] and without_clash['conflicts'] == []
    assert 'PaletteTokenizer' in {c['name'] for c in without_clash['components']}


def test_readme_example_plugin_runs(venv):
    result = run_in(
        venv,
        """
        import torch
        from davinci_zoo.registry import IMAGE_TOKENIZERS
        palette = [[0, 0, 0], [1, 0, 0], [0, 0, 1]]
        tokenizer = IMAGE_TOKENIZERS.build(dict(type='PaletteTokenizer', palette=palette))
        codes = torch.tensor([[[0, 1], [2, 1]]])
        images = tokenizer.decode(codes)
        assert images.shape == (1, 3, 16, 16)
        assert torch.equal(tokenizer.encode(images), codes)
        print('palette ok', tokenizer.codebook_size)
    """,
    )
    assert result.returncode == 0, result.stderr
    assert 'palette ok 3' in result.stdout


def test_readme_task_plugin_trains_and_tests_from_its_package_config(venv, tmp_path):
    """The README's task distribution: its head, dataset and metric come from its entry point,
    its config from ``package::path``; 2 iterations, then its metric."""
    config = 'davinci_zoo_brightness::configs/brightness_tiny.py'
    work = tmp_path / 'work'
    train = run_tool(
        'tools/train.py',
        config,
        '--work-dir',
        str(work),
        '--cfg-options',
        'train_cfg.max_iters=2',
        'default_hooks.checkpoint.interval=2',
        python=venv,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    scores = tmp_path / 'scores.json'
    test = run_tool(
        'tools/test.py',
        config,
        str(work / 'iter_2.pth'),
        '--work-dir',
        str(work),
        '--metrics-json',
        str(scores),
        python=venv,
    )
    assert test.returncode == 0, test.stderr[-3000:]
    accuracy = json.loads(scores.read_text())['brightness/accuracy']
    assert 0.0 <= accuracy <= 1.0

    missing = run_tool('tools/train.py', 'davinci_zoo_brightness::configs/nope.py', python=venv)
    assert missing.returncode == 2
    assert 'the package davinci_zoo_brightness has no file configs/nope.py' in missing.stderr


def test_nothing_leaked_into_the_test_environment(venv):
    names = {ep.name for ep in metadata.entry_points(group='davinci_zoo.plugins')}
    assert not names & {'test_good', 'test_broken', 'test_clash', 'palette', 'brightness'}
