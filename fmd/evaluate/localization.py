"""Does a detector point at the replaced parts? Part-level localization on the ciplab composites.

A ciplab fake's file name says which parts were pasted in (`easy_101_0010.png`: the last four digits
are bits for left eye, right eye, nose, mouth, left being the eye on the image's left). With the
crop's 68 landmarks each part gets a region; a map (the mask head's manipulation map, or Grad-CAM of
class fake) scores a part by its mean inside that region. Per part, the ROC AUC of that score over
the fakes tells replaced parts from untouched ones (0.5: the map ignores where the change is).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fmd.data.landmarks import LANDMARKS_FILE
from fmd.data.self_blend import PART_POINTS, PARTS, hull_mask

if TYPE_CHECKING:  # torch loads on first use: fmd.evaluate's --help stays quick
    import torch
    from torch import nn

    from faces_dataset import FacesDataset

REST = 'rest'  # the face hull outside the four parts' regions
REGIONS = (*PARTS, REST)
METHODS = ('mask', 'grad_cam')
FAKE_CLASS = 1  # Grad-CAM explains the fake logit: "where is it fake", whatever the model predicted
CROP_SHAPE = (256, 256)
# dlib's points lie on a part's outline (lid, brow, lip edges) and a pasted part brings a few pixels
# of skin around it; 6 px (2% of a 256 face, 1.5 cells of the 64x64 mask) takes in that rim while
# keeping neighbouring parts' regions apart.
PART_MARGIN = 6
PART_CODE = re.compile(r'(?:easy|mid|hard)_\d+_([01]{4})\.\w+')


def parse_part_code(file_name: str) -> dict[str, bool] | None:
    """{part: replaced} from a ciplab fake's name (`mid_7_1100.png`); None for a name without a code."""
    match = PART_CODE.fullmatch(Path(file_name).name)
    return None if match is None else {part: bit == '1' for part, bit in zip(PARTS, match[1], strict=True)}


def part_regions(landmarks: np.ndarray, shape: tuple[int, int] = CROP_SHAPE) -> dict[str, np.ndarray]:
    """Bool HxW regions: each part's landmark hull grown by PART_MARGIN, and `rest` (face hull minus them)."""
    import cv2

    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (68, 2):
        raise ValueError(f'part regions need 68x2 landmarks, got shape {points.shape}')
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * PART_MARGIN + 1,) * 2)
    regions = {part: cv2.dilate(hull_mask([points[list(PART_POINTS[part])]], shape), kernel).astype(bool)
               for part in PARTS}
    regions[REST] = hull_mask([points], shape).astype(bool) & ~np.logical_or.reduce(list(regions.values()))
    return regions


