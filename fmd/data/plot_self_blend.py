"""Real faces beside their self-blend masks and fakes: <out>/self_blend_examples.png.

`python -m fmd.data.plot_self_blend DATASET [--split train] [--rows 4] [--seed 0] [--out docs]` draws
the first faces of DATASET/<split>/real/ that have landmarks (DATASET/landmarks.npz): the pair's
real (the face, or the face after the source-target change) with the 68 points, the blend mask, the
self-blended fake and the difference between the two.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fmd.data.landmarks import LANDMARKS_FILE, read_landmarks
from fmd.data.self_blend import self_blend

DEFAULT_OUT = 'docs'  # --out: a folder
FIGURE_NAME = 'self_blend_examples.png'  # the file written inside it


def draw(dataset: Path, split: str, rows: int, seed: int, out: str) -> Path:
    """Draw `rows` examples and save the figure; returns its path."""
    from fmd.core.analysis_cli import save_figure, use_agg_backend
    from fmd.data.face_crop import read_image_rgb

    use_agg_backend()
    import matplotlib.pyplot as plt

    landmarks = read_landmarks(dataset / LANDMARKS_FILE)
    chosen = sorted(p for p in landmarks.points if p.startswith(f'{split}/real/'))[:rows]
    if not chosen:
        raise ValueError(f'{dataset / LANDMARKS_FILE} has no {split}/real/ face with landmarks')
    figure, axes = plt.subplots(len(chosen), 4, figsize=(10, 2.6 * len(chosen)), squeeze=False)
    for row, rel in enumerate(chosen):
        points = landmarks.points[rel]
        pair = self_blend(read_image_rgb(dataset / rel), points, np.random.default_rng([seed, row]))
        face, mask, fake, parts = pair.real, pair.mask, pair.fake, pair.parts
        difference = np.abs(fake.astype(np.int16) - face).sum(axis=2)
        axes[row, 0].imshow(face)
        axes[row, 0].scatter(points[:, 0], points[:, 1], s=4, c='#ffb000')
        shown = axes[row, 1].imshow(mask, cmap='cividis', vmin=0, vmax=1)
        figure.colorbar(shown, ax=axes[row, 1], fraction=0.046, label='blend weight')
        axes[row, 2].imshow(fake)
        diff = axes[row, 3].imshow(difference, cmap='viridis')
        figure.colorbar(diff, ax=axes[row, 3], fraction=0.046, label='|fake - real| (sum of RGB)')
        axes[row, 0].set_ylabel(Path(rel).name, fontsize=8)
        axes[row, 2].set_xlabel('parts: ' + ', '.join(parts), fontsize=8)
    for column, title in enumerate(('real (of the pair) + 68 landmarks', 'mask', 'self-blended fake',
                                    'difference')):
        axes[0, column].set_title(title, fontsize=10)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f'Self-blended training fakes made from real faces only ({dataset.name}, {split})')
    figure.tight_layout()
    return save_figure(figure, out, dpi=80)


def build_parser() -> argparse.ArgumentParser:
    """DATASET, --split, --rows, --seed, --out DIR (light modules only: --help answers at once)."""
    from fmd.core.cli import add_out_dir_arg, add_seed_arg, positive_int

    parser = argparse.ArgumentParser(prog='python -m fmd.data.plot_self_blend',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('dataset', metavar='DATASET', help='dataset folder with landmarks.npz')
    parser.add_argument('--split', default='train', choices=('train', 'val', 'test'),
                        help='split whose real faces are drawn (default: %(default)s)')
    parser.add_argument('--rows', type=positive_int, default=4, help='faces to draw (default: %(default)s)')
    add_seed_arg(parser, 'seed of the blends')
    add_out_dir_arg(parser, DEFAULT_OUT, FIGURE_NAME)
    return parser


def main(argv: list[str] | None = None) -> Path:
    """Parse the command line and draw."""
    from fmd.core.cli import check_out_dir

    args = build_parser().parse_args(argv)
    check_out_dir(args.out, FIGURE_NAME)
    return draw(Path(args.dataset), args.split, args.rows, args.seed, str(Path(args.out) / FIGURE_NAME))


if __name__ == '__main__':
    from fmd.core.cli import run_cli

    run_cli(main)
