"""Vanilla-gradient saliency maps: 36 test images beside their maps, and mean maps per class.

`python saliency_map.py -m SimpleNet -cpp checkpoints/fakes_dataset_SimpleNet_Adam.pt -d fakes_dataset`
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from analysis_cli import save_figure, start_analysis, use_agg_backend
from cli import run_cli
from devices import model_device
from faces_dataset import CLASS_NAMES
from presets import unnormalize
from runs import figure_path

PAIRS_ROWS = 6
PAIRS_PER_ROW = 6
SALIENCY_CHUNK = 12  # images per backward pass: bounds memory for the larger models


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


def plot_saliency_pairs(images: torch.Tensor, maps: torch.Tensor, labels: torch.Tensor,
                        title: str) -> plt.Figure:
    """Up to 6 rows of (un-normalised image, saliency map) pairs, 6 pairs per row."""
    rows = min(PAIRS_ROWS, math.ceil(len(images) / PAIRS_PER_ROW))
    figure, axes = plt.subplots(rows, 2 * PAIRS_PER_ROW, figsize=(2 * PAIRS_PER_ROW * 1.4, rows * 1.5),
                                squeeze=False)
    pictures = unnormalize(images.detach().cpu()).permute(0, 2, 3, 1).numpy()
    for ax in axes.flat:
        ax.axis('off')
    for index, (picture, saliency, label) in enumerate(zip(pictures, maps.cpu(), labels.tolist())):
        row, column = divmod(index, PAIRS_PER_ROW)
        if row >= rows:
            break
        image_ax, map_ax = axes[row, 2 * column], axes[row, 2 * column + 1]
        image_ax.imshow(picture)
        image_ax.set_title(CLASS_NAMES[label], fontsize=7)
        map_ax.imshow(saliency.numpy(), cmap='hot')
        map_ax.set_title('saliency', fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_mean_maps(mean_maps: dict[int, torch.Tensor], title: str) -> plt.Figure:
    """The mean real and mean fake saliency maps side by side, each titled."""
    figure, axes = plt.subplots(1, len(mean_maps), figsize=(5 * len(mean_maps), 5), squeeze=False)
    for ax, (label, mean_map) in zip(axes[0], mean_maps.items()):
        shown = ax.imshow(mean_map.numpy(), cmap='hot')
        ax.set_title(f'mean saliency map, {CLASS_NAMES[label]} test images')
        ax.axis('off')
        figure.colorbar(shown, ax=ax, fraction=0.046)
    figure.suptitle(title)
    return figure


def main(argv: list[str] | None = None) -> list[str]:
    """Draw 36 random test images with their maps and the per-class mean maps; returns the paths."""
    args, model_name, _, model, test_dataset = start_analysis(__doc__, argv)

    n_pairs = min(PAIRS_ROWS * PAIRS_PER_ROW, len(test_dataset))
    chosen = torch.randperm(len(test_dataset))[:n_pairs].tolist()
    samples = [test_dataset[index] for index in chosen]
    images = torch.stack([image for image, _ in samples])
    labels = torch.tensor([label for _, label in samples])
    maps = torch.cat([compute_gradient_saliency_maps(images[start:start + SALIENCY_CHUNK],
                                                     labels[start:start + SALIENCY_CHUNK], model)
                      for start in range(0, len(images), SALIENCY_CHUNK)])
    figure = plot_saliency_pairs(images, maps, labels,
                                 f'{model_name} on {args.dataset}: test images and saliency maps')
    pairs_path = save_figure(figure, figure_path(args.dataset, model_name,
                                                 'saliency_maps_and_images_pairs'), dpi=110)

    mean_maps = compute_mean_saliency_maps(test_dataset, model, num_workers=args.workers,
                                           show_progress=True)
    figure = plot_mean_maps(mean_maps, f'{model_name} on {args.dataset}: mean of min-max '
                                       'normalised saliency maps')
    mean_path = save_figure(figure, figure_path(args.dataset, model_name, 'mean_saliency_maps'),
                            dpi=110)
    return [str(pairs_path), str(mean_path)]


if __name__ == '__main__':
    use_agg_backend()
    run_cli(main)