def part_scores(prob_map: np.ndarray, regions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean of the map (resized bilinearly to the regions' size) inside each region; nan for an empty one."""
    import cv2

    height, width = next(iter(regions.values())).shape
    values = np.asarray(prob_map, dtype=np.float32)
    if values.shape != (height, width):
        values = cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
    return {name: float(values[region].mean()) if region.any() else float('nan')
            for name, region in regions.items()}


def top_part_hit(scores: Mapping[str, float], code: Mapping[str, bool]) -> float:
    """1 when the highest-scoring part was replaced, 0 when not; a tie scores its replaced share
    (what a random tie-break hits on average: an all-zero Grad-CAM map must not favour the left eye)."""
    best = max(scores[part] for part in PARTS)
    tied = [part for part in PARTS if scores[part] == best]
    return sum(code[part] for part in tied) / len(tied)


def localization_summary(scores: Sequence[Mapping[str, float]], codes: Sequence[Mapping[str, bool]]) -> dict:
    """Per part the AUC of its score for replaced vs untouched (None with one class), the mean part AUC,
    the top-part hit rate and its chance level (a random part's), over fakes with finite part scores."""
    from sklearn.metrics import roc_auc_score

    if len(scores) != len(codes):
        raise ValueError(f'{len(scores)} part scores for {len(codes)} part codes')
    kept = [(s, c) for s, c in zip(scores, codes, strict=True) if np.isfinite([s[p] for p in PARTS]).all()]
    parts = {}
    for part in PARTS:
        truth = np.array([code[part] for _, code in kept], dtype=bool)
        values = np.array([score[part] for score, _ in kept], dtype=float)
        auc = float(roc_auc_score(truth, values)) if 0 < truth.sum() < len(truth) else None
        parts[part] = {'auc': auc, 'n_replaced': int(truth.sum()), 'n_untouched': int((~truth).sum())}
    aucs = [entry['auc'] for entry in parts.values() if entry['auc'] is not None]
    hits = [top_part_hit(score, code) for score, code in kept]
    chance = [sum(code[p] for p in PARTS) / len(PARTS) for _, code in kept]
    return {'parts': parts, 'mean_part_auc': float(np.mean(aucs)) if aucs else None,
            'top_part_hit': float(np.mean(hits)) if hits else None,
            'top_part_chance': float(np.mean(chance)) if chance else None, 'n_fakes': len(kept)}


# ----------------------------------------------------------------------------- maps of a dataset

def available_methods(checkpoint: Mapping) -> tuple[str, ...]:
    """The maps a checkpoint can draw: 'mask' when it stores a mask head, 'grad_cam' always."""
    from fmd.models.mask_head import MASK_HEAD_KEY

    return METHODS if isinstance(checkpoint.get(MASK_HEAD_KEY), Mapping) else ('grad_cam',)


@contextmanager
def map_function(method: str, model: nn.Module,
                 checkpoint: Mapping) -> Iterator[Callable[[torch.Tensor], np.ndarray]]:
    """A function from a normalised Bx3xHxW batch to its BxH'xW' maps in [0, 1], for `method`."""
    if method == 'mask':
        from fmd.models.mask_head import attach_saved_head, predict_masks

        masked = attach_saved_head(model, checkpoint)
        if masked is None:
            raise ValueError('the checkpoint has no mask head (train with --mask-loss-weight)')
        yield lambda images: predict_masks(masked, images)[1][:, 0].cpu().numpy()
    elif method == 'grad_cam':
        from fmd.analysis.grad_cam import grad_cam

        model.eval()  # BN on running statistics: each image's gradients are its own, so batching is exact
        with grad_cam(model) as cam:
            yield lambda images: cam(images, FAKE_CLASS)
    else:
        raise ValueError(f'unknown localization method {method!r} (choose from {", ".join(METHODS)})')


def localization_maps(method: str, model: nn.Module, checkpoint: Mapping, dataset: FacesDataset,
                      indices: Sequence[int], device: torch.device, batch_size: int = 32, workers: int = 0,
                      show_progress: bool = True) -> Iterator[np.ndarray]:
    """The map of each image dataset[i], i in `indices`, in that order: 'mask' the mask head's 64x64
    probabilities, 'grad_cam' Grad-CAM of class fake at image size; both in batches."""
    from torch.utils.data import DataLoader, Subset
    from tqdm import tqdm

    from fmd.core.batches import collate_images, input_memory_format, prepare_batch

    loader = DataLoader(Subset(dataset, list(indices)), batch_size=batch_size, num_workers=workers,
                        collate_fn=collate_images)
    memory_format = input_memory_format(model)
    with map_function(method, model, checkpoint) as draw, \
            tqdm(total=len(indices), desc=f'localization ({method})', unit='image', leave=False,
                 disable=None if show_progress else True) as bar:
        for images, _ in loader:
            yield from draw(prepare_batch(images, device, memory_format))
            bar.update(len(images))


# ----------------------------------------------------------------------------- fmd.evaluate's part

@dataclass(frozen=True)
class CodedFakes:
    """The fakes of a dataset whose names carry a part code and whose landmarks are known."""

    indices: list[int]                 # dataset indices
    codes: list[dict[str, bool]]
    landmarks: list[np.ndarray]        # 68x2, in the crop's own pixels
    shapes: list[tuple[int, int]]      # each crop's HxW: the landmarks' frame
    without_landmarks: int = 0         # coded fakes left out


def coded_fakes(dataset: FacesDataset, folder: Path) -> CodedFakes | str:
    """The coded fakes with landmarks (landmarks.npz in `folder` or the dataset folder above it), or
    why there are none."""
    from fmd.core.images import open_image
    from fmd.data.landmarks import read_landmarks

    fakes = [(i, path, code) for i in range(len(dataset)) for path, label in [dataset.image_path(i)]
             if label == 1 and (code := parse_part_code(path.name)) is not None]
    if not fakes:
        return 'no fake file name carries a part code (like easy_101_0010.png)'
    npz = next((f / LANDMARKS_FILE for f in (folder, folder.parent) if (f / LANDMARKS_FILE).is_file()), None)
    if npz is None:
        return f'no {LANDMARKS_FILE} in {folder} or {folder.parent}'
    try:
        points = read_landmarks(npz).points
    except ValueError as error:
        return str(error)
    found = [(i, path, code, points[key]) for i, path, code in fakes
             if (key := Path(os.path.relpath(path, npz.parent)).as_posix()) in points]
    if not found:
        return f'{npz} has landmarks for none of its {len(fakes)} coded fakes'
    shapes = []
    for _, path, _, _ in found:
        with open_image(path) as image:  # a bomb or broken file: one ImageReadError naming it
            shapes.append((image.height, image.width))
    return CodedFakes([i for i, *_ in found], [c for _, _, c, _ in found], [p for *_, p in found], shapes,
                      len(fakes) - len(found))


def localize(checkpoint_path: str | os.PathLike, checkpoint: Mapping, dataset: FacesDataset,
             fakes: CodedFakes, device: torch.device, batch_size: int = 32, workers: int = 0,
             show_progress: bool = True) -> dict[str, dict]:
    """{method: localization_summary} of every map the checkpoint can draw, on the coded fakes (a fresh
    eager copy of the model: the scoring one may be compiled)."""
    from fmd.training.checkpoints import load_trained_model

    model = load_trained_model(checkpoint_path, device)
    results = {}
    for method in available_methods(checkpoint):
        maps = localization_maps(method, model, checkpoint, dataset, fakes.indices, device, batch_size,
                                 workers, show_progress)
        scores = [part_scores(prob_map, part_regions(points, shape))
                  for prob_map, points, shape in zip(maps, fakes.landmarks, fakes.shapes, strict=True)]
        results[method] = localization_summary(scores, fakes.codes)
    return results
