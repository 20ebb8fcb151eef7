"""Draws one face over its background, layer by layer from the back: hair, body, head, features, light."""
from __future__ import annotations

import numpy as np

from .background import render_background
from .canvas import Canvas, paint, value_noise
from .faces import BUZZ_CUT, CURLY_HAIR, LONG_HAIR, Identity, Scene

SCLERA_COLOR = np.array([0.93, 0.91, 0.88])


def render_face(identity: Identity, scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    """One face over its background at `size` px; float32 HxWx3 in [0, 1], no camera effects yet."""
    canvas = Canvas(size, scene)
    image = render_background(canvas, size, scene)
    strands = value_noise(rng, size, max(2, size // 32), max(4, size // 3))[..., None]
    hair = identity.hair_color * (0.8 + 0.35 * strands)
    if identity.hair_style == LONG_HAIR:
        _draw_hair_behind(image, canvas, identity, hair)
    _draw_body(image, canvas, identity)
    head = _draw_head(image, canvas, identity, size, rng)
    for side in (-1, 1):
        _draw_eye_and_brow(image, canvas, identity, scene, side)
    _draw_nose(image, canvas, identity, scene)
    _draw_mouth(image, canvas, identity, scene)
    _draw_hair_on_top(image, canvas, identity, head, hair)
    _apply_light(image, canvas, identity, scene, head)
    return np.clip(image, 0, 1)


def _draw_hair_behind(image: np.ndarray, canvas: Canvas, identity: Identity, hair: np.ndarray) -> None:
    """Long hair that falls behind the head and shoulders."""
    width, height = identity.head_half_width, identity.head_half_height
    behind = canvas.ellipse(0, height * 0.35, width * 1.25, height * 1.25)
    paint(image, behind * canvas.inside(canvas.y - height * 1.4, 4), hair * 0.85)


def _draw_body(image: np.ndarray, canvas: Canvas, identity: Identity) -> None:
    """Shoulders in clothes, the neck and both ears."""
    width, height, skin = identity.head_half_width, identity.head_half_height, identity.skin_color
    x, y = canvas.x, canvas.y
    paint(image, canvas.ellipse(0, height + 0.62, 0.85, 0.5), identity.clothes_color)
    neck = (canvas.inside(np.abs(x) - width * 0.5) * canvas.inside(height * 0.4 - y)
            * canvas.inside(y - (height + 0.3)))
    paint(image, neck, skin * 0.8)
    ear_level = identity.eye_level + 0.06
    for side in (-1, 1):
        paint(image, canvas.ellipse(side * width * 0.97, ear_level, 0.045, 0.085), skin * 0.9)


def _draw_head(image: np.ndarray, canvas: Canvas, identity: Identity, size: int,
               rng: np.random.Generator) -> np.ndarray:
    """Textured skin on an ellipse narrowed towards the chin; returns the head's opacity mask."""
    width, height = identity.head_half_width, identity.head_half_height
    towards_chin = np.clip(canvas.y / height, 0, 1)
    tapered_x = canvas.x / (1 - identity.jaw_taper * towards_chin ** 1.6)
    distance = (np.sqrt((tapered_x / width) ** 2 + (canvas.y / height) ** 2) - 1) * width
    head = canvas.inside(distance)
    pores = value_noise(rng, size, max(4, min(128, size // 2)))[..., None]
    paint(image, head, identity.skin_color * (1 + identity.skin_texture * pores))
    return head


def _draw_eye_and_brow(image: np.ndarray, canvas: Canvas, identity: Identity, scene: Scene,
                       side: int) -> None:
    """One eye (white, iris, pupil, highlight, lid line) and its brow; the far side is narrower."""
    level, half_width, half_height = identity.eye_level, identity.eye_half_width, identity.eye_half_height
    squash = 1 - 0.15 * scene.yaw * side
    centre = scene.feature_shift + side * identity.eye_offset * squash
    sclera = canvas.ellipse(centre, level, half_width * squash, half_height)
    paint(image, sclera, SCLERA_COLOR * (0.6 + 0.4 * identity.skin_color.mean()))
    gaze_x, gaze_y = scene.gaze * half_height * 0.6
    iris_x, iris_y = centre + gaze_x, level + gaze_y
    paint(image, canvas.ellipse(iris_x, iris_y, half_height * 0.95, half_height * 0.95) * sclera,
          identity.iris_color)
    paint(image, canvas.ellipse(iris_x, iris_y, half_height * 0.42, half_height * 0.42) * sclera, 0.03)
    highlight = canvas.ellipse(iris_x + half_height * 0.3, level + gaze_y - half_height * 0.3,
                               half_height * 0.15, half_height * 0.15)
    paint(image, highlight * sclera, 0.95)
    outline = np.abs(np.sqrt(((canvas.x - centre) / (half_width * squash)) ** 2
                             + ((canvas.y - level) / half_height) ** 2) - 1)
    lid = (canvas.inside(outline * half_height - half_height * 0.12)
           * canvas.inside(canvas.y - level + half_height * 0.2))
    paint(image, lid, identity.skin_color * 0.25)
    brow = canvas.ellipse(centre + side * 0.01, level - identity.brow_above_eye,
                          identity.brow_half_width * squash, identity.brow_half_height,
                          tilt=side * identity.brow_tilt)
    paint(image, brow * 0.9, identity.hair_color * 0.7)


def _draw_nose(image: np.ndarray, canvas: Canvas, identity: Identity, scene: Scene) -> None:
    """A ridge shadowed away from the light, the tip, two nostrils and a highlight."""
    light_x, _ = scene.light_direction
    shift, skin, width = scene.feature_shift, identity.skin_color, identity.nose_width
    tip = identity.nose_tip_level
    ridge = canvas.ellipse(shift - light_x * width * 0.6, identity.eye_level + identity.nose_length * 0.55,
                           width * 0.25, identity.nose_length * 0.45, feather=3)
    paint(image, ridge * 0.35, skin * 0.55)
    paint(image, canvas.ellipse(shift, tip - 0.005, width * 0.9, width * 0.45, feather=3) * 0.3, skin * 0.7)
    for side in (-1, 1):
        nostril = canvas.ellipse(shift + side * width * 0.45, tip + 0.005, width * 0.22, width * 0.13)
        paint(image, nostril * 0.7, skin * 0.3)
    highlight = canvas.ellipse(shift + light_x * width * 0.3, tip - width * 0.35, width * 0.3,
                               width * 0.2, feather=3)
    paint(image, highlight * 0.35, np.minimum(skin * 1.3, 1))


def _draw_mouth(image: np.ndarray, canvas: Canvas, identity: Identity, scene: Scene) -> None:
    """Two lips and a curved parting line; `smile` bends the curve."""
    shift, level = scene.feature_shift, identity.mouth_level
    half_width, thickness = identity.mouth_half_width, identity.lip_thickness
    x, y = canvas.x, canvas.y
    curve = identity.smile * 0.03 * (((x - shift) / half_width) ** 2 - 0.5)
    across = canvas.inside(np.abs(x - shift) - half_width, 2)
    upper = canvas.inside(np.abs(y - (level - thickness * 0.5) + curve) - thickness * 0.5) * across
    lower = canvas.inside(np.abs(y - (level + thickness * 0.7) + curve) - thickness * 0.7) * across
    paint(image, np.maximum(upper, lower), identity.lip_color)
    parting = canvas.inside(np.abs(y - level + curve) - canvas.pixel * 0.6) * across * 0.8
    paint(image, parting, identity.lip_color * 0.3)


def _draw_hair_on_top(image: np.ndarray, canvas: Canvas, identity: Identity, head: np.ndarray,
                      hair: np.ndarray) -> None:
    """Hair over the head: a crown cut at a wavy hairline, or a shadow of stubble for a buzz cut."""
    width, height, style = identity.head_half_width, identity.head_half_height, identity.hair_style
    x, y = canvas.x, canvas.y
    if style == BUZZ_CUT:
        paint(image, head * canvas.inside(y - identity.hairline + 0.08, 6) * 0.55, hair)
        return
    grow = 1.3 if style == CURLY_HAIR else 1.12
    curls = 1 + 0.06 * np.sin(np.arctan2(y, x) * 14) if style == CURLY_HAIR else 1
    crown = canvas.inside((np.sqrt((x / (width * grow)) ** 2 + (y / (height * 1.08)) ** 2) - curls) * width)
    hairline = identity.hairline + identity.hair_wave * np.sin(x * 9 + 1.7) + 0.25 * (x / width) ** 4
    hair_mask = crown * canvas.inside(y - hairline, 3)
    if style == LONG_HAIR:  # locks down both sides of the face
        sides = crown * canvas.inside(width * 0.8 - np.abs(x), 3) * canvas.inside(y - height * 0.3)
        hair_mask = np.maximum(hair_mask, sides)
    paint(image, hair_mask, hair)


def _apply_light(image: np.ndarray, canvas: Canvas, identity: Identity, scene: Scene,
                 head: np.ndarray) -> None:
    """Directional light shading the head as a rounded shape, a softer gradient over the scene."""
    light_x, light_y = scene.light_direction
    across, down = canvas.x / identity.head_half_width, canvas.y / identity.head_half_height
    shade = (1 + scene.light_strength * (light_x * across + light_y * down)
             - 0.18 * np.clip(across ** 2 + down ** 2, 0, 1))
    scene_light = 1 + scene.light_strength * 0.4 * (light_x * canvas.screen_x + light_y * canvas.screen_y)
    light = np.where(head > 0, 1 + (shade - 1) * head, scene_light)
    image *= (light * scene.exposure)[..., None]
