"""The ``scenes`` entry point of ``davinci_zoo.plugins``: importing it registers
``ProceduralScenes`` (DATASETS), ``SceneWritePaintMetric`` and ``SceneReconstructionMetric``
(METRICS)."""

from . import dataset, metrics  # noqa: F401
