"""What a picture shows: a person's identity (shape, colours) and the scene (pose, light, background).

Lengths are in face units: the head centre is at 0, y points down, the head is about 0.5 tall.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .seeding import IdentityKey, keyed_rng

SHORT_HAIR, LONG_HAIR, BUZZ_CUT, CURLY_HAIR = range(4)  # identity.hair_style

SKIN_LIGHTEST = np.array([0.96, 0.80, 0.70])
SKIN_DARKEST = np.array([0.34, 0.21, 0.14])
HAIR_COLORS = np.array([[0.07, 0.05, 0.04], [0.30, 0.19, 0.10], [0.55, 0.38, 0.20],
                        [0.85, 0.70, 0.45], [0.55, 0.22, 0.09], [0.62, 0.60, 0.58]])
IRIS_COLORS = np.array([[0.30, 0.18, 0.08], [0.20, 0.35, 0.55], [0.30, 0.42, 0.25],
                        [0.12, 0.08, 0.05], [0.45, 0.40, 0.30]])


@dataclass(frozen=True, eq=False)  # fields hold arrays, so == would be ambiguous
class Identity:
    """Shape, colours and feature layout of one person; the same in every picture of them."""

    head_half_width: float
    head_half_height: float
    jaw_taper: float  # how much the head narrows towards the chin
    skin_color: np.ndarray
    eye_offset: float  # horizontal distance of each eye from the face's centre line
    eye_level: float
    eye_half_width: float
    eye_half_height: float
    iris_color: np.ndarray
    brow_above_eye: float
    brow_half_width: float
    brow_half_height: float
    brow_tilt: float
    nose_length: float
    nose_width: float
    mouth_below_nose: float
    mouth_half_width: float
    lip_thickness: float
    smile: float
    lip_color: np.ndarray
    hair_color: np.ndarray
    hair_style: int
    hairline: float
    hair_wave: float
    clothes_color: np.ndarray
    skin_texture: float

    @property
    def nose_tip_level(self) -> float:
        """Height of the nose tip, where the nostrils sit."""
        return self.eye_level + self.nose_length

    @property
    def mouth_level(self) -> float:
        """Height of the parting line between the lips."""
        return self.nose_tip_level + self.mouth_below_nose


@dataclass(frozen=True, eq=False)  # fields hold arrays, so == would be ambiguous
class Scene:
    """Everything about one picture that is not the person: pose, light, gaze and background."""

    offset_x: float
    offset_y: float
    rotation: float
    zoom: float
    yaw: float  # head turn, -1 (left) to 1 (right)
    light_direction: tuple[float, float]
    light_strength: float
    gaze: np.ndarray
    background_kind: int
    background_colors: np.ndarray
    background_seed: int
    exposure: float

    @property
    def feature_shift(self) -> float:
        """Sideways shift of eyes, nose and mouth caused by the head turn."""
        return self.yaw * 0.07


def random_identity(seed: int, key: IdentityKey) -> Identity:
    """The identity behind `key`: every picture of that key shows the same person."""
    rng = keyed_rng(seed, 'identity', *key)
    skin = (SKIN_LIGHTEST + (SKIN_DARKEST - SKIN_LIGHTEST) * rng.uniform()
            + rng.normal(0, 0.02, 3))
    hair = (HAIR_COLORS[rng.integers(len(HAIR_COLORS))] * rng.uniform(0.8, 1.15)
            + rng.normal(0, 0.02, 3))
    lips = skin * np.array([0.85, 0.55, 0.55]) * rng.uniform(0.8, 1.0) + rng.normal(0, 0.02, 3)
    return Identity(  # the keyword order is the draw order: changing it changes every face
        head_half_width=rng.uniform(0.36, 0.45), head_half_height=rng.uniform(0.48, 0.58),
        jaw_taper=rng.uniform(0.1, 0.35), skin_color=np.clip(skin, 0.05, 1.0),
        eye_offset=rng.uniform(0.14, 0.19), eye_level=rng.uniform(-0.1, -0.03),
        eye_half_width=rng.uniform(0.055, 0.075), eye_half_height=rng.uniform(0.022, 0.034),
        iris_color=np.clip(IRIS_COLORS[rng.integers(len(IRIS_COLORS))] + rng.normal(0, 0.03, 3), 0, 1),
        brow_above_eye=rng.uniform(0.07, 0.1), brow_half_width=rng.uniform(0.065, 0.09),
        brow_half_height=rng.uniform(0.01, 0.02), brow_tilt=rng.uniform(-0.25, 0.2),
        nose_length=rng.uniform(0.16, 0.22), nose_width=rng.uniform(0.035, 0.055),
        mouth_below_nose=rng.uniform(0.09, 0.13), mouth_half_width=rng.uniform(0.08, 0.12),
        lip_thickness=rng.uniform(0.012, 0.024), smile=rng.uniform(-0.6, 1.6),
        lip_color=np.clip(lips, 0, 1), hair_color=np.clip(hair, 0.02, 1.0),
        hair_style=int(rng.integers(4)), hairline=rng.uniform(-0.4, -0.28),
        hair_wave=rng.uniform(0.0, 0.05), clothes_color=rng.uniform(0.05, 0.9, 3),
        skin_texture=rng.uniform(0.02, 0.05),
    )


def random_scene(rng: np.random.Generator) -> Scene:
    """Pose, light, gaze and background of one picture, drawn from the picture's own stream."""
    light_angle = rng.uniform(0, 2 * math.pi)
    return Scene(  # the keyword order is the draw order
        offset_x=rng.normal(0, 0.05), offset_y=rng.normal(0.06, 0.04), rotation=rng.normal(0, 0.08),
        zoom=rng.uniform(1.15, 1.4), yaw=rng.uniform(-1, 1),
        light_direction=(math.cos(light_angle), math.sin(light_angle)),
        light_strength=rng.uniform(0.08, 0.3), gaze=rng.normal(0, 0.25, 2),
        background_kind=int(rng.integers(4)), background_colors=rng.uniform(0.08, 0.92, (4, 3)),
        background_seed=int(rng.integers(1 << 31)), exposure=rng.uniform(0.92, 1.06),
    )
