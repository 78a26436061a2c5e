"""The registries of davinci-zoo.

Every registry has the scope ``davinci_zoo``. Those that mmpretrain also has are children of
mmpretrain's (which are children of mmengine's), so a config with
``default_scope='davinci_zoo'`` builds our components, mmpretrain's (``type='ResNet'``) and
mmengine's (``type='AdamW'``) by their plain names. BACKBONES, IMAGE_TOKENIZERS, OBJECTIVES,
HEADS and SCORERS are our own; a name they lack is looked up in MODELS.

Components arrive through the ``davinci_zoo.plugins`` entry-point group (the core package is
plugin number one). The first lookup or listing loads the plugins; see
:mod:`davinci_zoo.plugins` for what happens when one fails or two collide.
"""

from __future__ import annotations

import difflib
from typing import Any

from mmengine import registry as mme
from mmengine.registry import Registry
from mmpretrain import registry as mmp

SCOPE = 'davinci_zoo'


class ComponentLookupError(KeyError):
    """A registry lookup that cannot succeed; the message says why and what to do.

    Subclasses KeyError (what mmengine raises for unknown names) but prints its message
    as is, without KeyError's quotes. mmengine re-raises build errors as
    ``type(e)(message)``, so the constructor takes one string.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class ComponentNotFoundError(ComponentLookupError):
    """No registry in reach has the name."""


class ComponentConflictError(ComponentLookupError):
    """Two providers registered the name; it cannot be built until one is removed."""


class ZooRegistry(Registry):
    """An mmengine Registry that knows who provided each name.

    Differences from :class:`mmengine.registry.Registry`:

    - the first lookup loads the entry-point plugins (instead of mmengine's ``locations``);
    - each name records its provider (distribution name and version);
    - a second provider of a name does not abort its plugin: the name becomes unbuildable
      and the error names both providers;
    - a failed lookup raises :class:`ComponentNotFoundError` with the closest names and the
      plugins that failed to load, instead of returning None;
    - ``fallback`` names a registry searched when this one (and its parents) lack a name.
    """

    def __init__(
        self, name: str, parent: Registry | None = None, fallback: ZooRegistry | None = None
    ) -> None:
        super().__init__(name, parent=parent, scope=SCOPE)
        self.fallback = fallback
        self.providers: dict[str, Any] = {}
        self.conflicts: dict[str, list[Any]] = {}

    # -- loading -------------------------------------------------------------------------
    def import_from_location(self) -> None:
        """Load the plugins once; mmengine calls this at the start of every ``get``."""
        from .plugins import load_plugins

        load_plugins()

    # -- registration ----------------------------------------------------------------------
    def _register_module(self, module, module_name=None, force: bool = False) -> None:
        from .plugins import provider_of

        if not callable(module):
            raise TypeError(f'module must be callable, but got {type(module)}')
        names = [module.__name__] if module_name is None else module_name
        names = [names] if isinstance(names, str) else names
        provider = provider_of(module)
        for name in names:
            existing = self._module_dict.get(name)
            if existing is None or existing is module or force:
                self._module_dict[name] = module
                self.providers[name] = provider
            elif provider == self.providers[name]:
                raise KeyError(
                    f'{name} is registered twice in davinci_zoo::{self.name} by '
                    f'{provider}: {existing.__module__} and {module.__module__}'
                )
            else:
                self.conflicts.setdefault(name, [self.providers[name]]).append(provider)

    # -- lookup ----------------------------------------------------------------------------
    def get(self, key: str):
        """Return the component called ``key``; raise a ComponentLookupError if there is none."""
        found = self.find(key)
        if found is None:
            raise ComponentNotFoundError(self._not_found_message(key))
        return found

    def find(self, key: str):
        """Like :meth:`get`, but return None for a name that no registry in reach has."""
        self.import_from_location()
        scope, name = self.split_scope_key(key)
        if scope in (None, SCOPE) and name in self.conflicts:
            providers = ' and '.join(str(p) for p in self.conflicts[name])
            raise ComponentConflictError(
                f'{name!r} in davinci_zoo::{self.name} is provided by both {providers}; '
                'uninstall one of them, or exclude its plugin with '
                'DAVINCI_ZOO_PLUGINS=-<entry point name>'
            )
        found = super().get(key)
        if found is None and self.fallback is not None:
            found = self.fallback.find(key)
        if found is None and scope is None:
            # mmengine does not run a parent's lazy imports for a bare name
            # (docs/stack.md section 2.3).
            for parent in self._ancestors():
                parent.import_from_location()
            found = super().get(key)
        return found

    def __contains__(self, key) -> bool:
        try:
            return self.find(key) is not None
        except ComponentConflictError:
            return False

    def _ancestors(self):
        parent = self.parent
        while parent is not None:
            yield parent
            parent = parent.parent

    def known_names(self) -> list[str]:
        """Every name this registry, its fallback and its ancestors can build."""
        names = set(self._module_dict)
        for parent in self._ancestors():
            names.update(parent._module_dict)
        if self.fallback is not None:
            names.update(self.fallback.known_names())
        return sorted(names)

    def _not_found_message(self, key: str) -> str:
        from .plugins import failed_plugins

        message = f'{key!r} is not a registered davinci_zoo::{self.name}'
        close = difflib.get_close_matches(key, self.known_names(), n=3, cutoff=0.6)
        if close:
            message += '; did you mean ' + ' or '.join(repr(c) for c in close) + '?'
        failed = failed_plugins()
        if failed:
            reports = '; '.join(f.describe() for f in failed)
            message += (
                f'. It may come from a plugin that failed to load: {reports}. '
                'Run `python tools/list_plugins.py` for details'
            )
        else:
            message += '. Run `python tools/list_plugins.py` to see what is registered'
        return message


def _child(name: str, parent: Registry) -> ZooRegistry:
    return ZooRegistry(name, parent=parent)


# Runner machinery.
RUNNERS = _child('runner', mmp.RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', mmp.RUNNER_CONSTRUCTORS)
LOOPS = _child('loop', mmp.LOOPS)
HOOKS = _child('hook', mmp.HOOKS)
LOG_PROCESSORS = _child('log_processor', mmp.LOG_PROCESSORS)
FUNCTIONS = _child('function', mme.FUNCTIONS)
STRATEGIES = _child('strategy', mme.STRATEGIES)

# Data.
DATASETS = _child('dataset', mmp.DATASETS)
DATA_SAMPLERS = _child('data sampler', mmp.DATA_SAMPLERS)
TRANSFORMS = _child('transform', mmp.TRANSFORMS)

# Models.
MODELS = _child('model', mmp.MODELS)
MODEL_WRAPPERS = _child('model_wrapper', mmp.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', mmp.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child('batch augment', mmp.BATCH_AUGMENTS)
TASK_UTILS = _child('task util', mmp.TASK_UTILS)
TOKENIZERS = _child('tokenizer', mmp.TOKENIZER)
BACKBONES = ZooRegistry('backbone', fallback=MODELS)
IMAGE_TOKENIZERS = ZooRegistry('image tokenizer', fallback=MODELS)
OBJECTIVES = ZooRegistry('objective', fallback=MODELS)
HEADS = ZooRegistry('head', fallback=MODELS)
#: Scores how well images [B, 3, H, W] in [0, 1] fit texts (re-ranking of paintings).
SCORERS = ZooRegistry('scorer', fallback=MODELS)

# Optimisation.
OPTIMIZERS = _child('optimizer', mmp.OPTIMIZERS)
OPTIM_WRAPPERS = _child('optim_wrapper', mmp.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor', mmp.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler', mmp.PARAM_SCHEDULERS)

# Evaluation and visualisation.
METRICS = _child('metric', mmp.METRICS)
EVALUATORS = _child('evaluator', mmp.EVALUATORS)
VISUALIZERS = _child('visualizer', mmp.VISUALIZERS)
VISBACKENDS = _child('vis_backend', mmp.VISBACKENDS)

#: Every registry of the zoo, by the name used in listings and ``list_components``.
REGISTRIES: dict[str, ZooRegistry] = {
    registry.name: registry
    for registry in (
        MODELS,
        BACKBONES,
        IMAGE_TOKENIZERS,
        OBJECTIVES,
        HEADS,
        SCORERS,
        DATASETS,
        TRANSFORMS,
        METRICS,
        HOOKS,
        RUNNERS,
        RUNNER_CONSTRUCTORS,
        LOOPS,
        LOG_PROCESSORS,
        FUNCTIONS,
        STRATEGIES,
        DATA_SAMPLERS,
        MODEL_WRAPPERS,
        WEIGHT_INITIALIZERS,
        BATCH_AUGMENTS,
        TASK_UTILS,
        TOKENIZERS,
        OPTIMIZERS,
        OPTIM_WRAPPERS,
        OPTIM_WRAPPER_CONSTRUCTORS,
        PARAM_SCHEDULERS,
        EVALUATORS,
        VISUALIZERS,
        VISBACKENDS,
    )
}
