"""One face under 8 draws of a training augmentation preset: docs/augmentations_<preset>.png.

`python -m fmd.data.plot_augmentations IMAGE [--augment forensic] [--seed 0]
[--out docs/augmentations_forensic.png]`
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from faces_dataset import read_rgb
from fmd.core.analysis_cli import save_figure, use_agg_backend
from fmd.core.cli import run_cli
from fmd.data.presets import AUGMENT_PRESETS, IMAGE_SIZE, train_transform, unnormalize

DRAWS = 8


def main(argv: list[str] | None = None) -> Path:
    """Draw the original and DRAWS augmented copies in a 3x3 grid."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='a face image (any size; resized to 256x256 first)')
    parser.add_argument('--augment', default='forensic', choices=AUGMENT_PRESETS)
    parser.add_argument('--seed', type=int, default=0, help='seed of the first draw (default: 0)')
    parser.add_argument('--out', default=None, help='output PNG (default: docs/augmentations_<preset>.png)')
    args = parser.parse_args(argv)
    image = read_rgb(Path(args.image), IMAGE_SIZE)
    transform = train_transform(args.augment)
    figure, axes = plt.subplots(3, 3, figsize=(9, 9.4))
    axes[0, 0].imshow(image)
    axes[0, 0].set_title('original')
    for draw, ax in enumerate(axes.flat[1:], start=1):
        torch.manual_seed(args.seed + draw)
        ax.imshow(unnormalize(transform(image)).permute(1, 2, 0).numpy())
        ax.set_title(f'draw {draw} (seed {args.seed + draw})')
    for ax in axes.flat:
        ax.axis('off')
    figure.suptitle(f'--augment {args.augment}: {DRAWS} draws of the training augmentation on one face')
    figure.tight_layout()
    return save_figure(figure, args.out or f'docs/augmentations_{args.augment}.png', dpi=80)


if __name__ == '__main__':
    use_agg_backend()
    run_cli(main)
