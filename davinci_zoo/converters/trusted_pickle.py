"""Read pickled checkpoint *containers* (Lightning ``.ckpt``, OpenAI ``.pkl``) without running them.

TRUSTED-INPUT STEP. Conversion is the only place where davinci-zoo reads pickles beyond the
``weights_only`` allowlist of :mod:`davinci_zoo.checkpoint`, because those published files are
not plain state dicts: a Lightning checkpoint pickles callbacks and hyper-parameter objects, and
the DALL-E ``encoder.pkl``/``decoder.pkl`` pickle whole ``nn.Module`` objects. Even so, nothing
in them is executed: the unpickler below resolves only tensor-rebuilding functions, storages,
dtypes and plain containers; every other class is replaced by a :class:`Stub` that records the
state the pickle gives it. The converters then read tensors out of those stubs and write a
``.safetensors`` file, which is what the models load.
"""

from __future__ import annotations

import pickle
import types
from collections import OrderedDict
from typing import Any

import torch

_ALLOWED = {
    ('collections', 'OrderedDict'): OrderedDict,
    ('builtins', 'set'): set,
    ('builtins', 'frozenset'): frozenset,
    ('builtins', 'slice'): slice,
    ('builtins', 'object'): object,
    ('torch', 'Size'): torch.Size,
    ('torch', 'device'): torch.device,
    ('torch._utils', '_rebuild_tensor'): torch._utils._rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): torch._utils._rebuild_parameter_with_state,
}


class Stub:
    """Stands in for a class the unpickler will not import; keeps what the pickle gave it.

    Attributes:
        stub_name: ``module.QualifiedName`` of the class it replaces.
        stub_args: positional arguments of the pickled call, if any.
        stub_state: the state passed to ``__setstate__`` (for a module: its ``__dict__``).
        stub_items: items set by the pickle (dict subclasses such as Lightning's AttributeDict).
    """

    stub_name = 'unknown'

    def __new__(cls, *args, **kwargs):
        instance = super().__new__(cls)
        instance.stub_args, instance.stub_state, instance.stub_items = args, None, {}
        return instance

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        self.stub_state = state

    def __setitem__(self, key, value) -> None:
        self.stub_items[key] = value

    def append(self, value) -> None:
        self.stub_items[len(self.stub_items)] = value

    def __repr__(self) -> str:
        return f'<stub of {self.stub_name}>'


_stubs: dict[str, type] = {}


def _stub_class(module: str, name: str) -> type:
    full_name = f'{module}.{name}'
    if full_name not in _stubs:
        _stubs[full_name] = type(name, (Stub,), {'stub_name': full_name})
    return _stubs[full_name]


def _reconstructor(cls, base, state):
    """copyreg's helper for objects pickled with protocol < 2, restricted to safe classes."""
    if isinstance(cls, type) and issubclass(cls, Stub):
        return cls()
    if base is object:
        return object.__new__(cls)
    return base.__new__(cls, state)


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that imports nothing: allowlisted callables, else stubs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == 'copyreg' and name == '_reconstructor':
            return _reconstructor
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _stub_class(module, name)


#: A pickle-module stand-in for ``torch.load(..., pickle_module=restricted_pickle)``.
restricted_pickle = types.ModuleType('davinci_zoo_restricted_pickle')
restricted_pickle.Unpickler = RestrictedUnpickler
restricted_pickle.load = lambda file, **kwargs: RestrictedUnpickler(file, **kwargs).load()
restricted_pickle.__name__ = 'davinci_zoo_restricted_pickle'


def load_trusted_container(path) -> Any:
    """Load a torch-saved container, stubbing every class outside the allowlist."""
    return torch.load(path, map_location='cpu', pickle_module=restricted_pickle, weights_only=False)


def module_state_dict(stub: Stub, prefix: str = '') -> dict[str, torch.Tensor]:
    """The parameters and buffers of a pickled ``nn.Module`` (read from its stub's state)."""
    state = stub.stub_state if isinstance(stub.stub_state, dict) else {}
    tensors = {}
    for group in ('_parameters', '_buffers'):
        for name, tensor in (state.get(group) or {}).items():
            if tensor is not None:
                tensors[prefix + name] = tensor.detach() if hasattr(tensor, 'detach') else tensor
    for name, child in (state.get('_modules') or {}).items():
        if isinstance(child, Stub):
            tensors.update(module_state_dict(child, f'{prefix}{name}.'))
    return tensors


def find_tensors(obj: Any, prefix: str = '') -> dict[str, torch.Tensor]:
    """Every tensor reachable in nested dicts/lists/stubs, keyed by its dotted path."""
    if isinstance(obj, torch.Tensor):
        return {prefix.rstrip('.'): obj}
    found: dict[str, torch.Tensor] = {}
    if isinstance(obj, Stub):
        items = obj.stub_state if isinstance(obj.stub_state, dict) else obj.stub_items
        obj = items
    if isinstance(obj, dict):
        for key, value in obj.items():
            found.update(find_tensors(value, f'{prefix}{key}.'))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            found.update(find_tensors(value, f'{prefix}{index}.'))
    return found
