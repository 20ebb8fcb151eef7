"""One face under 8 draws of a training augmentation preset: <out>/augmentations_<preset>.png.

`python -m fmd.data.plot_augmentations IMAGE [--augment forensic] [--seed 0] [--out docs]`
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fmd.core.cli import add_out_dir_arg, add_seed_arg, check_out_dir, run_cli, use_agg_backend
from fmd.core.options import AUGMENT_PRESETS

DRAWS = 8
DEFAULT_OUT = 'docs'


def figure_name(augment: str) -> str:
    """The file written inside --out: augmentations_<preset>.png."""
    return f'augmentations_{augment}.png'


def build_parser() -> argparse.ArgumentParser:
    """IMAGE, --augment, --seed, --out DIR (light modules only: --help answers before torch loads)."""
    parser = argparse.ArgumentParser(prog='python -m fmd.data.plot_augmentations', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='a face image (any size; resized to 256x256 first)')
    parser.add_argument('--augment', default='forensic', choices=AUGMENT_PRESETS,
                        help='augmentation preset (default: %(default)s)')
    add_seed_arg(parser, 'seed of the first draw')
    add_out_dir_arg(parser, DEFAULT_OUT, figure_name('<preset>'))
    return parser


def main(argv: list[str] | None = None) -> Path:
    """Draw the original and DRAWS augmented copies in a 3x3 grid."""
    args = build_parser().parse_args(argv)
    check_out_dir(args.out, figure_name(args.augment))
    use_agg_backend()
    import matplotlib.pyplot as plt
    import torch

    from faces_dataset import read_rgb
    from fmd.core.analysis_cli import save_figure
    from fmd.data.presets import IMAGE_SIZE, train_transform, unnormalize

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
    return save_figure(figure, Path(args.out) / figure_name(args.augment), dpi=80)


if __name__ == '__main__':
    run_cli(main)
