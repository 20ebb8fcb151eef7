"""Learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's lr_find).

Train a *copy* of the model and its optimizer for a few hundred steps while the learning rate grows
exponentially from `start_lr` to `end_lr`, record the (smoothed) training loss at each step, find
the *edge* (the learning rate where the smoothed loss is lowest; on a curve that never falls by more
than its noise, where it first rises above its start) and suggest a fifth of it. Smith ("Cyclical
Learning Rates", 2017) finds the optimum within a factor of two of the largest rate that converges;
a fifth leaves a margin of 2.5 below that (fastai's "minimum" rule takes a tenth). The original
model, the optimizer and every global random state come out bit for bit as they went in, so a run
with `--lr auto` trains exactly as one given the suggested `--lr`.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fmd.core.options import LR_FIND_STEPS

DEFAULT_START_LR = 1e-7
DEFAULT_END_LR = 1.0
DEFAULT_STEPS = LR_FIND_STEPS  # fmd.core.options owns it (train_main.py's --help)
SMOOTHING = 0.05  # weight of the newest loss in the exponential moving average (fastai: 0.02)
DIVERGENCE = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum
EDGE_DIVISOR = 5.0  # suggestion = edge / this
NOISE_SIGMAS = 4.0  # a fall or rise of the smoothed loss counts when larger than this many of its sds
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class RangeTest:
    """What a range test measured: one entry per step, and the suggested learning rate."""

    lrs: list[float]
    losses: list[float]  # the batch loss before each step
    smoothed: list[float]  # bias-corrected exponential moving average of `losses`
    edge: float  # where the smoothed loss is lowest, or first rises on a curve that never falls
    diverged: bool  # stopped before `steps` because the loss blew up

    @property
    def suggestion(self) -> float:
        """The suggested learning rate: a fifth of the edge."""
        return self.edge / EDGE_DIVISOR

    def index_of(self, lr: float) -> int:
        """The step whose learning rate is nearest `lr` on the log axis."""
        return int(np.argmin(np.abs(np.log(np.asarray(self.lrs) / lr))))

    def summary(self) -> dict:
        """JSON-safe: the range, the edge, the suggestion, whether it diverged (for the training log)."""
        return {'suggestion': self.suggestion, 'edge': self.edge, 'steps': len(self.lrs),
                'start_lr': self.lrs[0], 'end_lr': self.lrs[-1], 'diverged': self.diverged}


@contextlib.contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Restore torch's (CPU and `device`'s CUDA), NumPy's and Python's random states on exit."""
    devices = [device] if device.type == 'cuda' else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def cycle(batches: Iterable[Batch]) -> Iterator[Batch]:
    """The batches again and again (a DataLoader restarts, reshuffled, each time it ends)."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError('the learning-rate range test got no batches (is the training split empty?)')


def smooth(losses: list[float], weight: float = SMOOTHING) -> list[float]:
    """Bias-corrected exponential moving average (as Adam corrects its moments)."""
    average, out = 0.0, []
    for step, loss in enumerate(losses, start=1):
        average = (1 - weight) * average + weight * loss
        out.append(average / (1 - (1 - weight) ** step))
    return out


def find_edge(lrs: list[float], losses: list[float], smoothed: list[float],
              weight: float = SMOOTHING, start_steps: int = 20) -> float:
    """Where the smoothed loss is lowest, when it fell below its start (the median of the first
    `start_steps` losses) by more than NOISE_SIGMAS standard deviations of the difference; otherwise
    (no learning seen, e.g. on a hard dataset) the first learning rate after that lowest point where
    it rose above its start by that much, else the last one."""
    raw, curve = np.asarray(losses), np.asarray(smoothed)
    start = float(np.median(raw[:start_steps]))
    sigma = 1.4826 * float(np.median(np.abs(np.diff(raw)))) / math.sqrt(2)  # robust batch-loss sd
    decay = (1 - weight) ** np.arange(1, len(curve) + 1)
    # variance (in sigma^2) of the bias-corrected moving average at each step, plus the start's median
    variance = weight / (2 - weight) * (1 + decay) / (1 - decay) + math.pi / 2 / min(start_steps, len(raw))
    margin = NOISE_SIGMAS * sigma * np.sqrt(variance)
    bottom = int(np.argmin(curve))
    if start - curve[bottom] > margin[bottom]:
        return lrs[bottom]
    above = bottom + np.nonzero(curve[bottom:] > start + margin[bottom:])[0]
    return lrs[int(above[0])] if above.size else lrs[-1]


def lr_range_test(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Batch],
                  criterion: nn.Module, device: torch.device, *, start_lr: float = DEFAULT_START_LR,
                  end_lr: float = DEFAULT_END_LR, steps: int = DEFAULT_STEPS,
                  prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  divergence: float = DIVERGENCE) -> RangeTest:
    """Train copies of `model` and `optimizer` at learning rates growing exponentially from
    `start_lr` to `end_lr` over `steps` batches; the originals and the random states stay untouched.

    `prepare` turns a batch's inputs into what the model takes (default: moved to `device`).
    A non-finite loss, or a smoothed loss above `divergence` times its minimum, ends the test early.
    """
    if not 0 < start_lr < end_lr or steps < 3:
        raise ValueError(f'range test needs 0 < start_lr < end_lr and steps >= 3, got {start_lr}, '
                         f'{end_lr}, {steps}')
    prepare = prepare or (lambda inputs: inputs.to(device))
    growth = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    diverged = False
    with preserved_rng(device):
        # one deepcopy, one memo: the copied optimizer's state points at the copied parameters
        trial_model, trial_optimizer, trial_criterion = copy.deepcopy((model, optimizer, criterion))
        trial_model.train()
        trial_criterion.to(device)  # a class-weighted loss holds a weight tensor
        for step, (inputs, targets, *_masks) in enumerate(itertools.islice(cycle(batches), steps)):
            lr = start_lr * growth ** step
            for group in trial_optimizer.param_groups:
                group['lr'] = lr
            trial_optimizer.zero_grad(set_to_none=True)
            loss = trial_criterion(trial_model(prepare(inputs)).float(), targets.to(device))
            value = loss.item()
            if not math.isfinite(value):
                diverged = True
                break
            loss.backward()
            trial_optimizer.step()
            lrs.append(lr)
            losses.append(value)
            smoothed = smooth(losses)
            if step > 2 and smoothed[-1] > divergence * min(smoothed):
                diverged = True
                break
        del trial_model, trial_optimizer, trial_criterion
    if len(losses) < 2:
        raise ValueError(f'the range test diverged at its first steps (lr {start_lr:g}); '
                         'lower its start learning rate')
    smoothed = smooth(losses)
    return RangeTest(lrs, losses, smoothed, find_edge(lrs, losses, smoothed), diverged)


def plot_range_test(result: RangeTest, title: str) -> object:
    """Loss against learning rate (log axis): each step's batch loss, the smoothed loss, the
    suggestion marked; in a colour-blind-safe palette."""
    import matplotlib.pyplot as plt

    with plt.style.context('tableau-colorblind10'):
        figure, ax = plt.subplots(figsize=(7, 4.2))
        ax.plot(result.lrs, result.losses, '.', alpha=0.35, label='batch loss')
        ax.plot(result.lrs, result.smoothed, '-', linewidth=2, label='smoothed loss')
        for lr, style, marker, text in (
                (result.edge, ':', 's', f'edge {result.edge:.2g}'),
                (result.suggestion, '--', 'o',
                 f'suggested lr {result.suggestion:.2g} (edge / {EDGE_DIVISOR:g})')):
            ax.axvline(lr, color='0.25', linestyle=style, linewidth=1.2)
            ax.plot([lr], [result.smoothed[result.index_of(lr)]], marker, markersize=10,
                    markerfacecolor='none', markeredgewidth=2.5, label=text)
        ax.set_xscale('log')
        low, high = min(result.smoothed), max(result.smoothed[:result.index_of(result.edge) + 1])
        margin = 0.15 * (high - low) or 0.1
        ax.set_ylim(low - margin, high + 3 * margin)  # the exploding tail would flatten the rest
        ax.set_xlabel('learning rate (log scale)')
        ax.set_ylabel('training loss (cross-entropy)')
        ax.set_title(title, fontsize=10)
        ax.grid(True, which='major', alpha=0.3)
        ax.legend(loc='best', framealpha=0.9)
    return figure


def describe(result: RangeTest) -> str:
    """One line: the range covered, where the loss was lowest, the suggestion."""
    bottom = int(np.argmin(result.smoothed))
    end = 'stopped early: the loss diverged' if result.diverged else 'ran to the end of the range'
    return (f'LR range test: {len(result.lrs)} steps, lr {result.lrs[0]:.2g} to {result.lrs[-1]:.2g} '
            f'({end}); smoothed loss {result.smoothed[0]:.3f} at the start, lowest '
            f'{min(result.smoothed):.3f} at lr {result.lrs[bottom]:.2g}; edge {result.edge:.2g}, '
            f'suggested lr {result.suggestion:.2g}')


def find_lr(model: nn.Module, optimizer: torch.optim.Optimizer, dataset: Dataset, criterion: nn.Module,
            device: torch.device, *, batch_size: int, workers: int, seed: int, steps: int,
            memory_format: torch.memory_format, figure: Path, title: str) -> RangeTest:
    """The range test on shuffled training batches (as Trainer makes them), its figure saved to
    `figure` and its one-line summary printed."""
    from fmd.core.analysis_cli import save_figure
    from fmd.core.batches import collate_images, prepare_batch

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        drop_last=len(dataset) > batch_size, collate_fn=collate_images,
                        generator=torch.Generator().manual_seed(seed))
    result = lr_range_test(model, optimizer, loader, criterion, device, steps=steps,
                           prepare=lambda inputs: prepare_batch(inputs, device, memory_format))
    print(describe(result), flush=True)
    save_figure(plot_range_test(result, title), figure)
    return result
