"""Score a model over a dataset: the one inference loop that training's evaluation, every analysis,
evaluation and detection use."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from fmd.core.batches import collate_images, input_memory_format, on_device


def batch_logits(model: nn.Module, batches: Iterable, device: torch.device, *,
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(logits, labels) of each (images, labels) batch, both on `device`: the model in eval mode under
    inference_mode (and `autocast`), its batches prepared as the model wants them (batches.on_device:
    its memory format, uint8 images normalised on the device). Its train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for images, labels, *_ in on_device(batches, device, input_memory_format(model)):
                with autocast():
                    logits = model(images)
                yield logits, labels
    finally:
        model.train(was_training)


def predict(model: nn.Module, dataset: Dataset, *, device: torch.device, batch_size: int = 32,
            workers: int = 0, show_progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (Nx2 float32, CPU) and labels (N int64) of every sample, in dataset order (batch_logits)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == 'cuda', collate_fn=collate_images)
    batches = tqdm(loader, desc='scoring', leave=False, disable=None if show_progress else True)
    logits, labels = [], []
    for scores, targets in batch_logits(model, batches, device):
        logits.append(scores.float().cpu())
        labels.append(torch.as_tensor(targets.cpu(), dtype=torch.long))
    if not logits:
        return torch.empty(0, 2), torch.empty(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(labels)


def fake_probability(logits: torch.Tensor) -> torch.Tensor:
    """Softmax probability of class 1 (fake) for Nx2 logits, computed in float64."""
    return torch.softmax(logits.double(), dim=1)[:, 1]
