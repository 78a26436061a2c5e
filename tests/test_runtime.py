"""davinci_zoo.engine.runtime: what setup_runtime changes in mmengine beyond checkpoints."""

import json
import subprocess
import sys
from importlib import metadata

from conftest import REPO

REPORT = """
import json, sys
from davinci_zoo.engine.runtime import setup_runtime
setup_runtime()
from mmengine.runner import runner
env = runner.collect_env()
imported_by_report = 'torchvision' in sys.modules
import torchvision
print(json.dumps(dict(
    reported=env.get('TorchVision'),
    imported_by_report=imported_by_report,
    real_module_after=hasattr(torchvision, 'ops'),
    pytorch=env.get('PyTorch'),
)))
"""


def test_environment_report_names_torchvision_without_importing_it():
    """The Runner's environment report still names torchvision's version, read from its
    package; torchvision is not imported for it, and importing it afterwards gives the real
    module, not the report's stand-in."""
    out = subprocess.run(
        [sys.executable, '-c', REPORT], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report['reported'] == metadata.version('torchvision')
    assert report['imported_by_report'] is False
    assert report['real_module_after'] is True
    assert report['pytorch']  # the rest of mmengine's report is unchanged


def test_environment_report_uses_an_imported_torchvision_as_it_is():
    import torchvision

    from davinci_zoo.engine.runtime import collect_env_without_importing_torchvision

    assert collect_env_without_importing_torchvision()['TorchVision'] == torchvision.__version__
    assert sys.modules['torchvision'] is torchvision
