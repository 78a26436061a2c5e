"""`import davinci_zoo` stays light: no mmpretrain models, no torchvision."""

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys, time
start = time.perf_counter()
import davinci_zoo
seconds = time.perf_counter() - start
heavy = [m for m in ('mmpretrain.models', 'torchvision', 'mmpretrain', 'torch') if m in sys.modules]
print(json.dumps({'seconds': seconds, 'heavy': heavy, 'version': davinci_zoo.__version__}))
"""


def test_import_is_light():
    result = subprocess.run(
        [sys.executable, '-c', PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f'import davinci_zoo: {report["seconds"] * 1000:.1f} ms')
    assert report['heavy'] == []
    assert report['version']


def test_listing_does_not_import_mmpretrain_models():
    probe = (
        'import sys, davinci_zoo; davinci_zoo.list_components(); '
        "print('mmpretrain.models' in sys.modules, 'torchvision' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, '-c', probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split()[-2:] == ['False', 'False']


def test_the_core_runs_without_the_scenes_plugin():
    """Loading every core component (plugins switched off) never imports the scenes plugin,
    and no core module names it."""
    probe = (
        'import sys; from davinci_zoo.plugins import load_plugins; load_plugins(); '
        "print(sorted(m for m in sys.modules if m.startswith('davinci_zoo_scenes')))"
    )
    result = subprocess.run(
        [sys.executable, '-c', probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, 'DAVINCI_ZOO_PLUGINS': 'none'},
    )
    assert result.stdout.split('\n')[-2] == '[]'
    package = Path(__file__).resolve().parents[1] / 'davinci_zoo'
    naming = [p.name for p in package.rglob('*.py') if 'davinci_zoo_scenes' in p.read_text()]
    assert naming == []
