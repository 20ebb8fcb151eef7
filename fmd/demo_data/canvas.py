"""Drawing primitives: smooth value noise, masked painting and anti-aliased shapes in face units."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .faces import Scene


def value_noise(rng: np.random.Generator, size: int, cells: int,
                cells_across: int | None = None) -> np.ndarray:
    """Smooth noise in [-1, 1], size x size: a small random grid upsampled bicubically."""
    grid = rng.uniform(-1, 1, (cells, cells_across or cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode='F').resize((size, size), Image.BICUBIC))


def paint(image: np.ndarray, mask: np.ndarray, color: np.ndarray | float) -> None:
    """Blend `color` (one RGB colour or a whole image) over `image` in place with opacity `mask`.

    Only the bounding box of the mask is touched, which keeps small features cheap.
    """
    rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return
    box = np.s_[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    if isinstance(color, np.ndarray) and color.ndim == 3:
        color = color[box]
    region = image[box]
    region += mask[box][..., None] * (color - region)


class Canvas:
    """The pixel grid of one picture in face units (head centre at 0, y down) and in screen units."""

    def __init__(self, size: int, scene: Scene) -> None:
        """Pixel centres of a size x size picture, moved, zoomed and rotated as `scene` says."""
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
        self.screen_x, self.screen_y = np.meshgrid(centres, centres)  # [-1, 1] across the picture
        cos, sin = math.cos(scene.rotation), math.sin(scene.rotation)
        unrotated_x = (self.screen_x - scene.offset_x) / scene.zoom
        unrotated_y = (self.screen_y - scene.offset_y) / scene.zoom
        self.x = cos * unrotated_x + sin * unrotated_y
        self.y = -sin * unrotated_x + cos * unrotated_y
        self.pixel = 2.0 / size / scene.zoom  # one pixel in face units, the anti-aliasing width

    def inside(self, distance: np.ndarray, feather: float = 1.0) -> np.ndarray:
        """Opacity from a signed distance (negative inside), soft over `feather` pixels."""
        return np.clip(0.5 - distance / (self.pixel * feather), 0, 1)

    def ellipse(self, centre_x: float, centre_y: float, half_width: float, half_height: float,
                tilt: float = 0.0, feather: float = 1.0) -> np.ndarray:
        """Opacity of a filled ellipse, optionally tilted by `tilt` radians."""
        dx, dy = self.x - centre_x, self.y - centre_y
        if tilt:
            cos, sin = math.cos(tilt), math.sin(tilt)
            dx, dy = cos * dx + sin * dy, -sin * dx + cos * dy
        distance = (np.sqrt((dx / half_width) ** 2 + (dy / half_height) ** 2) - 1) * min(
            half_width, half_height)
        return self.inside(distance, feather)
