"""Score a text (STS-B's similarity) from the decoder state at [SEP], with a squared error."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...registry import HEADS
from .base import samples_for
from .sequence_classification import SequenceClassificationHead


@HEADS.register_module()
class SequenceRegressionHead(SequenceClassificationHead):
    """The original's STS-B head (docs/original.md section 4.5): the feature of
    :class:`SequenceClassificationHead` (the decoder state at ``[SEP]``) through an MLP
    D -> D -> ReLU -> 1, trained with the mean squared error against the data samples'
    ``gt_value`` (a float, STS-B's score in [0, 5]).

    Args:
        hidden_size, text_key, max_tokens, loss_weight: as :class:`SequenceClassificationHead`.

    ``predict`` sets ``pred_score`` to the predicted score (a float) on each data sample.
    """

    min_outputs = 1

    def __init__(
        self,
        hidden_size: int = 768,
        text_key: str = 'text',
        max_tokens: int = 40,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__(1, hidden_size, text_key, max_tokens, 0.0, loss_weight)

    def scores(self, model, inputs: dict) -> torch.Tensor:
        """Predicted scores [B]."""
        return self(model, inputs)[:, 0]

    def loss(self, model, inputs: dict, data_samples) -> dict[str, torch.Tensor]:
        if any('gt_value' not in sample for sample in data_samples):
            raise ValueError(
                f"{type(self).__name__} trains on the data samples' gt_value (a float); pack it "
                "with PackDaVinciInputs(algorithm_keys=['gt_value'])"
            )
        targets = torch.tensor(
            [float(sample.gt_value) for sample in data_samples], device=model.device
        )
        loss = F.mse_loss(self.scores(model, inputs).float(), targets)
        return {'loss_mse': self.loss_weight * loss}

    @torch.no_grad()
    def predict(self, model, inputs: dict, data_samples) -> list:
        scores = self.scores(model, inputs).float().tolist()
        samples = samples_for(data_samples, len(scores))
        for sample, score in zip(samples, scores):
            sample.set_field(score, 'pred_score')
        return samples
