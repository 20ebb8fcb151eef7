"""Vanilla-gradient saliency maps (Simonyan et al. 2014): |d score / d pixel| per image, and their
per-class means; saliency_map.py draws them, fmd.explain compares them with the other explainers."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from fmd.core.devices import model_device


def compute_gradient_saliency_maps(samples: torch.Tensor, true_labels: torch.Tensor,
                                   model: nn.Module) -> torch.Tensor:
    """BxHxW map: |d score[true class] / d pixel|, maximum over the colour channels.

    Gradients are taken w.r.t. a detached copy of `samples` only (autograd.grad), so the caller's
    tensor, the parameters' .grad and the model's train/eval mode all stay as they were.
    """
    run_device = model_device(model)
    inputs = samples.detach().clone().to(run_device).requires_grad_(True)
    with torch.enable_grad():
        scores = model(inputs)
        labels = torch.as_tensor(true_labels, device=scores.device).long().view(-1, 1)
        true_class_scores = scores.gather(1, labels).sum()
        (input_gradient,) = torch.autograd.grad(true_class_scores, inputs)
    return input_gradient.abs().amax(dim=1).to(samples.device)


def min_max_normalise(maps: torch.Tensor) -> torch.Tensor:
    """Scale each HxW map of a BxHxW batch to [0, 1]; a constant map becomes all zeros."""
    flat = maps.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1)
    span = flat.max(dim=1).values.view(-1, 1, 1) - low
    return (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny)


def compute_mean_saliency_maps(dataset: Dataset, model: nn.Module, batch_size: int = 32,
                               num_workers: int = 0, show_progress: bool = False,
                               ) -> dict[int, torch.Tensor]:
    """Mean of the per-image min-max normalised saliency maps over each class: {label: HxW}."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    sums: dict[int, torch.Tensor] = {}
    counts: dict[int, int] = {}
    for images, labels in tqdm(loader, desc='saliency', disable=None if show_progress else True):
        maps = min_max_normalise(compute_gradient_saliency_maps(images, labels, model).double())
        for label in labels.unique().tolist():
            selected = maps[labels == label]
            sums[label] = sums.get(label, 0) + selected.sum(dim=0)
            counts[label] = counts.get(label, 0) + len(selected)
    return {label: (sums[label] / counts[label]).float() for label in sorted(sums)}
