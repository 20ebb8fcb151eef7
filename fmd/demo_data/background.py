"""Backdrops behind the face: a gradient wall, stripes, bokeh blobs or a room corner, plus texture."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from .canvas import Canvas, paint, value_noise
from .faces import Scene

GRADIENT_WALL, STRIPES, BOKEH, ROOM_CORNER = range(4)  # scene.background_kind


def render_background(canvas: Canvas, size: int, scene: Scene) -> np.ndarray:
    """The textured backdrop of one picture; float32 HxWx3 in [0, 1]."""
    rng = np.random.default_rng(scene.background_seed)
    colors = scene.background_colors
    screen_x, screen_y = canvas.screen_x[..., None], canvas.screen_y[..., None]
    if scene.background_kind == GRADIENT_WALL:
        angle = rng.uniform(0, 2 * math.pi)
        blend = np.clip(0.5 + 0.5 * (math.cos(angle) * screen_x + math.sin(angle) * screen_y), 0, 1)
        image = colors[0] * (1 - blend) + colors[1] * blend
    elif scene.background_kind == STRIPES:
        angle, frequency = rng.uniform(0, math.pi), rng.uniform(4, 14)
        along = math.cos(angle) * screen_x + math.sin(angle) * screen_y
        blend = 0.5 + 0.5 * np.sin(frequency * along + rng.uniform(0, 6))
        image = colors[0] * (1 - blend) + colors[1] * blend
    elif scene.background_kind == BOKEH:
        image = _bokeh(canvas, size, colors[0], rng)
    else:
        image = _room_corner(screen_x, screen_y, size, colors, rng)
    texture = value_noise(rng, size, 6) * 0.08 + value_noise(rng, size, max(4, size // 8)) * 0.03
    return np.clip(image + texture[..., None], 0, 1).astype(np.float32)


def _bokeh(canvas: Canvas, size: int, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus light blobs of random colours over a plain colour."""
    image = np.broadcast_to(base, (size, size, 3)).copy()
    for _ in range(int(rng.integers(4, 9))):
        centre_x, centre_y, radius = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.1, 0.35)
        distance = np.hypot(canvas.screen_x - centre_x, canvas.screen_y - centre_y)
        blob = np.clip(1 - distance / radius, 0, 1) ** 0.7
        paint(image, blob * rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.95, 3))
    return image


def _room_corner(screen_x: np.ndarray, screen_y: np.ndarray, size: int, colors: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Wall over floor with a window, slightly out of focus."""
    horizon = rng.uniform(0.1, 0.7)
    image = np.where(screen_y < horizon, colors[0], colors[1]).astype(np.float32)
    left, top = rng.uniform(-1, 0.3), rng.uniform(-1, 0)
    window = ((screen_x > left) & (screen_x < left + rng.uniform(0.2, 0.6))
              & (screen_y > top) & (screen_y < top + 0.5))
    image = np.where(window, colors[2], image)
    blurred = Image.fromarray((image * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(size / 128))
    return np.asarray(blurred, dtype=np.float32) / 255
