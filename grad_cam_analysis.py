"""Grad-CAM for one real and one fake test image (pytorch-grad-cam) on the model's Grad-CAM layer.

The map is fmd.analysis.grad_cam's (fmd.detect --cam draws the same) on registry.grad_cam_layer: `conv3`
of SimpleNet and XceptionBased, as the assignment asks; BonusNet's last spatial convolution (its last
block's pointwise).

    python grad_cam_analysis.py -m SimpleNet -d fakes_dataset
        --checkpoint checkpoints/fakes_dataset_SimpleNet_Adam.pt
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fmd.core.analysis_cli import analysis_parser


def build_parser() -> argparse.ArgumentParser:
    """-m/--checkpoint/-d and the common flags, from light modules."""
    return analysis_parser(__doc__)


if __name__ == '__main__':
    build_parser().parse_args()  # --help and usage errors answer here, before the imports below load torch

import matplotlib.pyplot as plt
import numpy as np
import torch
from pytorch_grad_cam.utils.image import show_cam_on_image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from faces_dataset import CLASS_NAMES
from fmd.analysis.grad_cam import grad_cam_map
from fmd.analysis.inputs import start_analysis
from fmd.core.analysis_cli import save_figure, use_agg_backend
from fmd.core.cli import parse_api_args, run_cli
from fmd.core.registry import grad_cam_layer
from fmd.core.runs import figure_path, initialisation_note
from fmd.data.presets import unnormalize


class MissingClassError(ValueError):
    """The test set lacks a class, so no image of that class can be drawn."""


def grad_cam_of_image(image: torch.Tensor, model: nn.Module) -> tuple[np.ndarray, int, float]:
    """grad_cam_map drawn over the image: (HxWx3 uint8 overlay on the un-normalised image,
    predicted class, its softmax probability)."""
    grayscale_cam, predicted, probability = grad_cam_map(image, model)
    rgb_image = unnormalize(image.detach().cpu()).permute(1, 2, 0).numpy().astype(np.float32)
    visualization = show_cam_on_image(rgb_image, grayscale_cam, use_rgb=True)
    return visualization, predicted, probability


def get_grad_cam_visualization(test_dataset: Dataset, model: nn.Module,
                               ) -> tuple[np.ndarray, torch.Tensor]:
    """Draw one random test sample; return (Grad-CAM overlay HxWx3 uint8, true label of shape [1])."""
    loader = DataLoader(test_dataset, batch_size=1, shuffle=True)
    image, true_label = next(iter(loader))
    visualization, _, _ = grad_cam_of_image(image[0], model)
    return visualization, torch.as_tensor(true_label).view(1)


def draw_one_per_class(test_dataset: Dataset, seed: int = 0,
                       show_progress: bool = True) -> dict[int, torch.Tensor]:
    """The first image of each class in one shuffled pass over the set (so at most len draws)."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(test_dataset, batch_size=1, shuffle=True, generator=generator)
    found: dict[int, torch.Tensor] = {}
    for image, label in tqdm(loader, desc='drawing one image per class', leave=False,
                             disable=None if show_progress else True):
        found.setdefault(int(label), image[0])
        if len(found) == len(CLASS_NAMES):
            return found
    missing = [CLASS_NAMES[label] for label in range(len(CLASS_NAMES)) if label not in found]
    where = getattr(test_dataset, 'root_path', 'the test set')
    raise MissingClassError(f'{where} ({len(test_dataset)} images) has no '
                            f'{" or ".join(missing)} image; Grad-CAM needs one of each class.')


def plot_grad_cam(visualization: np.ndarray, true_label: int, predicted: int, probability: float,
                  title_prefix: str) -> plt.Figure:
    """The overlay titled with the true label and the predicted class and its probability."""
    figure, ax = plt.subplots(figsize=(5, 5.4))
    ax.imshow(visualization)
    ax.axis('off')
    ax.set_title(f'{title_prefix}\ntrue label: {CLASS_NAMES[true_label]} | predicted: '
                 f'{CLASS_NAMES[predicted]} (p = {probability:.3f})', fontsize=10)
    return figure


def main(argv: Sequence[str] | None = None) -> list[str]:
    """Save a Grad-CAM figure for one real and one fake test image; returns the paths."""
    args, model_name, _, model, test_dataset = start_analysis(
        parse_api_args(build_parser(), argv), compile_allowed=False)
    images = draw_one_per_class(test_dataset, seed=args.seed, show_progress=not args.no_progress)

    layer_name, _ = grad_cam_layer(model)
    written = []
    for label, image in sorted(images.items()):
        visualization, predicted, probability = grad_cam_of_image(image, model)
        figure = plot_grad_cam(visualization, label, predicted, probability,
                               f'Grad-CAM of {model_name}.{layer_name} on {args.dataset}'
                               f'{initialisation_note(args.dataset, model_name)}')
        kind = f'{CLASS_NAMES[label].capitalize()}_Image_grad_cam'
        written.append(str(save_figure(figure, figure_path(args.dataset, model_name, kind), dpi=110)))
        print(f'{CLASS_NAMES[label]} image: predicted {CLASS_NAMES[predicted]} (p = {probability:.3f})')
    return written


if __name__ == '__main__':
    use_agg_backend()
    run_cli(main, sys.argv[1:])
