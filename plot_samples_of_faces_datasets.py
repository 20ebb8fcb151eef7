"""Show a real and a fake training image from each dataset: figures/datasets_samples.png."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fmd.core.cli import add_common_args


def build_parser() -> argparse.ArgumentParser:
    """--data-root, --seed and --workers (light modules only: --help answers before torch loads)."""
    return add_common_args(argparse.ArgumentParser(description=__doc__))


if __name__ == '__main__':
    build_parser().parse_args()  # --help and usage errors answer here, before the imports below load torch

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from faces_dataset import CLASS_NAMES, FacesDataset
from fmd.core.analysis_cli import save_figure, use_agg_backend
from fmd.core.cli import parse_api_args, run_cli
from fmd.core.devices import seed_everything
from fmd.core.runs import SAMPLES_FIGURE
from fmd.data.data_root import DATASET_NAMES, resolve_data_root
from fmd.data.presets import IMAGE_SIZE, TRANSFORM_TEST, unnormalize
from utils import load_dataset


def pick_real_and_fake(dataset: FacesDataset, generator: torch.Generator) -> dict[int, int]:
    """A random index of each label: reals are 0..n_real-1, fakes the rest."""
    n_real = len(dataset.real_image_names)
    n_fake = len(dataset.fake_image_names)
    if n_real == 0 or n_fake == 0:
        raise ValueError(f'{dataset.root_path} needs at least one real and one fake image.')
    return {0: int(torch.randint(n_real, (1,), generator=generator)),
            1: n_real + int(torch.randint(n_fake, (1,), generator=generator))}


def to_display(image: torch.Tensor) -> np.ndarray:
    """Normalised CxHxW tensor -> HxWxC float array in true colours."""
    return unnormalize(image).permute(1, 2, 0).numpy()


def main(argv: Sequence[str] | None = None) -> Path:
    """Draw the 2x2 grid (rows: datasets, columns: real, fake) and save it."""
    args = parse_api_args(build_parser(), argv)
    seed_everything(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    root = resolve_data_root(args.data_root)
    datasets = {name: load_dataset(name, 'train', root) for name in DATASET_NAMES}

    figure, axes = plt.subplots(len(datasets), 2, figsize=(7, 7))
    for row, (name, dataset) in enumerate(datasets.items()):
        # The samples are shown without the training augmentation (random crop and flip).
        plain = FacesDataset(dataset.root_path, transform=TRANSFORM_TEST, image_size=IMAGE_SIZE)
        for column, index in enumerate(pick_real_and_fake(plain, generator).values()):
            image, label = plain[index]
            axes[row, column].imshow(to_display(image))
            axes[row, column].set_title(f'{name}: {CLASS_NAMES[label]}')
            axes[row, column].axis('off')
    figure.tight_layout()
    return save_figure(figure, SAMPLES_FIGURE, dpi=100)


if __name__ == '__main__':
    use_agg_backend()
    run_cli(main, sys.argv[1:])
