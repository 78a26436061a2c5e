"""Entry-point plugins: how components reach the registries.

A plugin is a distribution that declares, in its packaging metadata::

    [project.entry-points."davinci_zoo.plugins"]
    my_tokenizer = "my_package.davinci_plugin"

Importing ``my_package.davinci_plugin`` registers its components (``@IMAGE_TOKENIZERS.
register_module()`` and friends). The core package registers its own components through
the same group (entry point ``core``) and is always loaded, even when run from a source
checkout that was never installed.

Loading happens once, lazily, on the first registry lookup or listing:

- a plugin that raises on import is recorded (entry point, distribution, exception) and the
  others still load; a lookup of an unknown name reports it;
- two providers of one name make only that name unbuildable (the error names both);
- ``DAVINCI_ZOO_PLUGINS`` selects third-party plugins by entry-point name: ``none`` loads
  none, ``a,b`` only those, ``-a`` (or ``-a,-b``) all but those.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import os
import traceback
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from .version import __version__

ENTRY_POINT_GROUP = 'davinci_zoo.plugins'
ENV_VAR = 'DAVINCI_ZOO_PLUGINS'
CORE_DISTRIBUTION = 'davinci-zoo'
CORE_MODULE = 'davinci_zoo.components'


@dataclass(frozen=True)
class Provider:
    """The distribution that registered a component."""

    distribution: str
    version: str = ''

    def __str__(self) -> str:
        return f'{self.distribution} {self.version}'.strip()


@dataclass(frozen=True)
class FailedPlugin:
    """A plugin whose module raised on import."""

    entry_point: str
    provider: Provider
    error: str
    traceback: str

    def describe(self) -> str:
        return f'plugin {self.entry_point!r} from {self.provider} raised {self.error}'


@dataclass(frozen=True)
class ComponentInfo:
    """One row of :func:`list_components`."""

    registry: str
    name: str
    provider: str
    version: str
    module: str


CORE = Provider(CORE_DISTRIBUTION, __version__)


class _State:
    """What :func:`load_plugins` has done in this process."""

    def __init__(self) -> None:
        self.loaded = False
        self.loading = False
        self.failed: list[FailedPlugin] = []
        self.loaded_entry_points: list[str] = []
        self.current: tuple[str, Provider] | None = None  # (top package, provider) loading


_state = _State()


def selected(entry_point_name: str, setting: str | None) -> bool:
    """Whether the ``DAVINCI_ZOO_PLUGINS`` setting lets a third-party entry point load."""
    if setting is None or not setting.strip():
        return True
    items = [item.strip() for item in setting.split(',') if item.strip()]
    if items == ['none']:
        return False
    excluded = [item[1:] for item in items if item.startswith('-')]
    included = [item for item in items if not item.startswith('-')]
    if excluded and included:
        raise ValueError(
            f'{ENV_VAR}={setting!r} mixes names to load and names to exclude; '
            'use either "a,b" or "-a,-b"'
        )
    if excluded:
        return entry_point_name not in excluded
    return entry_point_name in included


def _entry_points():
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _provider_of_entry_point(entry_point) -> Provider:
    dist = getattr(entry_point, 'dist', None)
    if dist is None:
        return Provider('unknown distribution')
    return Provider(dist.metadata['Name'], dist.version)


def load_plugins() -> None:
    """Import the core and every selected plugin, once. Safe to call often."""
    if _state.loaded or _state.loading:
        return
    _state.loading = True
    try:
        # a core that fails to import raises here, on this and on every later lookup: the
        # state stays "not loaded", so no lookup ever reports a name as merely unregistered
        _import_plugin('core', CORE_MODULE, CORE)
        setting = os.environ.get(ENV_VAR)
        for entry_point in _entry_points():
            if entry_point.value == CORE_MODULE or not selected(entry_point.name, setting):
                continue
            _import_plugin(
                entry_point.name, entry_point.value, _provider_of_entry_point(entry_point)
            )
        _state.loaded = True
    finally:
        _state.loading = False


def _import_plugin(name: str, module: str, provider: Provider) -> None:
    _state.current = (module.split('.')[0], provider)
    try:
        importlib.import_module(module)
    except Exception as error:  # a broken plugin must not take the others down
        if provider == CORE:
            raise
        failure = FailedPlugin(
            name, provider, f'{type(error).__name__}: {error}', traceback.format_exc()
        )
        _state.failed.append(failure)
        logging.getLogger(__name__).warning('davinci_zoo: %s', failure.describe())
    else:
        _state.loaded_entry_points.append(name)
    finally:
        _state.current = None


@lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@lru_cache(maxsize=1)
def _entry_point_packages() -> dict[str, Provider]:
    """Top-level package of each plugin module -> its distribution (editable installs too)."""
    return {
        ep.value.split('.')[0].split(':')[0]: _provider_of_entry_point(ep) for ep in _entry_points()
    }


def provider_of(component) -> Provider:
    """Who provides ``component``: the plugin being loaded, else its module's distribution."""
    top = getattr(component, '__module__', '').split('.')[0]
    if top == 'davinci_zoo':
        return CORE
    if _state.current is not None and _state.current[0] == top:
        return _state.current[1]
    if top in _entry_point_packages():
        return _entry_point_packages()[top]
    distributions = _packages_distributions().get(top)
    if distributions:
        return Provider(distributions[0], metadata.version(distributions[0]))
    return Provider(f'unpackaged module {component.__module__}')


