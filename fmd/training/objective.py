"""What a training step optimises: the detector's own loss, or the criterion on a classifier's logits.

A model that owns its loss (fmd.models.mask_head.MaskedDetector: cross-entropy plus its mask head's
loss) implements the `Detector` protocol; any other model is a plain classifier trained with the
Trainer's criterion. The Trainer calls both the same way, so its loop has one code path.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepResult = tuple[torch.Tensor, torch.Tensor, dict[str, float]]  # (loss, logits, the model's own logs)


@runtime_checkable
class Detector(Protocol):
    """A model that computes its own training loss and keeps parts beside its classifier."""

    classifier: nn.Module  # the image -> Bx2 logits model that is evaluated and saved as 'model'

    def loss(self, batch: Sequence[torch.Tensor], criterion: Criterion) -> StepResult:
        """(loss, classifier logits, {name: float}) of a batch already on the device."""

    def checkpoint_entries(self) -> dict[str, Any]:
        """What a checkpoint stores beside the classifier's weights (CPU copies)."""

    def load_checkpoint_entries(self, state: Mapping[str, Any]) -> None:
        """Take back what checkpoint_entries stored."""


def classifier_of(model: nn.Module) -> nn.Module:
    """The classifier inside a Detector, or the model itself."""
    return model.classifier if isinstance(model, Detector) else model


def checkpoint_entries(model: nn.Module) -> dict[str, Any]:
    """A Detector's checkpoint entries beside the classifier's weights ({} for a plain classifier)."""
    return model.checkpoint_entries() if isinstance(model, Detector) else {}


def load_checkpoint_entries(model: nn.Module, state: Mapping[str, Any]) -> None:
    """Give a Detector back what checkpoint_entries saved (nothing to do for a plain classifier)."""
    if isinstance(model, Detector):
        model.load_checkpoint_entries(state)


def classifier_loss(model: nn.Module, batch: Sequence[torch.Tensor], criterion: Criterion) -> StepResult:
    """A plain classifier's step: the criterion on its float32 logits."""
    logits = model(batch[0])
    return criterion(logits.float(), batch[1]), logits, {}


class Objective(nn.Module):
    """forward(batch) = the model's training loss on a batch, as a module, so that
    DistributedDataParallel wraps the whole step (the forward pass and the loss)."""

    def __init__(self, model: nn.Module, criterion: Criterion):
        super().__init__()
        self.model, self.criterion = model, criterion
        self.owns_loss = isinstance(model, Detector)

    def forward(self, batch: Sequence[torch.Tensor]) -> StepResult:
        if self.owns_loss:
            return self.model.loss(batch, self.criterion)
        return classifier_loss(self.model, batch, self.criterion)
