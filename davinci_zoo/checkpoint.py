"""Reading and writing checkpoints safely.

Reading: :func:`load_checkpoint_file` is the one loader. ``.safetensors`` files hold tensors
only; ``.pth`` files (mmengine's format) are read with ``torch.load(weights_only=True)`` plus
an explicit allowlist of the few non-tensor objects mmengine pickles (its HistoryBuffer and
numpy arrays/scalars; docs/stack.md section 2.1). A file that pickles anything else is refused with
:class:`UnsafeCheckpointError`; nothing in it is executed.

Writing: :func:`atomic_write` writes to a temporary file in the target directory, flushes it
to disk and renames it into place, so a writer killed half way leaves the previous file (and
every other file) intact. :func:`save_checkpoint_file` uses it for both formats, and
:mod:`davinci_zoo.engine.runtime` routes mmengine's own checkpoint writes through it.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import torch

SAFETENSORS_META_KEY = 'davinci_zoo_meta'


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says which and why."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist."""


class UnsafeCheckpointError(CheckpointError):
    """A ``.pth`` file pickles objects outside the allowlist."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint's weights do not fit the model built from the config."""


def safe_globals() -> list[Any]:
    """The non-tensor objects an mmengine ``.pth`` may contain (docs/stack.md section 2.1)."""
    import numpy as np
    from mmengine.logging import HistoryBuffer

    try:  # numpy 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [
        getattr(np.dtypes, name)
        for name in (
            'Float64DType',
            'Float32DType',
            'Int64DType',
            'Int32DType',
            'UInt32DType',
            'UInt8DType',
            'BoolDType',
        )
        if hasattr(np, 'dtypes') and hasattr(np.dtypes, name)
    ]
    # builtins.getattr: HistoryBuffer pickles its statistics methods as getattr(cls, 'min').
    return [HistoryBuffer, builtins.getattr, _reconstruct, np.ndarray, np.dtype, scalar, *dtypes]


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = 'cpu') -> dict:
    """Load a ``.pth`` or ``.safetensors`` checkpoint without running pickled code.

    Returns:
        The checkpoint dict. A ``.safetensors`` file comes back as
        ``{'state_dict': {name: tensor}, 'meta': dict}``.
    """
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f'checkpoint {path} does not exist')
    if path.endswith('.safetensors'):
        return _load_safetensors(path, map_location)
    try:
        with torch.serialization.safe_globals(safe_globals()):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r'GLOBAL ([\w.]+)', str(error))
        what = found.group(1) if found else 'an object'
        raise UnsafeCheckpointError(
            f'{path} pickles {what}, which is not on the allowlist of checkpoint contents; '
            'refusing to unpickle it (it could run code). Convert files from elsewhere with '
            'tools/model_converters/, or save weights as .safetensors'
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(
            f'{path} is not a readable checkpoint (truncated or corrupt?): {error}'
        ) from None
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'{path} holds a {type(checkpoint).__name__}, not a checkpoint dict')
    return dict(checkpoint)


def _load_safetensors(path: str, map_location: Any) -> dict:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    device = str(map_location) if map_location is not None else 'cpu'
    try:
        state_dict = load_file(path, device=device)
        with safe_open(path, framework='pt') as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f'{path} is not a readable safetensors file: {error}') from None
    meta = json.loads(metadata.get(SAFETENSORS_META_KEY, '{}'))
    return {'state_dict': state_dict, 'meta': meta}


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file through ``write(handle)`` so that it appears whole or not at all."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory
    )
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; match a plain open()
        with os.fdopen(handle, 'wb') as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_directory(directory)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: str) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def save_checkpoint_file(checkpoint: Mapping, path: str | os.PathLike) -> None:
    """Save atomically: ``.safetensors`` takes ``{'state_dict', 'meta'}``, ``.pth`` any dict."""
    path = os.fspath(path)
    if path.endswith('.safetensors'):
        from safetensors.torch import save

        tensors = {name: tensor.contiguous() for name, tensor in checkpoint['state_dict'].items()}
        metadata = {SAFETENSORS_META_KEY: json.dumps(checkpoint.get('meta', {}), default=str)}
        payload = save(tensors, metadata=metadata)
        atomic_write(path, lambda stream: stream.write(payload))
    else:
        atomic_write(path, lambda stream: torch.save(dict(checkpoint), stream))


def state_dict_of(checkpoint: Mapping) -> Mapping[str, torch.Tensor]:
    """The model weights of a loaded checkpoint (mmengine's ``state_dict`` or a bare dict)."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    return {key.removeprefix('module.'): value for key, value in state_dict.items()}


# Where a model keeps the weights its pretraining objectives own (ITC's projections, ITM's
# match head, MLM's prediction head): ``objectives.<i>.``
OBJECTIVE_WEIGHTS_PREFIX = 'objectives.'


def without_unused_objective_weights(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state_dict`` less the pretraining objectives' weights that ``model`` does not have,
    and their keys: a task model scored on a pretraining checkpoint runs none of them, so they
    cannot change its outputs. Every other key is left for the strict check."""
    expected = model.state_dict()
    dropped = sorted(
        key
        for key in state_dict
        if key.startswith(OBJECTIVE_WEIGHTS_PREFIX) and key not in expected
    )
    drop = set(dropped)
    kept = {key: value for key, value in state_dict.items() if key not in drop}
    return kept, dropped


def fitting_state_dict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = 'checkpoint'
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state_dict`` less the pretraining objectives' weights ``model`` does not have (see
    :func:`without_unused_objective_weights`), checked to fit ``model`` exactly; and the keys
    left out. Raises CheckpointMismatchError naming the keys otherwise."""
    state_dict, dropped = without_unused_objective_weights(model, state_dict)
    check_state_dict_matches(model, state_dict, source=source)
    return state_dict, dropped


def listed_keys(keys: list[str], limit: int = 5) -> str:
    """The first ``limit`` keys, comma-separated, with ``...`` when there are more."""
    return ', '.join(keys[:limit]) + (', ...' if len(keys) > limit else '')


def check_state_dict_matches(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = 'checkpoint'
) -> None:
    """Raise CheckpointMismatchError naming missing, unexpected and mis-shaped keys."""
    problems = mismatch_problems(model.state_dict(), state_dict)
    if problems:
        raise CheckpointMismatchError(
            f'{source} does not match the model built from the config: ' + '; '.join(problems)
        )


def mismatch_problems(
    expected: Mapping[str, torch.Tensor],
    state_dict: Mapping[str, torch.Tensor],
    may_miss: Callable[[str], bool] = lambda key: False,
    may_differ: Callable[[str], bool] = lambda key: False,
) -> list[str]:
    """One phrase per kind of mismatch (missing, unexpected, mis-shaped keys, five named each);
    ``may_miss`` / ``may_differ`` exempt keys that may be absent / of another shape."""
    missing = sorted(k for k in expected if k not in state_dict and not may_miss(k))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = sorted(
        f'{key} {tuple(state_dict[key].shape)} vs {tuple(expected[key].shape)}'
        for key in set(expected) & set(state_dict)
        if tuple(state_dict[key].shape) != tuple(expected[key].shape) and not may_differ(key)
    )
    return [
        f'{label} ({len(keys)}): {listed_keys(keys)}'
        for label, keys in (
            ('missing keys', missing),
            ('unexpected keys', unexpected),
            ('shape mismatches (checkpoint vs model)', mis_shaped),
        )
        if keys
    ]
