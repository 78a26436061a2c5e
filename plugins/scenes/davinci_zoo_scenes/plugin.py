"""The ``scenes`` entry point of ``davinci_zoo.plugins``: importing it registers
``ProceduralScenes`` (DATASETS), the scene metrics (METRICS) and ``SceneFeatures``, the scene
FID's feature network (MODELS)."""

from . import dataset, features, metrics  # noqa: F401
