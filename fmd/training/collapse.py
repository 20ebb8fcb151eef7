"""Collapse guard: tell a run that learned nothing from one that is learning, after each validation.

An epoch is *collapsed* when the model gives (almost) every validation image the same class, or
when the mean training loss has not moved from its first-epoch value by a set margin. A *run* is
flagged when its best epoch (the checkpoint) or its last epoch is collapsed: a slow first epoch
that the run recovers from is reported on stderr but does not flag the run.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fmd.core.options import CLASS_NAMES

MAJORITY_SHARE = 0.98  # collapsed when one class gets at least this share of the validation images
LOSS_MARGIN = 0.005  # collapsed when |train loss - epoch 1's| < this fraction of epoch 1's


@dataclass(frozen=True)
class Verdict:
    """Whether an epoch is collapsed, and why (None when it is not)."""

    collapsed: bool
    reason: str | None = None


class CollapsedRunError(RuntimeError):
    """--stop-on-collapse N: N epochs in a row were collapsed, so the run stopped before completing."""


def collapse_verdict(predicted: Sequence[int] | np.ndarray | None, train_losses: Sequence[float], *,
                     majority_share: float = MAJORITY_SHARE,
                     loss_margin: float = LOSS_MARGIN) -> Verdict:
    """Collapsed when one class takes >= `majority_share` of `predicted` (validation classes, 0 real
    / 1 fake), or when the last of `train_losses` (one mean per epoch so far) is within `loss_margin`
    (relative) of the first."""
    reasons = []
    classes = np.asarray([] if predicted is None else predicted, dtype=np.int64).ravel()
    if classes.size:
        counts = np.bincount(classes, minlength=len(CLASS_NAMES))
        label = int(np.argmax(counts))
        share = counts[label] / classes.size
        if share >= majority_share:
            who = 'every' if counts[label] == classes.size else f'{share:.1%} of the'
            reasons.append(f'{who} {classes.size} validation images called {CLASS_NAMES[label]}')
    if len(train_losses) >= 2:
        first, last = train_losses[0], train_losses[-1]
        if abs(last - first) < loss_margin * abs(first):
            reasons.append(f'training loss {last:.4f} within {loss_margin:.1%} of epoch 1\'s {first:.4f}')
    return Verdict(bool(reasons), '; '.join(reasons) or None)


def warning_line(epoch: int, verdict: Verdict) -> str:
    """The one stderr line of a collapsed epoch."""
    return (f'WARNING: collapse guard: epoch {epoch} looks collapsed ({verdict.reason}); '
            'try --lr auto (see docs/training_guards.md)')


def consecutive_collapsed(flags: Sequence[bool | None]) -> int:
    """How many of the last epochs in a row were collapsed."""
    count = 0
    for flag in reversed(flags):
        if not flag:
            break
        count += 1
    return count


def stop_error(epoch: int, limit: int, verdict: Verdict) -> CollapsedRunError:
    """The one-line error that ends a run after `limit` collapsed epochs in a row."""
    epochs = f'epoch {epoch} was' if limit == 1 else f'epochs {epoch - limit + 1}-{epoch} were all'
    return CollapsedRunError(
        f'--stop-on-collapse {limit}: {epochs} collapsed (epoch {epoch}: {verdict.reason}); the '
        'previous completed run\'s checkpoint and log are unchanged. Try --lr auto or a lower --lr.')


class CollapseGuard:
    """The Trainer's guard: after each validation it records the epoch's flag in the run's record
    (`collapsed`), warns on stderr, and ends the run after `limit` collapsed epochs in a row."""

    def __init__(self, limit: int | None = None, warn: bool = True):
        self.limit, self.warn = limit, warn
        self.verdict: Verdict | None = None  # of the last epoch checked

    def check(self, epoch: int, record: dict, predicted: np.ndarray | None, train_loss: float) -> None:
        """Judge the epoch from its validation classes and the training losses so far (this epoch's
        `train_loss` is not in the record yet)."""
        self.verdict = collapse_verdict(predicted, [*record['train_loss'], train_loss])
        record['collapsed'].append(self.verdict.collapsed)
        if self.verdict.collapsed and self.warn:
            print(warning_line(epoch, self.verdict), file=sys.stderr, flush=True)

    def stops(self, record: dict) -> bool:
        """Whether stop_if_collapsed ends the run now: the last `limit` epochs were all collapsed."""
        return bool(self.limit) and consecutive_collapsed(record['collapsed']) >= self.limit

    def stop_if_collapsed(self, epoch: int, record: dict) -> None:
        """CollapsedRunError once the last `limit` epochs were all collapsed."""
        if self.stops(record):
            raise stop_error(epoch, self.limit, self.verdict)


def collapsed_epochs(record: dict) -> list[int]:
    """1-based epochs a training log record marks collapsed ([] for a log without the flags)."""
    return [epoch for epoch, flag in enumerate(record.get('collapsed') or [], start=1) if flag]


def run_collapsed(record: dict) -> bool:
    """A run is collapsed when its best epoch or its last epoch is."""
    epochs = collapsed_epochs(record)
    last = len(record.get('collapsed') or [])
    return bool(epochs) and (last in epochs or record.get('best_epoch') in epochs)


def collapse_note(record: dict | None) -> str:
    """' (COLLAPSED: epochs 2, 3, 4 of 4)' for a collapsed run, else '' (for report tables)."""
    if not record or not run_collapsed(record):
        return ''
    epochs = collapsed_epochs(record)
    return f' (COLLAPSED: epoch{"s" if len(epochs) > 1 else ""} {", ".join(map(str, epochs))} ' \
           f'of {len(record["collapsed"])})'
