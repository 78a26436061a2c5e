"""davinci_zoo.engine.runtime: what setup_runtime changes in mmengine beyond checkpoints; the
random states a checkpoint carries."""

import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import torch
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


class FakeCudaGenerator:
    """Stands in for one GPU's generator: a ByteTensor state that sampling advances."""

    def __init__(self):
        self.state = torch.arange(16, dtype=torch.uint8)

    def get(self):
        return self.state.clone()

    def set(self, state):
        self.state = state.clone()


def test_rng_state_hook_saves_and_restores_the_cuda_generator(monkeypatch):
    """Resume on a GPU must continue its dropout masks: the CUDA state goes into the
    checkpoint and comes back; without CUDA at resume the rest is restored with a warning."""
    from mmengine.logging import MMLogger

    from davinci_zoo.engine.hooks import RNGStateHook

    np.random.seed(0)
    generator = FakeCudaGenerator()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_rng_state', generator.get)
    monkeypatch.setattr(torch.cuda, 'set_rng_state', generator.set)
    hook, checkpoint = RNGStateHook(), {}
    hook.before_save_checkpoint(None, checkpoint)
    assert torch.equal(checkpoint['rng_state']['cuda'], torch.arange(16, dtype=torch.uint8))

    generator.state = torch.zeros(16, dtype=torch.uint8)  # the run goes on, then resumes
    hook.after_load_checkpoint(None, checkpoint)
    assert torch.equal(generator.state, torch.arange(16, dtype=torch.uint8))

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    MMLogger.get_instance('rng-test')
    first_draw = np.random.random()  # the first draw after the checkpoint's state
    hook.after_load_checkpoint(None, checkpoint)  # warns; CPU states still restored
    assert np.random.random() == first_draw
