"""The running loss and accuracy of one pass over a split: per-sample means, percent accuracy.

Under torchrun a rank's last training batches may hold DistributedSampler's padding (repeats of
earlier samples): they are trained on but never counted, so every sample counts once across ranks.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from fmd.training.distributed import Distributed


class Score(tuple):
    """(mean loss per sample, accuracy %), as the assignment's methods return them, plus the counts
    and the means of the model's own logs (a mask head's loss, say)."""

    def __new__(cls, loss: float, accuracy: float, correct: int = 0, seen: int = 0,
                logs: dict[str, float] | None = None) -> Score:
        score = super().__new__(cls, (loss, accuracy))
        score.correct, score.seen, score.logs = correct, seen, dict(logs or {})
        return score

    @property
    def loss(self) -> float:
        return self[0]

    @property
    def accuracy(self) -> float:
        return self[1]

    def line(self, epoch: int) -> str:
        """`Epoch [001] | Loss: 0.693 | Acc: 50.00[%] (16/32)`, then ` | Mask loss: 0.1234` for each log."""
        logs = ''.join(f' | {name.replace("_", " ").capitalize()}: {value:.4f}'
                       for name, value in self.logs.items())
        return (f'Epoch [{epoch:03d}] | Loss: {self.loss:.3f} | Acc: {self.accuracy:.2f}[%] '
                f'({self.correct}/{self.seen})' + logs)


class RunningScore:
    """Sums over the batches of a pass: loss x samples, correct predictions, samples, the model's logs."""

    def __init__(self, loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 counted: float = math.inf):
        self.loss_of = loss_of  # recomputes the loss of the counted part of a padded batch
        self.counted = counted  # samples of this rank that are not padding (they come first)
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0
        self.log_sums: dict[str, float] = {}

    def add(self, loss: float, logits: torch.Tensor, targets: torch.Tensor,
            logs: dict[str, float] | None = None) -> None:
        """One batch: its mean loss, logits and labels (and the model's logs, means over the batch)."""
        for name, value in (logs or {}).items():
            self.log_sums[name] = self.log_sums.get(name, 0.0) + value * targets.size(0)
        keep = max(0, min(targets.size(0), self.counted - self.seen))
        if keep < targets.size(0):  # DistributedSampler's padding: trained on, never counted
            logits, targets = logits[:keep].detach(), targets[:keep]
            loss = self.loss_of(logits, targets).item() if keep else 0.0
        self.loss_sum += loss * targets.size(0)
        self.correct += (logits.argmax(dim=1) == targets).sum().item()
        self.seen += targets.size(0)

    def postfix(self) -> dict[str, str]:
        """The progress bar's loss and accuracy so far."""
        return {'loss': f'{self.loss_sum / max(self.seen, 1):.3f}',
                'acc': f'{100 * self.correct / max(self.seen, 1):.2f}%'}

    def total(self, distributed: Distributed) -> Score:
        """The pass's Score, its sums added over every process."""
        loss_sum, correct, seen, *log_sums = distributed.sum(self.loss_sum, self.correct, self.seen,
                                                             *self.log_sums.values())
        logs = {name: value / seen for name, value in zip(self.log_sums, log_sums, strict=True)}
        return Score(loss_sum / seen, 100.0 * correct / seen, correct, seen, logs)
