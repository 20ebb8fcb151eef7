"""LIME for one face image: which superpixels make a trained detector call it fake.

`faces-explain face.png --checkpoint checkpoints/fakes_dataset_BonusNet_Adam.pt` reads the image (resized
to 256x256 when it is another size, as FacesDataset does), normalises it like TRANSFORM_TEST, explains
the checkpoint's P(fake) with LIME (fmd.explain.lime_map) and writes DIR/<image stem>_lime.png: the
image, the LIME weights over it and its most fake-looking superpixels. It prints the path and P(fake).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common import OUTPUT_DIR
from fmd.core.cli import (
    EXIT_OK,
    UsageError,
    add_out_dir_arg,
    add_progress_arg,
    add_seed_arg,
    check_out_dir,
    positive_int,
    run_cli,
)

if TYPE_CHECKING:  # numpy, torch and matplotlib load on first use: --help stays quick
    import numpy as np
    import torch
    from matplotlib.axes import Axes

    from fmd.explain.lime_map import LimeExplanation

DEFAULT_OUT = os.path.join(OUTPUT_DIR, 'explain')
FIGURE_SUFFIX = '_lime.png'  # DIR/<image stem>_lime.png
DEFAULT_NUM_SAMPLES = 300    # fmd.explain.lime_map.DEFAULT_NUM_SAMPLES (not imported: it loads torch)
DEFAULT_SEGMENTS = 64        # fmd.explain.lime_map.DEFAULT_SEGMENTS
MIN_NUM_SAMPLES = 10         # fewer perturbations than this cannot fit a weight per superpixel
TOP_SEGMENTS = 5             # superpixels kept in the third panel
LIME_CMAP = 'RdBu_r'         # red: evidence for fake, blue: against


def read_face(path: str | os.PathLike) -> tuple[torch.Tensor, tuple[int, int]]:
    """(normalised 3x256x256 tensor, the file's (width, height)); an unreadable file is one ImageReadError."""
    from PIL import Image

    from faces_dataset import read_rgb
    from fmd.data.presets import IMAGE_SIZE, TRANSFORM_TEST

    original = read_rgb(Path(path))
    image = original if original.size == (IMAGE_SIZE, IMAGE_SIZE) else \
        original.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
    return TRANSFORM_TEST(image), original.size


def rgb_of(image: torch.Tensor) -> np.ndarray:
    """A normalised 3xHxW tensor as an HxWx3 float array in [0, 1], for drawing."""
    from fmd.data.presets import unnormalize

    return unnormalize(image.detach().cpu().float()).permute(1, 2, 0).numpy()


def draw_lime(axis: Axes, rgb: np.ndarray, weight_map: np.ndarray, colorbar: bool = True) -> None:
    """The LIME weights over a grey copy of the face, on a scale symmetric about 0 (red: for the class)."""
    limit = float(abs(weight_map).max()) or 1.0
    axis.imshow(rgb.mean(axis=2), cmap='gray', vmin=0, vmax=1)
    shown = axis.imshow(weight_map, cmap=LIME_CMAP, vmin=-limit, vmax=limit, alpha=0.6)
    if colorbar:
        axis.figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02, label='LIME weight')


def draw_top_segments(axis: Axes, rgb: np.ndarray, explanation: LimeExplanation, count: int) -> list[int]:
    """The `count` most positive superpixels in colour, the rest dimmed, every boundary marked."""
    import numpy as np
    from skimage.segmentation import mark_boundaries

    top = explanation.top_segments(count)
    keep = np.isin(explanation.segments, top)[..., None]
    shown = np.where(keep, rgb, 0.3 * rgb)
    axis.imshow(mark_boundaries(shown, explanation.segments, color=(1, 0.85, 0), mode='thin'))
    return top


