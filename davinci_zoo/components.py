"""The core's plugin module: importing it registers every component of davinci-zoo.

It is the ``core`` entry point of the ``davinci_zoo.plugins`` group and is always loaded
first (see :mod:`davinci_zoo.plugins`).
"""

from .datasets import (  # noqa: F401
    bad_rows_hook,
    caption_references,
    channels,  # ToBGR
    cifar_layout,  # CIFARLayout
    coco_karpathy,  # CocoKarpathyCaptions
    country211,  # Country211
    glue,  # GLUEDataset
    image_folder,
    image_text,
    mixing,
    nlvr2,
    shards,
    snli_ve,
    stl10,  # STL10
    subset,  # SubsetDataset
    text_corpus,
    text_pair,  # TokenizeTextPair
    transforms,
)
from .datasets import vqa as vqa_dataset  # noqa: F401  (VQAv2)
from .engine import hooks, layer_decay, optim, sample_hooks  # noqa: F401
from .evaluation import glue as glue_metric  # noqa: F401  (GLUEMetric)
from .evaluation import (  # noqa: F401
    image_generation,  # ImageGenerationMetric: FID, IS
    reconstruction_metric,
    write_paint_metric,
)
from .evaluation import vqa as vqa_metric  # noqa: F401  (VQAAccuracy)
from .models import data_preprocessor, davinci, heads, losses, tokenizer_trainer  # noqa: F401
from .models.davinci import reranking  # noqa: F401  (SCORERS: CaptionLikelihoodScorer)
from .models.heads import (  # noqa: F401
    caption,  # CaptionHead
    image_classification,  # ImageClassificationHead
    pair_classification,  # PairClassificationHead
    sequence_regression,  # SequenceRegressionHead
    text_to_image,  # TextToImageHead
    tokenizer_reconstruction,  # TokenizerReconstructionHead
)
from .models.heads import vqa as vqa_head  # noqa: F401  (VQAHead)