def failed_plugins() -> list[FailedPlugin]:
    """The plugins that raised on import (loading them first if needed)."""
    load_plugins()
    return list(_state.failed)


def conflicts() -> list[dict]:
    """Names provided twice: ``[{'registry', 'name', 'providers'}]``."""
    from .registry import REGISTRIES

    load_plugins()
    return [
        {'registry': registry_name, 'name': name, 'providers': sorted(map(str, providers))}
        for registry_name, registry in sorted(REGISTRIES.items())
        for name, providers in sorted(registry.conflicts.items())
    ]


def _resolve_registry(registry):
    from .registry import REGISTRIES, Registry

    if registry is None or isinstance(registry, Registry):
        return registry
    key = str(registry).lower().replace('_', ' ')
    for candidate in (
        key,
        key.rstrip('s'),
        key.replace(' ', '_'),
        key.rstrip('s').replace(' ', '_'),
    ):
        if candidate in REGISTRIES:
            return REGISTRIES[candidate]
    raise ValueError(f'unknown registry {registry!r}; choose from {sorted(REGISTRIES)}')


def list_components(registry=None, pattern: str = '*') -> list[ComponentInfo]:
    """Every component registered in the zoo's registries, sorted by registry and name.

    Args:
        registry: a registry (object or name such as ``'model'`` or ``'image_tokenizers'``);
            None lists all of them.
        pattern: a shell-style pattern on the component name, e.g. ``'*VQ*'``.

    Example:
        >>> import davinci_zoo
        >>> [c.name for c in davinci_zoo.list_components('hook', 'RNG*')]
        ['RNGStateHook']
    """
    from .registry import REGISTRIES

    load_plugins()
    chosen = _resolve_registry(registry)
    rows = []
    for registry_name, reg in sorted(REGISTRIES.items()):
        if chosen is not None and reg is not chosen:
            continue
        for name, component in sorted(reg.module_dict.items()):
            if fnmatch.fnmatchcase(name, pattern):
                provider = reg.providers.get(name) or provider_of(component)
                rows.append(
                    ComponentInfo(
                        registry_name,
                        name,
                        provider.distribution,
                        provider.version,
                        component.__module__,
                    )
                )
    return rows


def distributions_used_by(model) -> dict[str, str]:
    """{distribution: version} of the zoo core and every plugin whose classes ``model`` uses."""
    used = {}
    for module in model.modules():
        top = type(module).__module__.split('.')[0]
        if top == 'davinci_zoo':
            used[CORE.distribution] = CORE.version
        elif top in _entry_point_packages():
            provider = _entry_point_packages()[top]
            used[provider.distribution] = provider.version
    return dict(sorted(used.items()))


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
