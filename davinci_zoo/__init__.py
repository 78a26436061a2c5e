"""davinci-zoo: generative vision-language pretraining (DaVinci) on mmengine.

Importing the package is cheap on purpose: it loads neither torch-heavy model code,
mmpretrain's models nor torchvision. Components are registered lazily, the first time a
registry is queried or built from (see :mod:`davinci_zoo.plugins`).
"""

from .version import __version__


def list_components(registry=None, pattern='*'):
    """List registered components, timm style; see :func:`davinci_zoo.plugins.list_components`."""
    from .plugins import list_components as _list_components

    return _list_components(registry=registry, pattern=pattern)


__all__ = ['__version__', 'list_components']
