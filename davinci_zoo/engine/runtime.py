"""Make mmengine 0.10.7 safe and CPU-friendly on torch >= 2.6 (docs/stack.md sections 2.1, 2.2).

:func:`setup_runtime` is idempotent and is called by ``tools/train.py`` and ``tools/test.py``
(and by :func:`davinci_zoo.apis` entry points) before a Runner is built:

- every mmengine checkpoint read of a local file goes through
  :func:`davinci_zoo.checkpoint.load_checkpoint_file` (``weights_only=True`` + allowlist;
  ``.safetensors`` too), never ``weights_only=False``;
- every mmengine write of a local file (checkpoints, ``last_checkpoint``, dumped configs) is
  atomic (temporary file + rename);
- the Runner's environment report reads torchvision's version from its package metadata
  instead of importing it (the import alone takes ~2 s of every tool run, and a DaVinci run
  never needs torchvision otherwise).
"""

from __future__ import annotations

import os
import sys
import types
from importlib import metadata
from pathlib import Path

from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as mmengine_io
from mmengine.runner import CheckpointLoader
from mmengine.runner import runner as mmengine_runner
from mmengine.utils.dl_utils import collect_env

from ..checkpoint import CheckpointError, atomic_write, load_checkpoint_file


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, with writes that appear whole or not at all."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        atomic_write(filepath, lambda stream: stream.write(obj))

    def put_text(self, obj: str, filepath: str | Path, encoding: str = 'utf-8') -> None:
        data = obj.encode(encoding)
        atomic_write(filepath, lambda stream: stream.write(data))


def _load_local(filename: str, map_location=None) -> dict:
    return load_checkpoint_file(filename, map_location=map_location or 'cpu')


def collect_env_without_importing_torchvision() -> dict:
    """mmengine's ``collect_env()``, with torchvision's version taken from its installed
    package when torchvision is not imported yet (~2 s sooner; the package's version may lack
    the module's local label, e.g. ``0.29.1`` for ``0.29.1+cu130``)."""
    if 'torchvision' in sys.modules:
        return collect_env()
    try:
        version = metadata.version('torchvision')
    except metadata.PackageNotFoundError:
        return collect_env()  # reports no TorchVision, as mmengine does
    stand_in = types.ModuleType('torchvision')
    stand_in.__version__ = version
    sys.modules['torchvision'] = stand_in
    try:
        return collect_env()
    finally:
        if sys.modules.get('torchvision') is stand_in:
            del sys.modules['torchvision']


_installed = False


def setup_runtime() -> None:
    """Install the safe loader and the atomic writer into mmengine (once per process)."""
    global _installed
    if _installed:
        return
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    mmengine_io.backend_instances.clear()
    mmengine_runner.collect_env = collect_env_without_importing_torchvision
    _installed = True


def find_resumable_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The newest checkpoint in ``work_dir`` that loads, or None.

    mmengine trusts the ``last_checkpoint`` file blindly; a run killed while saving could
    leave it naming a file that is not there. This checks the file it names, then falls back
    to the ``iter_*.pth`` / ``epoch_*.pth`` files from newest to oldest.
    """
    work_dir = Path(work_dir)
    candidates = []
    pointer = work_dir / 'last_checkpoint'
    if pointer.is_file():
        candidates.append(Path(pointer.read_text().strip()))
    numbered = [
        path
        for path in work_dir.glob('*.pth')
        if path.stem.split('_')[0] in ('iter', 'epoch') and path.stem.split('_')[-1].isdigit()
    ]
    candidates += sorted(numbered, key=lambda path: path.stat().st_mtime, reverse=True)
    for candidate in candidates:
        if not candidate.is_file():
            continue
        try:
            load_checkpoint_file(candidate)
        except CheckpointError:
            continue
        return str(candidate)
    return None


def prepare_cpu_distributed(cfg) -> None:
    """Let ``--launcher pytorch`` run on CPU processes with gloo (docs/stack.md section 2.2).

    mmengine's own ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
    ``device_ids=[local_rank]``; both fail without a GPU. Initialising the gloo process group
    here makes the Runner skip ``init_dist``, and ``device_ids=None`` lets DDP wrap a CPU model.
    Does nothing when a GPU is present or the launcher is ``none``.
    """
    import torch
    import torch.distributed as dist

    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')


def build_runner(cfg):
    """Build the Runner a config asks for (``runner_type``, default mmengine's Runner)."""
    from mmengine.runner import Runner

    from ..registry import RUNNERS

    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def fit_schedulers_to_run(cfg) -> list[str]:
    """Fit epoch-based parameter schedulers to a run shorter than their phases.

    A shortened run (``train_cfg.max_epochs=1`` for a smoke test) can end inside a recipe's
    warm-up: mmengine then refuses the decay that would begin at or after the last epoch
    ("end should be larger than begin"). Such a scheduler is dropped (the warm-up then runs
    as written and the run ends inside it). Returns one line per change (the tools log them).
    """
    loop = cfg.get('train_cfg') or {}
    schedulers = cfg.get('param_scheduler')
    epochs = loop.get('max_epochs')
    if epochs is None or not isinstance(schedulers, (list, tuple)):
        return []
    kept, changes = [], []
    for scheduler in schedulers:
        if not isinstance(scheduler, dict) or not scheduler.get('by_epoch', True):
            kept.append(scheduler)
            continue
        begin = scheduler.get('begin', 0)
        if begin >= epochs:
            changes.append(
                f'{scheduler["type"]} from epoch {begin} dropped: the run ends at epoch {epochs}'
            )
            continue
        kept.append(scheduler)
    cfg.param_scheduler = kept
    return changes


def check_checkpoint_fits(model, path: str) -> None:
    """Raise CheckpointMismatchError unless ``path``'s weights fit ``model`` exactly, except
    for pretraining objectives' weights the model does not have (logged; mmengine's loader,
    which is not strict, then leaves them out)."""
    from mmengine.logging import print_log
    from mmengine.model import is_model_wrapper

    from ..checkpoint import fitting_state_dict, listed_keys, state_dict_of

    model = model.module if is_model_wrapper(model) else model
    checkpoint = load_checkpoint_file(path)
    _, dropped = fitting_state_dict(model, state_dict_of(checkpoint), source=f'checkpoint {path}')
    if dropped:
        print_log(
            f'checkpoint {path}: {len(dropped)} weights of pretraining objectives the model '
            f'does not run are left out ({listed_keys(dropped)})',
            logger='current',
        )
