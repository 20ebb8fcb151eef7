"""Four explanations of the same fake faces side by side: <out>/explainers_comparison.png.

`python -m fmd.explain.compare --checkpoint CKPT --data DATASET[:split] [--count 3] [--seed 0] [--out DIR]`
picks `count` fake faces of the split (test by default), preferring those the model calls fake (P(fake)
at least the checkpoint's validation EER threshold, else 0.5), in an order drawn from the seed, and
draws one row per face: the face, its gradient saliency (saliency_map.py), Grad-CAM for class fake
(grad_cam_analysis.py's layer), LIME for class fake (fmd.explain.lime_map) and the checkpoint's
mask head (fmd.models.mask_head; "no mask head" when it has none). Faces named with a ciplab part
code (`<level>_<n>_<4 bits>`, bits: left eye, right eye, nose, mouth) get the replaced parts in
their row title and, where DATASET/landmarks.npz holds the face's points, those parts outlined.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common import FIGURES_DIR
from fmd.core.cli import add_out_dir_arg, add_progress_arg, add_seed_arg, check_out_dir, positive_int, run_cli

if TYPE_CHECKING:
    import numpy as np
    import torch
    from matplotlib.axes import Axes
    from torch import nn

FIGURE_NAME = 'explainers_comparison.png'  # written inside --out
DEFAULT_COUNT = 3
DEFAULT_NUM_SAMPLES = 300  # fmd.explain.lime_map.DEFAULT_NUM_SAMPLES (not imported: it loads torch)
COLUMNS = ('face', 'gradient saliency', 'Grad-CAM (fake)', 'LIME (red: for fake)', 'mask head')


@dataclass(frozen=True)
class Face:
    """One chosen face: its path relative to the dataset, normalised image and P(fake)."""

    relative: str
    image: torch.Tensor
    p_fake: float


def replaced_parts(name: str) -> tuple[str, ...] | None:
    """The parts a ciplab code in a file name says were replaced, as words ('left eye'); None when
    the name has no code (fmd.evaluate.localization.parse_part_code reads it)."""
    from fmd.evaluate.localization import parse_part_code

    code = parse_part_code(name)
    return None if code is None else tuple(part.replace('_', ' ') for part, replaced in code.items()
                                           if replaced)


def choose_fakes(p_fakes: np.ndarray, threshold: float, count: int, seed: int) -> list[int]:
    """`count` indices into p_fakes: a seeded shuffle, those at or above `threshold` first."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(p_fakes))
    called_fake = p_fakes[order] >= threshold
    return [int(i) for i in order[np.argsort(~called_fake, kind='stable')][:count]]


def grad_cam_fake(image: torch.Tensor, model: nn.Module) -> np.ndarray:
    """fmd.analysis.grad_cam.grad_cam_map with the class fixed to fake: HxW float32 in [0, 1]."""
    from fmd.analysis.grad_cam import grad_cam_map
    from fmd.explain.lime_map import FAKE

    return grad_cam_map(image, model, target_class=FAKE)[0]


def saliency_fake(image: torch.Tensor, model: nn.Module) -> np.ndarray:
    """The vanilla-gradient saliency (fmd.analysis.saliency) of class fake, min-max scaled to [0, 1]:
    HxW float32."""
    import torch

    from fmd.analysis.saliency import compute_gradient_saliency_maps, min_max_normalise
    from fmd.explain.lime_map import FAKE

    maps = compute_gradient_saliency_maps(image.unsqueeze(0), torch.tensor([FAKE]), model)
    return min_max_normalise(maps.double())[0].float().numpy()


def outline_parts(axis: Axes, points: np.ndarray | None, parts: tuple[str, ...] | None) -> None:
    """The convex hulls of the replaced parts' landmarks, drawn as thin outlines."""
    import numpy as np
    from scipy.spatial import ConvexHull

    from fmd.data.self_blend import PART_POINTS

    if points is None or not parts:
        return
    for part in parts:
        hull_points = points[list(PART_POINTS[part.replace(' ', '_')])]
        hull = hull_points[ConvexHull(hull_points).vertices]
        closed = np.vstack([hull, hull[:1]])
        axis.plot(closed[:, 0], closed[:, 1], color='#00e5ff', linewidth=0.9, linestyle='--')


