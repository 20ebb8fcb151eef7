"""Vanilla-gradient saliency maps: 12 test images beside their maps, and mean maps per class.

    python saliency_map.py -m SimpleNet -d fakes_dataset
        --checkpoint checkpoints/fakes_dataset_SimpleNet_Adam.pt
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fmd.core.analysis_cli import analysis_parser


def build_parser() -> argparse.ArgumentParser:
    """-m/--checkpoint/-d, --batch-size and the common flags, from light modules."""
    return analysis_parser(__doc__, batch_size=True)


if __name__ == '__main__':
    build_parser().parse_args()  # --help and usage errors answer here, before the imports below load torch

import math

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.utils.data import Dataset

from faces_dataset import CLASS_NAMES, FacesDataset
from fmd.analysis.inputs import start_analysis
from fmd.analysis.saliency import (  # noqa: F401 (the assignment's functions, importable from here)
    compute_gradient_saliency_maps,
    compute_mean_saliency_maps,
    min_max_normalise,
)
from fmd.core.analysis_cli import save_figure, use_agg_backend
from fmd.core.atomic_io import atomic_write_json
from fmd.core.cli import parse_api_args, run_cli
from fmd.core.devices import model_device
from fmd.core.runs import figure_path, initialisation_note, saliency_stats_path
from fmd.data.presets import unnormalize

PAIRS_ROWS = 4  # 12 pairs, half real and half fake: fewer, larger panels
PAIRS_PER_ROW = 3
SALIENCY_CHUNK = 12  # images per backward pass: bounds memory for the larger models


def choose_pair_indices(dataset: Dataset, count: int, generator: torch.Generator) -> list[int]:
    """Up to `count` random test indices, half real and half fake where the set allows."""
    if isinstance(dataset, FacesDataset):
        n_real = len(dataset.real_image_names)
        by_label = {0: list(range(n_real)), 1: list(range(n_real, len(dataset)))}
    else:
        by_label = {}
        for index in range(len(dataset)):
            by_label.setdefault(int(dataset[index][1]), []).append(index)
    shuffled = {label: [indices[i] for i in torch.randperm(len(indices), generator=generator)]
                for label, indices in sorted(by_label.items())}
    chosen: list[int] = []
    while len(chosen) < min(count, len(dataset)):
        for indices in shuffled.values():
            if indices and len(chosen) < count:
                chosen.append(indices.pop())
    return sorted(chosen, key=lambda index: (dataset_label(dataset, index), index))


def dataset_label(dataset: Dataset, index: int) -> int:
    """The label of sample `index` (FacesDataset: from the index alone, no image read)."""
    if isinstance(dataset, FacesDataset):
        return int(index >= len(dataset.real_image_names))
    return int(dataset[index][1])


def fake_probabilities(images: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """softmax P(fake) of each image, in eval mode without gradients (mode restored)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = torch.cat([model(images[start:start + SALIENCY_CHUNK].to(model_device(model)))
                                for start in range(0, len(images), SALIENCY_CHUNK)])
    finally:
        model.train(was_training)
    return torch.softmax(logits.float(), dim=1)[:, 1].cpu()


def plot_saliency_pairs(images: torch.Tensor, maps: torch.Tensor, labels: torch.Tensor,
                        title: str, p_fake: torch.Tensor | None = None) -> plt.Figure:
    """(image, saliency map) pairs, PAIRS_PER_ROW pairs a row, all maps on one colour scale.

    Each image is titled with its true class and, when given, the model's P(fake) (`p_fake`); the shared
    colour bar spans 0 to the 99.5th percentile of every map in the figure, so brighter means a
    larger gradient in every panel.
    """
    count = min(len(images), PAIRS_ROWS * PAIRS_PER_ROW)
    rows = max(1, math.ceil(count / PAIRS_PER_ROW))
    figure, axes = plt.subplots(rows, 2 * PAIRS_PER_ROW, figsize=(2 * PAIRS_PER_ROW * 1.9, rows * 2.15),
                                squeeze=False, layout='constrained')
    pictures = unnormalize(images.detach().cpu()).permute(0, 2, 3, 1).numpy()
    shown_maps = maps.detach().cpu().float()[:count]
    top = float(torch.quantile(shown_maps.flatten()[:2_000_000], 0.995)) if count else 1.0
    top = top if top > 0 else 1.0
    for ax in axes.flat:
        ax.axis('off')
    shown = None
    for index in range(count):
        row, column = divmod(index, PAIRS_PER_ROW)
        image_ax, map_ax = axes[row, 2 * column], axes[row, 2 * column + 1]
        image_ax.imshow(pictures[index])
        name = CLASS_NAMES[int(labels[index])]
        if p_fake is not None:
            name += f', p(fake)={float(p_fake[index]):.2f}'
        image_ax.set_title(name, fontsize=10)
        shown = map_ax.imshow(shown_maps[index].numpy(), cmap='hot', vmin=0.0, vmax=top)
        map_ax.set_title('saliency', fontsize=10)
    if shown is not None:
        bar = figure.colorbar(shown, ax=axes, fraction=0.02, pad=0.01, extend='max')
        bar.set_label('|d score(true class) / d pixel|, shared scale', fontsize=9)
    figure.suptitle(title, fontsize=12)
    return figure


