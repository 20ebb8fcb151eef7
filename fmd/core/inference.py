"""Score a model over a dataset: the one inference loop every analysis, evaluation and detection uses."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from fmd.training.performance import collate_images, input_memory_format, prepare_batch


def predict(model: nn.Module, dataset: Dataset, *, device: torch.device, batch_size: int = 32,
            workers: int = 0, show_progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (Nx2 float32, CPU) and labels (N int64) of every sample, in dataset order.

    The model runs in eval mode under inference_mode on `device`; its train/eval mode is restored.
    Batches are prepared as the Trainer prepares them (performance.prepare_batch): the model's
    memory format, and uint8 image batches normalised on the device.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == 'cuda', collate_fn=collate_images)
    memory_format = input_memory_format(model)
    was_training = model.training
    model.eval()
    logits, labels = [], []
    try:
        with torch.inference_mode():
            for images, targets in tqdm(loader, desc='scoring', leave=False,
                                        disable=None if show_progress else True):
                logits.append(model(prepare_batch(images, device, memory_format)).float().cpu())
                labels.append(torch.as_tensor(targets, dtype=torch.long))
    finally:
        model.train(was_training)
    if not logits:
        return torch.empty(0, 2), torch.empty(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(labels)


def fake_probability(logits: torch.Tensor) -> torch.Tensor:
    """Softmax probability of class 1 (fake) for Nx2 logits, computed in float64."""
    return torch.softmax(logits.double(), dim=1)[:, 1]