def draw_row(axes: list[Axes], face: Face, model: nn.Module, masked: nn.Module | None, *, num_samples: int,
             seed: int, points: np.ndarray | None) -> None:
    """One face's five panels."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from fmd.explain.cli import draw_lime, rgb_of
    from fmd.explain.lime_map import lime_map
    from fmd.models.mask_head import predict_masks

    rgb = rgb_of(face.image)
    parts = replaced_parts(face.relative)
    axes[0].imshow(rgb)
    axes[1].imshow(saliency_fake(face.image, model), cmap='inferno', vmin=0, vmax=1)
    axes[2].imshow(show_cam_on_image(rgb, grad_cam_fake(face.image, model), use_rgb=True))
    draw_lime(axes[3], rgb, lime_map(face.image, model, num_samples=num_samples, seed=seed), colorbar=False)
    if masked is None:
        axes[4].text(0.5, 0.5, 'no mask head', ha='center', va='center', transform=axes[4].transAxes)
    else:
        from fmd.core.devices import model_device

        _, masks = predict_masks(masked, face.image.unsqueeze(0).to(model_device(model)))
        size = face.image.shape[-1]
        mask = masks[0, 0].cpu().numpy()
        axes[4].imshow(rgb)  # the map over the face, as Grad-CAM's, on a fixed 0-1 scale
        axes[4].imshow(mask, cmap='magma', vmin=0, vmax=1, alpha=0.6, extent=(0, size, size, 0))
        axes[4].set_xlabel(f'P(changed): max {mask.max():.2f} (scale 0-1)', fontsize=8)
    for axis in axes:
        outline_parts(axis, points, parts)
        axis.set_xticks([])
        axis.set_yticks([])
    lines = [Path(face.relative).name, f'P(fake) = {face.p_fake:.3f}']
    if parts is not None:
        from fmd.data.self_blend import PARTS

        named = 'all four parts' if len(parts) == len(PARTS) else ', '.join(parts) or 'none'
        lines.append(f'replaced: {named}')
    axes[0].set_ylabel('\n'.join(lines), fontsize=8)


def pick_faces(data: str, model: nn.Module, threshold: float, count: int, seed: int,
               progress: bool) -> tuple[list[Face], Path, int]:
    """(the chosen fakes, the dataset folder above the split, how many fakes the split holds)."""
    from torch.utils.data import Subset

    from fmd.core.devices import model_device
    from fmd.core.inference import fake_probability, predict
    from fmd.evaluate.specs import load_spec_dataset, parse_data_spec

    spec = parse_data_spec(data)
    dataset = load_spec_dataset(spec)
    fakes = [i for i in range(len(dataset)) if dataset.image_path(i)[1] == 1]  # never empty: checked
    logits, _ = predict(model, Subset(dataset, fakes), device=model_device(model), show_progress=progress)
    p_fakes = fake_probability(logits).numpy()
    root = spec.folder.parent if spec.split else spec.folder
    chosen = []
    for index in choose_fakes(p_fakes, threshold, count, seed):
        path, _ = dataset.image_path(fakes[index])
        image = dataset[fakes[index]][0]
        chosen.append(Face(path.relative_to(root).as_posix(), image, float(p_fakes[index])))
    return chosen, root, len(fakes)


def draw(checkpoint: str, data: str, out: Path, *, count: int = DEFAULT_COUNT, seed: int = 0,
         num_samples: int = DEFAULT_NUM_SAMPLES, progress: bool = False) -> Path:
    """Choose the faces, explain each four ways, save the grid; returns the figure's path."""
    from tqdm import tqdm

    from fmd.core.analysis_cli import save_figure, use_agg_backend
    from fmd.core.devices import pick_device
    from fmd.data.landmarks import LANDMARKS_FILE, read_landmarks
    from fmd.models.mask_head import attach_saved_head
    from fmd.training.checkpoints import load_trained_model, read_checkpoint, stored_val_threshold

    use_agg_backend()
    import matplotlib.pyplot as plt

    saved = read_checkpoint(checkpoint)
    model = load_trained_model(checkpoint, pick_device())
    masked = attach_saved_head(model, saved)
    stored = stored_val_threshold(saved)
    threshold = 0.5 if stored is None else stored
    faces, root, n_fakes = pick_faces(data, model, threshold, count, seed, progress)
    landmarks = read_landmarks(root / LANDMARKS_FILE).points if (root / LANDMARKS_FILE).is_file() else {}
    figure, axes = plt.subplots(len(faces), len(COLUMNS), figsize=(2.5 * len(COLUMNS), 2.6 * len(faces)),
                                squeeze=False)
    for row, face in enumerate(tqdm(faces, desc='explaining', disable=None if progress else True)):
        draw_row(list(axes[row]), face, model, masked, num_samples=num_samples, seed=seed,
                 points=landmarks.get(face.relative))
    for axis, title in zip(axes[0], COLUMNS, strict=True):
        axis.set_title(title, fontsize=10)
    called = sum(face.p_fake >= threshold for face in faces)
    figure.suptitle(f'{saved["model_name"]} ({Path(checkpoint).name}) on {data}: {len(faces)} of {n_fakes} '
                    f'fakes, {called} called fake (P(fake) ≥ {threshold:.3g}); LIME {num_samples} samples, '
                    f'seed {seed}', fontsize=9)
    figure.tight_layout()
    return save_figure(figure, out / FIGURE_NAME, dpi=100)


def build_parser() -> argparse.ArgumentParser:
    """--checkpoint, --data, --count, --num-samples, --seed, --out DIR (light modules: --help is quick)."""
    parser = argparse.ArgumentParser(prog='python -m fmd.explain.compare',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', required=True, metavar='PATH',
                        help='a checkpoint train_main.py wrote (with --mask-loss-weight: it has a mask head)')
    parser.add_argument('--data', required=True, metavar='DATASET[:SPLIT]',
                        help='a dataset folder (its test split unless :train or :val is added), or a '
                             'folder holding real/ and fake/')
    parser.add_argument('--count', type=positive_int, default=DEFAULT_COUNT,
                        help='fake faces drawn, one row each (default: %(default)s)')
    parser.add_argument('--num-samples', type=positive_int, default=DEFAULT_NUM_SAMPLES, metavar='N',
                        help='LIME perturbations per face (default: %(default)s)')
    add_seed_arg(parser, 'seed of the choice of faces and of LIME')
    add_out_dir_arg(parser, FIGURES_DIR, FIGURE_NAME)
    add_progress_arg(parser)
    return parser


def main(argv: list[str] | None = None) -> Path:
    """Parse the command line and draw."""
    args = build_parser().parse_args(argv)
    check_out_dir(args.out, FIGURE_NAME)
    return draw(args.checkpoint, args.data, Path(args.out), count=args.count, seed=args.seed,
                num_samples=args.num_samples, progress=not args.no_progress)


if __name__ == '__main__':
    run_cli(main)
