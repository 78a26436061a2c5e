"""The core's plugin module: importing it registers every component of davinci-zoo.

It is the ``core`` entry point of the ``davinci_zoo.plugins`` group and is always loaded
first (see :mod:`davinci_zoo.plugins`).
"""

from .engine import hooks  # noqa: F401