def draw_figure(rgb: np.ndarray, explanation: LimeExplanation, title: str) -> object:
    """The three panels of DIR/<stem>_lime.png: the image, the LIME map, the top superpixels."""
    import matplotlib.pyplot as plt

    from faces_dataset import CLASS_NAMES

    figure, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    axes[0].imshow(rgb)
    axes[0].set_title(f'P(fake) = {explanation.probabilities[1]:.3f}', fontsize=10)
    draw_lime(axes[1], rgb, explanation.weight_map)
    axes[1].set_title(f'LIME weights for "{CLASS_NAMES[explanation.target_class]}" '
                      f'({len(explanation.weights)} superpixels)', fontsize=10)
    top = draw_top_segments(axes[2], rgb, explanation, TOP_SEGMENTS)
    axes[2].set_title(f'top {len(top)} superpixels for "{CLASS_NAMES[explanation.target_class]}"',
                      fontsize=10)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def explain_file(image_path: str, checkpoint: str, out: str, *, num_samples: int = DEFAULT_NUM_SAMPLES,
                 seed: int = 0, segments: int = DEFAULT_SEGMENTS, progress: bool = False,
                 ) -> tuple[Path, float]:
    """Explain one image file with a checkpoint; write DIR/<stem>_lime.png. Returns (its path, P(fake))."""
    image, size = read_face(image_path)  # before torch loads the model: a bad image fails at once
    from fmd.core.analysis_cli import save_figure, use_agg_backend
    from fmd.core.devices import pick_device
    from fmd.core.registry import canonical_model_name
    from fmd.data.presets import IMAGE_SIZE
    from fmd.explain.lime_map import explain
    from fmd.training.checkpoints import load_trained_model, read_checkpoint

    if size != (IMAGE_SIZE, IMAGE_SIZE):
        print(f'Note: {image_path} is {size[0]}x{size[1]}; resized to {IMAGE_SIZE}x{IMAGE_SIZE} (bicubic), '
              'as FacesDataset does.')
    model = load_trained_model(checkpoint, pick_device())
    model_name = canonical_model_name(read_checkpoint(checkpoint)['model_name'])
    explanation = explain(image, model, num_samples=num_samples, seed=seed, n_segments=segments,
                          progress=progress)
    use_agg_backend()
    title = (f'{Path(image_path).name}: {model_name} from {Path(checkpoint).name}; LIME with {num_samples} '
             f'samples, seed {seed}, fit R² {explanation.fit_score:.2f}')
    path = save_figure(draw_figure(rgb_of(image), explanation, title),
                       Path(out) / f'{Path(image_path).stem}{FIGURE_SUFFIX}')
    return path, float(explanation.probabilities[1])


# ----------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    """The command line of faces-explain (light modules only: --help answers at once)."""
    parser = argparse.ArgumentParser(prog='faces-explain', description=__doc__.splitlines()[0], epilog=(
        'Exit code 0 done, 1 when the image or the checkpoint cannot be read, 2 for a usage error.'))
    parser.add_argument('image', metavar='IMAGE', help='a face image (a crop, as fmd.prepare writes them)')
    parser.add_argument('--checkpoint', required=True, metavar='PATH',
                        help='a checkpoint train_main.py wrote; the model is built from its model_name')
    add_out_dir_arg(parser, DEFAULT_OUT, f'<image stem>{FIGURE_SUFFIX}')
    parser.add_argument('--num-samples', type=positive_int, default=DEFAULT_NUM_SAMPLES, metavar='N',
                        help=f'perturbed images LIME scores, at least {MIN_NUM_SAMPLES} '
                             '(default: %(default)s)')
    parser.add_argument('--segments', type=positive_int, default=DEFAULT_SEGMENTS, metavar='N',
                        help='SLIC superpixels asked for (default: %(default)s)')
    add_seed_arg(parser, 'seed of the perturbations')
    add_progress_arg(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; a bad value is a one-line usage error (exit 2)."""
    args = build_parser().parse_args(argv)
    check_out_dir(args.out, f'<image stem>{FIGURE_SUFFIX}')
    if args.num_samples < MIN_NUM_SAMPLES:
        raise UsageError(f'--num-samples must be at least {MIN_NUM_SAMPLES}, got {args.num_samples}')
    return args


def main(argv: list[str] | None = None) -> int:
    """Explain the image, write the figure, print its path and P(fake)."""
    args = parse_args(argv)
    _, p_fake = explain_file(args.image, args.checkpoint, args.out, num_samples=args.num_samples,
                             seed=args.seed, segments=args.segments, progress=not args.no_progress)
    print(f'P(fake) = {p_fake:.4f}')
    return EXIT_OK


def entry() -> None:
    """The console script and `python -m fmd.explain`."""
    sys.exit(run_cli(main))


if __name__ == '__main__':
    entry()