def plot_mean_maps(mean_maps: dict[int, torch.Tensor], title: str) -> plt.Figure:
    """The mean real and mean fake saliency maps side by side on one colour scale."""
    figure, axes = plt.subplots(1, len(mean_maps), figsize=(5 * len(mean_maps) + 1, 5), squeeze=False,
                                layout='constrained')
    top = max(float(mean_map.max()) for mean_map in mean_maps.values()) or 1.0
    shown = None
    for ax, (label, mean_map) in zip(axes[0], mean_maps.items()):
        shown = ax.imshow(mean_map.numpy(), cmap='hot', vmin=0.0, vmax=top)
        ax.set_title(f'mean saliency map, {CLASS_NAMES[label]} test images')
        ax.axis('off')
    if shown is not None:
        figure.colorbar(shown, ax=axes, fraction=0.046).set_label('mean of min-max normalised maps')
    figure.suptitle(title)
    return figure


LATTICE_PERIODS = (2, 4, 8, 16, 32)  # pixels: the strides a CNN's pooling can imprint on a map


def saliency_statistics(mean_maps: dict[int, torch.Tensor]) -> dict:
    """Where each mean map puts its mass: numbers the report quotes instead of describing pictures.

    centre_share: fraction of the map's sum inside the central half-width, half-height box (a flat
    map gives 0.25). peak_to_mean: maximum over mean. lattice: for each period p dividing the map
    size, the fraction of the map's variance at spatial frequencies that are multiples of size/p,
    i.e. a pattern repeating every p pixels (a map without one gives about (p/size)^2 per axis pair).
    """
    statistics = {}
    for label, mean_map in mean_maps.items():
        values = mean_map.double()
        height, width = values.shape
        total = float(values.sum()) or 1.0
        centre = values[height // 4: height - height // 4, width // 4: width - width // 4]
        power = torch.fft.fft2(values - values.mean()).abs() ** 2
        variance = float(power.sum()) or 1.0
        lattice = {}
        for period in LATTICE_PERIODS:
            if height % period or width % period:
                continue
            on_lattice = power[::height // period, ::width // period]
            lattice[str(period)] = {'share': float(on_lattice.sum()) / variance,
                                    'flat_map_share': (period * period - 1) / (height * width - 1)}
        statistics[CLASS_NAMES[label]] = {
            'centre_share': float(centre.sum()) / total,
            'centre_area_share': centre.numel() / values.numel(),
            'peak_to_mean': float(values.max()) / (float(values.mean()) or 1.0),
            'lattice': lattice}
    return statistics


def main(argv: Sequence[str] | None = None) -> list[str]:
    """Draw 12 random test images (half real, half fake) with their maps and the per-class mean
    maps; write where the mean maps put their mass to out/; returns the figure paths."""
    args, model_name, _, model, test_dataset = start_analysis(parse_api_args(build_parser(), argv))
    chosen = choose_pair_indices(test_dataset, PAIRS_ROWS * PAIRS_PER_ROW,
                                 torch.Generator().manual_seed(args.seed))
    samples = [test_dataset[index] for index in chosen]
    images = torch.stack([image for image, _ in samples])
    labels = torch.tensor([label for _, label in samples])
    maps = torch.cat([compute_gradient_saliency_maps(images[start:start + SALIENCY_CHUNK],
                                                     labels[start:start + SALIENCY_CHUNK], model)
                      for start in range(0, len(images), SALIENCY_CHUNK)])
    note = initialisation_note(args.dataset, model_name)
    figure = plot_saliency_pairs(images, maps, labels,
                                 f'{model_name}{note} on {args.dataset}: test images and saliency maps',
                                 fake_probabilities(images, model))
    pairs_path = save_figure(figure, figure_path(args.dataset, model_name,
                                                 'saliency_maps_and_images_pairs'), dpi=110)

    mean_maps = compute_mean_saliency_maps(test_dataset, model, batch_size=args.batch_size,
                                           num_workers=args.workers, show_progress=not args.no_progress)
    figure = plot_mean_maps(mean_maps, f'{model_name}{note} on {args.dataset}: mean of min-max '
                                       'normalised saliency maps')
    mean_path = save_figure(figure, figure_path(args.dataset, model_name, 'mean_saliency_maps'),
                            dpi=110)
    atomic_write_json({'model': model_name, 'dataset': args.dataset,
                       **saliency_statistics(mean_maps)}, saliency_stats_path(args.dataset, model_name))
    return [str(pairs_path), str(mean_path)]


if __name__ == '__main__':
    use_agg_backend()
    run_cli(main, sys.argv[1:])
