"""fmd.detect --mask: each face's predicted manipulation map, its parts' scores and an overlay picture.

The checkpoint's mask head (fmd.models.mask_head) draws a 64x64 map of where the face was changed.
Each crop's 68 landmarks (dlib, fmd.data.landmarks) cut it into the ciplab parts (left eye, right eye,
nose, mouth) and the rest of the face (fmd.evaluate.localization), and a part's score is the mean
of the map inside it: the columns PART_COLUMNS of faces.csv. A crop without landmarks gets blanks.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw

from fmd.core.atomic_io import atomic_write
from fmd.models.mask_head import MaskedDetector, predict_masks

PART_COLUMNS = ('left_eye', 'right_eye', 'nose', 'mouth', 'rest')
MASK_SUFFIX = '_mask.png'  # annotated/<name>.jpg's mask overlay: annotated/<name>_mask.png
MASK_COLORMAP = cv2.COLORMAP_VIRIDIS  # as detect's Grad-CAM overlays: perceptually uniform, colour-blind safe
OVERLAY_ALPHA = 0.5


def score_and_map(masked: MaskedDetector, crops: Sequence[np.ndarray], device: torch.device,
                  batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(fake) per crop (float64), Nx64x64 float32 mask probabilities), in batches."""
    from fmd.core.batches import input_memory_format
    from fmd.data.presets import TRANSFORM_TEST

    p_fakes, maps = [np.zeros(0)], [np.zeros((0, 64, 64), dtype=np.float32)]
    memory_format = input_memory_format(masked.detector)
    for start in range(0, len(crops), batch_size):
        batch = torch.stack([TRANSFORM_TEST(Image.fromarray(crop))
                             for crop in crops[start:start + batch_size]])
        batch = batch.to(device).contiguous(memory_format=memory_format)
        logits, probabilities = predict_masks(masked, batch)
        p_fakes.append(torch.softmax(logits.double(), dim=1)[:, 1].cpu().numpy())
        maps.append(probabilities[:, 0].cpu().numpy())
    return np.concatenate(p_fakes), np.concatenate(maps)


def crop_part_scores(crop: np.ndarray, mask_map: np.ndarray) -> dict[str, float] | None:
    """The mean of `mask_map` in each of PART_COLUMNS of the crop (its landmarks found by dlib), or
    None when dlib finds no face in the crop."""
    from fmd.data.landmarks import face_landmarks
    from fmd.evaluate.localization import part_regions, part_scores

    points = face_landmarks(np.ascontiguousarray(crop))
    if points is None:
        return None
    scores = part_scores(mask_map, part_regions(points, crop.shape[:2]))
    return {part: float(scores[part]) for part in PART_COLUMNS}


def overlay(crop: np.ndarray, mask_map: np.ndarray) -> np.ndarray:
    """HxWx3 uint8: the crop with its mask map (0..1, resized to the crop) blended on in MASK_COLORMAP."""
    height, width = crop.shape[:2]
    levels = np.clip(cv2.resize(mask_map, (width, height), interpolation=cv2.INTER_LINEAR), 0, 1)
    colours = cv2.cvtColor(cv2.applyColorMap(np.rint(levels * 255).astype(np.uint8), MASK_COLORMAP),
                           cv2.COLOR_BGR2RGB)
    return np.rint((1 - OVERLAY_ALPHA) * crop + OVERLAY_ALPHA * colours).astype(np.uint8)


def mask_picture(crops: Sequence[np.ndarray], maps: Sequence[np.ndarray],
                 scores: Sequence[dict[str, float] | None]) -> Image.Image:
    """One column per face: the crop, its mask overlay, and its part scores below them."""
    side = crops[0].shape[0]
    line = 14
    text_rows = len(PART_COLUMNS) + 1
    canvas = Image.new('RGB', (side * len(crops), 2 * side + line * text_rows + 4), (30, 30, 30))
    draw = ImageDraw.Draw(canvas)
    for index, (crop, mask_map, parts) in enumerate(zip(crops, maps, scores, strict=True)):
        left = index * side
        canvas.paste(Image.fromarray(crop), (left, 0))
        canvas.paste(Image.fromarray(overlay(crop, mask_map)), (left, side))
        lines = [f'mask max {float(np.max(mask_map)):.2f} (0 purple .. 1 yellow)']
        lines += ([f'{part}: {parts[part]:.2f}' for part in PART_COLUMNS] if parts is not None
                  else ['no landmarks: no part scores'])
        for row, text in enumerate(lines):
            draw.text((left + 4, 2 * side + 2 + row * line), text, fill=(255, 255, 255))
    return canvas


def save_mask_picture(annotated_path: str, crops: Sequence[np.ndarray], maps: Sequence[np.ndarray],
                      scores: Sequence[dict[str, float] | None]) -> str:
    """Write the mask picture next to the annotated one (<name>_mask.png); '' when there is no face."""
    if not annotated_path or not crops:
        return ''
    path = Path(annotated_path)
    path = path.with_name(path.stem + MASK_SUFFIX)
    picture = mask_picture(crops, maps, scores)
    atomic_write(path, lambda handle: picture.save(handle, format='PNG', compress_level=1), fsync=False)
    return str(path)
