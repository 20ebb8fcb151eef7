"""Deterministic offline stand-in for the course datasets: procedural faces, face swaps, GAN fakes.

Writes <out>/{fakes_dataset,synthetic_dataset}/{train,val,test}/{real,fake}/NNNNN.png (256x256 RGB)
and <out>/MANIFEST.json. Every image is a pure function of (seed, dataset, split, class, index), so
the output is byte-identical whatever the number of workers. This is demo data, not the course data.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

GENERATOR_VERSION = '1.0.0'
MANIFEST_NAME = 'MANIFEST.json'
SIZE = 256
DATASETS = ('fakes_dataset', 'synthetic_dataset')
SPLITS = ('train', 'val', 'test')
CLASSES = ('real', 'fake')
SYNTH_RENDER_SIZE = 128  # synthetic fakes are rendered here, then upsampled by ConvT layers
GAN_STRENGTH = 0.012  # size of the random part of the ConvT kernels (the fingerprint)

Counts = dict[str, dict[str, dict[str, int]]]  # dataset -> split -> class -> number of images


def _counts(fakes: tuple[int, int, int], synthetic: tuple[int, int, int]) -> Counts:
    """Course proportions: fakes_dataset is 1 fake : 2 real per split, synthetic is balanced."""
    return {
        'fakes_dataset': {s: {'real': n - n // 3, 'fake': n // 3}
                          for s, n in zip(SPLITS, fakes, strict=True)},
        'synthetic_dataset': {s: {'real': n - n // 2, 'fake': n // 2}
                              for s, n in zip(SPLITS, synthetic, strict=True)},
    }


SCALES: dict[str, Counts] = {
    'tiny': _counts((6, 6, 6), (6, 6, 6)),  # unit tests: seconds
    'quick': _counts((48, 24, 24), (32, 16, 16)),  # QUICK=1 ./run_me.sh
    'small': _counts((900, 300, 300), (400, 150, 150)),  # make run (about 15 min on 2 CPUs)
    'medium': _counts((3600, 1200, 1200), (1600, 600, 600)),
    'full': _counts((5400, 2100, 2100), (5400, 2100, 2100)),  # course sizes
}


# ----------------------------------------------------------------------------- seeding

def _rng(seed: int, *key: object) -> np.random.Generator:
    """A generator that depends only on (seed, key), never on the order of work."""
    digest = hashlib.sha256('/'.join(map(str, (seed, *key))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], 'little'))


def identity_key(seed: int, dataset: str, split: str, class_name: str, index: int) -> tuple:
    """Identity keys of the face(s) in one image: (target, source or None for non-swaps).

    Keys are drawn from a pool private to (dataset, split), so no identity appears in two splits.
    """
    r = _rng(seed, dataset, split, class_name, index, 'identity')
    pool = 1 << 40
    target = (dataset, split, int(r.integers(pool)))
    source = None
    if dataset == 'fakes_dataset' and class_name == 'fake':
        source = (dataset, split, int(r.integers(pool)))
    return target, source


# ----------------------------------------------------------------------------- identities

_SKIN_LIGHT = np.array([0.96, 0.80, 0.70])
_SKIN_DARK = np.array([0.34, 0.21, 0.14])
_HAIR = np.array([[0.07, 0.05, 0.04], [0.30, 0.19, 0.10], [0.55, 0.38, 0.20],
                  [0.85, 0.70, 0.45], [0.55, 0.22, 0.09], [0.62, 0.60, 0.58]])
_IRIS = np.array([[0.30, 0.18, 0.08], [0.20, 0.35, 0.55], [0.30, 0.42, 0.25],
                  [0.12, 0.08, 0.05], [0.45, 0.40, 0.30]])


def make_identity(seed: int, key: tuple) -> dict[str, Any]:
    """Face shape, colours and feature layout of one identity."""
    r = _rng(seed, 'identity', *key)
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * r.uniform() + r.normal(0, 0.02, 3)
    hair = _HAIR[r.integers(len(_HAIR))] * r.uniform(0.8, 1.15) + r.normal(0, 0.02, 3)
    lips = skin * np.array([0.85, 0.55, 0.55]) * r.uniform(0.8, 1.0) + r.normal(0, 0.02, 3)
    return {
        'head_w': r.uniform(0.36, 0.45), 'head_h': r.uniform(0.48, 0.58), 'jaw': r.uniform(0.1, 0.35),
        'skin': np.clip(skin, 0.05, 1.0),
        'eye_dx': r.uniform(0.14, 0.19), 'eye_y': r.uniform(-0.1, -0.03),
        'eye_w': r.uniform(0.055, 0.075), 'eye_h': r.uniform(0.022, 0.034),
        'iris': np.clip(_IRIS[r.integers(len(_IRIS))] + r.normal(0, 0.03, 3), 0, 1),
        'brow_gap': r.uniform(0.07, 0.1), 'brow_w': r.uniform(0.065, 0.09),
        'brow_h': r.uniform(0.01, 0.02), 'brow_tilt': r.uniform(-0.25, 0.2),
        'nose_len': r.uniform(0.16, 0.22), 'nose_w': r.uniform(0.035, 0.055),
        'mouth_gap': r.uniform(0.09, 0.13), 'mouth_w': r.uniform(0.08, 0.12),
        'lip_h': r.uniform(0.012, 0.024), 'smile': r.uniform(-0.6, 1.6),
        'lips': np.clip(lips, 0, 1), 'hair': np.clip(hair, 0.02, 1.0),
        'hair_style': int(r.integers(4)), 'hairline': r.uniform(-0.4, -0.28),
        'hair_wave': r.uniform(0.0, 0.05), 'clothes': r.uniform(0.05, 0.9, 3),
        'texture': r.uniform(0.02, 0.05),
    }


def make_scene(r: np.random.Generator) -> dict[str, Any]:
    """Per-image pose, light, gaze and background (not part of the identity)."""
    angle = r.uniform(0, 2 * math.pi)
    return {
        'tx': r.normal(0, 0.05), 'ty': r.normal(0.06, 0.04), 'rot': r.normal(0, 0.08),
        'scale': r.uniform(1.15, 1.4), 'yaw': r.uniform(-1, 1),
        'light': (math.cos(angle), math.sin(angle)), 'light_k': r.uniform(0.08, 0.3),
        'gaze': r.normal(0, 0.25, 2), 'bg_kind': int(r.integers(4)),
        'bg_colors': r.uniform(0.08, 0.92, (4, 3)), 'bg_seed': int(r.integers(1 << 31)),
        'exposure': r.uniform(0.92, 1.06),
    }


# ----------------------------------------------------------------------------- rendering

def _noise(r: np.random.Generator, size: int, cells: int, cells_x: int | None = None) -> np.ndarray:
    """Smooth value noise in [-1, 1] made by bicubic upsampling of a small random grid."""
    grid = r.uniform(-1, 1, (cells, cells_x or cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode='F').resize((size, size), Image.BICUBIC))


def _paint(img: np.ndarray, mask: np.ndarray, color: np.ndarray | float) -> None:
    """Alpha-composite `color` (RGB or full image) over `img` in place, only where mask > 0."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if isinstance(color, np.ndarray) and color.ndim == 3:
        color = color[box]
    sub = img[box]
    sub += mask[box][..., None] * (color - sub)


class _Canvas:
    """Pixel grid in face coordinates (head centre at 0, y down, head height about 0.55)."""

    def __init__(self, size: int, scene: dict[str, Any]):
        t = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
        gx, gy = np.meshgrid(t, t)
        c, s = math.cos(scene['rot']), math.sin(scene['rot'])
        ux, uy = (gx - scene['tx']) / scene['scale'], (gy - scene['ty']) / scene['scale']
        self.x, self.y = c * ux + s * uy, -s * ux + c * uy
        self.gx, self.gy = gx, gy
        self.aa = 2.0 / size / scene['scale']  # one pixel in face units, for anti-aliasing

    def soft(self, d: np.ndarray, width: float = 1.0) -> np.ndarray:
        """Anti-aliased inside mask from a signed distance (negative inside)."""
        return np.clip(0.5 - d / (self.aa * width), 0, 1)

    def ellipse(self, cx: float, cy: float, a: float, b: float, tilt: float = 0.0,
                feather: float = 1.0) -> np.ndarray:
        dx, dy = self.x - cx, self.y - cy
        if tilt:
            c, s = math.cos(tilt), math.sin(tilt)
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        d = (np.sqrt((dx / a) ** 2 + (dy / b) ** 2) - 1) * min(a, b)
        return self.soft(d, feather)


def _background(cv: _Canvas, size: int, scene: dict[str, Any]) -> np.ndarray:
    """Textured backdrop: gradient wall, stripes, bokeh blobs or a room corner."""
    r = np.random.default_rng(scene['bg_seed'])
    c = scene['bg_colors']
    gx, gy = cv.gx[..., None], cv.gy[..., None]
    kind = scene['bg_kind']
    if kind == 0:
        a = r.uniform(0, 2 * math.pi)
        t = np.clip(0.5 + 0.5 * (math.cos(a) * gx + math.sin(a) * gy), 0, 1)
        img = c[0] * (1 - t) + c[1] * t
    elif kind == 1:
        a, f = r.uniform(0, math.pi), r.uniform(4, 14)
        t = 0.5 + 0.5 * np.sin(f * (math.cos(a) * gx + math.sin(a) * gy) + r.uniform(0, 6))
        img = c[0] * (1 - t) + c[1] * t
    elif kind == 2:
        img = np.broadcast_to(c[0], (size, size, 3)).copy()
        for _ in range(int(r.integers(4, 9))):
            cx, cy, rad = r.uniform(-1, 1), r.uniform(-1, 1), r.uniform(0.1, 0.35)
            m = np.clip(1 - np.hypot(cv.gx - cx, cv.gy - cy) / rad, 0, 1) ** 0.7
            _paint(img, m * r.uniform(0.3, 0.8), r.uniform(0.1, 0.95, 3))
    else:
        horizon = r.uniform(0.1, 0.7)
        img = np.where(gy < horizon, c[0], c[1]).astype(np.float32)
        x0, y0 = r.uniform(-1, 0.3), r.uniform(-1, 0)
        win = (gx > x0) & (gx < x0 + r.uniform(0.2, 0.6)) & (gy > y0) & (gy < y0 + 0.5)
        img = np.where(win, c[2], img)
        img = np.asarray(Image.fromarray((img * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(size / 128)), dtype=np.float32) / 255
    tex = _noise(r, size, 6) * 0.08 + _noise(r, size, max(4, size // 8)) * 0.03
    return np.clip(img + tex[..., None], 0, 1).astype(np.float32)


def render_face(ident: dict[str, Any], scene: dict[str, Any], size: int,
                r: np.random.Generator) -> np.ndarray:
    """Draw one face over its background at `size` px; float32 HxWx3 in [0, 1]."""
    cv = _Canvas(size, scene)
    x, y = cv.x, cv.y
    img = _background(cv, size, scene)
    hw, hh, skin, hair = ident['head_w'], ident['head_h'], ident['skin'], ident['hair']
    hair_tex = 0.8 + 0.35 * _noise(r, size, max(2, size // 32), max(4, size // 3))[..., None]
    hair_img = hair * hair_tex
    style = ident['hair_style']
    # Long hair falls behind the head and shoulders.
    if style == 1:
        back = cv.ellipse(0, hh * 0.35, hw * 1.25, hh * 1.25) * cv.soft(y - hh * 1.4, 4)
        _paint(img, back, hair_img * 0.85)
    # Shoulders, neck and ears.
    _paint(img, cv.ellipse(0, hh + 0.62, 0.85, 0.5), ident['clothes'])
    neck = cv.soft(np.abs(x) - hw * 0.5) * cv.soft(hh * 0.4 - y) * cv.soft(y - (hh + 0.3))
    _paint(img, neck, skin * 0.8)
    ear_y = ident['eye_y'] + 0.06
    for side in (-1, 1):
        _paint(img, cv.ellipse(side * hw * 0.97, ear_y, 0.045, 0.085), skin * 0.9)
    # Head: ellipse narrowed towards the chin.
    yn = np.clip(y / hh, 0, 1)
    head_x = x / (1 - ident['jaw'] * yn ** 1.6)
    head_d = (np.sqrt((head_x / hw) ** 2 + (y / hh) ** 2) - 1) * hw
    head = cv.soft(head_d)
    skin_tex = 1 + ident['texture'] * _noise(r, size, max(4, min(128, size // 2)))[..., None]
    _paint(img, head, skin * skin_tex)
    # Features follow the yaw: shifted sideways, with the far side a little narrower.
    fx = scene['yaw'] * 0.07
    eye_y, eye_w, eye_h = ident['eye_y'], ident['eye_w'], ident['eye_h']
    for side in (-1, 1):
        squash = 1 - 0.15 * scene['yaw'] * side
        ex = fx + side * ident['eye_dx'] * squash
        sclera = cv.ellipse(ex, eye_y, eye_w * squash, eye_h)
        _paint(img, sclera, np.array([0.93, 0.91, 0.88]) * (0.6 + 0.4 * skin.mean()))
        gx, gy = scene['gaze'] * eye_h * 0.6
        iris = cv.ellipse(ex + gx, eye_y + gy, eye_h * 0.95, eye_h * 0.95) * sclera
        _paint(img, iris, ident['iris'])
        _paint(img, cv.ellipse(ex + gx, eye_y + gy, eye_h * 0.42, eye_h * 0.42) * sclera, 0.03)
        _paint(img, cv.ellipse(ex + gx + eye_h * 0.3, eye_y + gy - eye_h * 0.3, eye_h * 0.15,
                               eye_h * 0.15) * sclera, 0.95)
        ring = np.abs(np.sqrt(((x - ex) / (eye_w * squash)) ** 2 + ((y - eye_y) / eye_h) ** 2) - 1)
        lid = cv.soft(ring * eye_h - eye_h * 0.12) * cv.soft(y - eye_y + eye_h * 0.2)
        _paint(img, lid, skin * 0.25)
        bx, by = ex + side * 0.01, eye_y - ident['brow_gap']
        brow = cv.ellipse(bx, by, ident['brow_w'] * squash, ident['brow_h'],
                          tilt=side * ident['brow_tilt'])
        _paint(img, brow * 0.9, hair * 0.7)
    # Nose: shadowed ridge on the side away from the light, nostrils, a highlight on the tip.
    lx, ly = scene['light']
    tip_y = eye_y + ident['nose_len']
    nw = ident['nose_w']
    ridge = cv.ellipse(fx - lx * nw * 0.6, eye_y + ident['nose_len'] * 0.55, nw * 0.25,
                       ident['nose_len'] * 0.45, feather=3)
    _paint(img, ridge * 0.35, skin * 0.55)
    _paint(img, cv.ellipse(fx, tip_y - 0.005, nw * 0.9, nw * 0.45, feather=3) * 0.3, skin * 0.7)
    for side in (-1, 1):
        _paint(img, cv.ellipse(fx + side * nw * 0.45, tip_y + 0.005, nw * 0.22, nw * 0.13) * 0.7,
               skin * 0.3)
    _paint(img, cv.ellipse(fx + lx * nw * 0.3, tip_y - nw * 0.35, nw * 0.3, nw * 0.2,
                           feather=3) * 0.35, np.minimum(skin * 1.3, 1))
    # Mouth: two lips and a curved parting line.
    my, mw, lh = tip_y + ident['mouth_gap'], ident['mouth_w'], ident['lip_h']
    curve = ident['smile'] * 0.03 * (((x - fx) / mw) ** 2 - 0.5)
    width = cv.soft(np.abs(x - fx) - mw, 2)
    upper = cv.soft(np.abs(y - (my - lh * 0.5) + curve) - lh * 0.5) * width
    lower = cv.soft(np.abs(y - (my + lh * 0.7) + curve) - lh * 0.7) * width
    _paint(img, np.maximum(upper, lower), ident['lips'])
    _paint(img, cv.soft(np.abs(y - my + curve) - cv.aa * 0.6) * width * 0.8, ident['lips'] * 0.3)
    # Hair on top of the head, in four styles.
    if style != 2:
        grow = 1.12 if style != 3 else 1.3
        ang = np.arctan2(y, x)
        bumps = 1 + (0.06 * np.sin(ang * 14) if style == 3 else 0)
        crown = cv.soft((np.sqrt((x / (hw * grow)) ** 2 + (y / (hh * 1.08)) ** 2) - bumps) * hw)
        line = ident['hairline'] + ident['hair_wave'] * np.sin(x * 9 + 1.7) + 0.25 * (x / hw) ** 4
        top = crown * cv.soft(y - line, 3)
        if style == 1:
            top = np.maximum(top, crown * cv.soft(hw * 0.8 - np.abs(x), 3) * cv.soft(y - hh * 0.3))
        _paint(img, top, hair_img)
    else:
        _paint(img, head * cv.soft(y - ident['hairline'] + 0.08, 6) * 0.55, hair_img)
    # Directional light over the whole head and a softer one over the scene.
    nx, ny = x / hw, y / hh
    shade = 1 + scene['light_k'] * (lx * nx + ly * ny) - 0.18 * np.clip(nx ** 2 + ny ** 2, 0, 1)
    scene_light = 1 + scene['light_k'] * 0.4 * (lx * cv.gx + ly * cv.gy)
    light = np.where(head > 0, 1 + (shade - 1) * head, scene_light)
    img *= (light * scene['exposure'])[..., None]
    return np.clip(img, 0, 1)


# ----------------------------------------------------------------------------- camera & fakes

def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian lens blur (PIL, per channel) of a float image."""
    out = Image.fromarray(_to_uint8(img)).filter(ImageFilter.GaussianBlur(sigma))
    return np.asarray(out, dtype=np.float32) / 255


def _sensor_noise(img: np.ndarray, r: np.random.Generator, std: float) -> np.ndarray:
    """Luminance-dependent shot noise plus weaker colour noise, in 8-bit units."""
    h, w, _ = img.shape
    luma = r.standard_normal((h, w, 1), dtype=np.float32) * (std / 255)
    chroma = r.standard_normal((h, w, 3), dtype=np.float32) * (std * 0.35 / 255)
    return img + luma * (0.6 + 0.6 * np.sqrt(img.mean(2, keepdims=True))) + chroma


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """In-memory JPEG round trip, the compression every shared image went through."""
    buf = io.BytesIO()
    Image.fromarray(_to_uint8(img)).save(buf, format='JPEG', quality=quality)
    return np.asarray(Image.open(buf).convert('RGB'), dtype=np.float32) / 255


def _camera_capture(img: np.ndarray, r: np.random.Generator) -> np.ndarray:
    """Lens blur and sensor noise of a photo, before any editing."""
    return _sensor_noise(_blur(img, r.uniform(0.3, 0.9)), r, r.uniform(1.5, 4.5))


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    out = Image.fromarray(_to_uint8(img)).resize((size, size), Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255


def face_swap(target: dict[str, Any], source: dict[str, Any], scene: dict[str, Any],
              r: np.random.Generator) -> np.ndarray:
    """Warp the source's inner face onto the target photo with a soft mask, leaving swap traces.

    Traces, each with a random strength: the inner face comes from a low-resolution render that
    is upsampled (no sensor noise, soft edges), its colours are only partly matched to the target,
    and the mask border leaves a brightness seam.
    """
    photo = _camera_capture(render_face(target, scene, SIZE, r), r)
    # The swap model reproduces the target's layout (landmark alignment) with the source's look.
    layout = ('head_w', 'head_h', 'jaw', 'eye_dx', 'eye_y', 'brow_gap', 'nose_len', 'mouth_gap')
    swapped = {**source, **{k: target[k] for k in layout}, 'hair_style': 2, 'hairline': -2.0}
    aligned = {**scene, 'tx': scene['tx'] + r.normal(0, 0.008), 'ty': scene['ty'] + r.normal(0, 0.008),
               'rot': scene['rot'] + r.normal(0, 0.02), 'scale': scene['scale'] * r.uniform(0.98, 1.02)}
    low = int(SIZE * r.uniform(0.28, 0.5))
    face = _resize(render_face(swapped, aligned, low, r), SIZE)
    cv = _Canvas(SIZE, scene)
    fx = scene['yaw'] * 0.07
    top = target['eye_y'] - target['brow_gap'] - 0.04
    bottom = target['eye_y'] + target['nose_len'] + target['mouth_gap'] + 0.06
    feather = r.uniform(0.015, 0.06)
    a, b = target['eye_dx'] + target['eye_w'] + 0.03, (bottom - top) / 2
    d = (np.sqrt(((cv.x - fx) / a) ** 2 + ((cv.y - (top + bottom) / 2) / b) ** 2) - 1) * b
    mask = np.clip(0.5 - d / feather, 0, 1)
    # Imperfect colour transfer: move the source's mean towards the target's inside the mask.
    w = mask[..., None] / mask.sum()
    shift = (photo * w).sum((0, 1)) - (face * w).sum((0, 1))
    face = face + shift * r.uniform(0.5, 0.9) + r.normal(0, 0.015, 3)
    seam = 4 * mask * (1 - mask) * r.uniform(0.015, 0.06) * r.choice([-1.0, 1.0])
    out = photo * (1 - mask[..., None]) + face * mask[..., None] + seam[..., None]
    return np.clip(out, 0, 1)


def _bilinear_kernel() -> np.ndarray:
    k1 = np.array([0.25, 0.75, 0.75, 0.25])
    return np.outer(k1, k1)


def gan_kernels(seed: int) -> list[tuple[np.ndarray, int, int]]:
    """Fixed random (weight, stride, padding) of the synthetic 'generator's ConvT layers.

    A stride-2 bilinear upsampler and a 3x3 refinement, each plus a zero-sum random perturbation:
    colours survive but the output phases of the stride-2 layer differ slightly, the periodic
    spectral fingerprint of transposed convolutions.
    """
    r = _rng(seed, 'gan_kernels')
    delta = np.zeros((3, 3))
    delta[1, 1] = 1
    layers = []
    for base, stride, strength in ((_bilinear_kernel(), 2, GAN_STRENGTH), (delta, 1, GAN_STRENGTH / 2)):
        k = base.shape[0]
        w = np.einsum('io,hw->iohw', np.eye(3), base)
        noise = r.normal(0, 1, (3, 3, k, k)) * (np.eye(3)[..., None, None] + 0.3)
        noise -= noise.mean((2, 3), keepdims=True)
        layers.append(((w + strength * noise).astype(np.float32), stride, (k - stride) // 2))
    return layers


def conv_transpose(img: np.ndarray, weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """ConvTranspose2d of an HxWxC image, as torch computes it; weight is Cin x Cout x k x k."""
    h, w, _ = img.shape
    k = weight.shape[-1]
    oh, ow = (h - 1) * stride + k, (w - 1) * stride + k
    out = np.zeros((oh, ow, weight.shape[1]), dtype=np.float32)
    for ky in range(k):
        for kx in range(k):
            out[ky:ky + (h - 1) * stride + 1:stride, kx:kx + (w - 1) * stride + 1:stride] += (
                img @ weight[:, :, ky, kx])
    return out[padding:oh - padding, padding:ow - padding]


def gan_image(ident: dict[str, Any], scene: dict[str, Any],
              layers: list[tuple[np.ndarray, int, int]], r: np.random.Generator) -> np.ndarray:
    """Low-resolution render brought to 256 px by the fixed ConvT stack, with noise injection."""
    x = render_face(ident, scene, SYNTH_RENDER_SIZE, r)
    noise = r.uniform(3, 7) / 255  # per-layer noise injection, about as much as sensor noise
    for weight, stride, padding in layers:
        x = x + r.standard_normal(x.shape, dtype=np.float32) * noise
        x = conv_transpose(x, weight, stride, padding)
    return np.clip(x, 0, 1)


def make_image(seed: int, dataset: str, split: str, class_name: str, index: int) -> np.ndarray:
    """The uint8 256x256x3 image number `index` of one folder; a pure function of its arguments."""
    r = _rng(seed, dataset, split, class_name, index)
    target_key, source_key = identity_key(seed, dataset, split, class_name, index)
    ident = make_identity(seed, target_key)
    scene = make_scene(r)
    if dataset == 'fakes_dataset' and class_name == 'fake':
        img = face_swap(ident, make_identity(seed, source_key), scene, r)
    elif dataset == 'synthetic_dataset' and class_name == 'fake':
        img = gan_image(ident, scene, gan_kernels(seed), r)
    else:
        img = _camera_capture(render_face(ident, scene, SIZE, r), r)
    return _to_uint8(_jpeg(img, int(r.integers(80, 96))))


# ----------------------------------------------------------------------------- writing

def resolve_scale(scale: str | Mapping) -> tuple[str, Counts]:
    """Name and counts of a scale given by name (see SCALES) or as a custom counts mapping."""
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f'unknown --scale {scale!r}; choose one of {", ".join(SCALES)}')
        return scale, SCALES[scale]
    counts: Counts = {}
    for dataset, splits in scale.items():
        if dataset not in DATASETS:
            raise ValueError(f'unknown dataset {dataset!r} in scale; expected {DATASETS}')
        counts[dataset] = {}
        for split, classes in splits.items():
            if split not in SPLITS or set(classes) != set(CLASSES):
                raise ValueError(f'bad scale entry {dataset}/{split}: need split in {SPLITS} '
                                 f'and exactly the classes {CLASSES}, got {dict(classes)}')
            if any(int(n) < 1 for n in classes.values()):
                raise ValueError(f'scale entry {dataset}/{split} needs at least one image per class')
            counts[dataset][split] = {c: int(classes[c]) for c in CLASSES}
    return 'custom', counts


def _tasks(counts: Counts) -> Iterator[tuple[str, str, str, int]]:
    for dataset, splits in counts.items():
        for split, classes in splits.items():
            for class_name in CLASSES:
                for index in range(classes[class_name]):
                    yield dataset, split, class_name, index


def _rel_path(dataset: str, split: str, class_name: str, index: int) -> str:
    return f'{dataset}/{split}/{class_name}/{index:05d}.png'


def _write_one(job: tuple[str, int, str, str, str, int]) -> tuple[str, str]:
    """Worker: render one image, save it as PNG under `root`, return (relative path, sha256)."""
    root, seed, dataset, split, class_name, index = job
    rel = _rel_path(dataset, split, class_name, index)
    buf = io.BytesIO()
    Image.fromarray(make_image(seed, dataset, split, class_name, index)).save(
        buf, format='PNG', compress_level=1)
    data = buf.getvalue()
    (Path(root) / rel).write_bytes(data)
    return rel, hashlib.sha256(data).hexdigest()


def _manifest(seed: int, scale_name: str, counts: Counts, files: dict[str, str]) -> dict:
    return {
        'generator': 'make_demo_datasets.py', 'version': GENERATOR_VERSION, 'seed': seed,
        'scale': scale_name, 'image_size': SIZE,
        'note': 'Procedural demo data, a stand-in for the course datasets (not real faces).',
        'counts': {f'{d}/{s}/{c}': n for d, splits in counts.items()
                   for s, classes in splits.items() for c, n in classes.items()},
        'files': dict(sorted(files.items())),
    }


def read_manifest(root: str | Path) -> dict | None:
    """The parsed <root>/MANIFEST.json, or None when it is absent or not valid JSON."""
    path = Path(root) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_digest(root: str | Path) -> str | None:
    """SHA-256 of the manifest file's bytes: one short fingerprint of the whole dataset."""
    path = Path(root) / MANIFEST_NAME
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _is_complete(root: Path, expected: dict) -> bool:
    """True when root holds a manifest equal to `expected` (minus files) and every listed file."""
    found = read_manifest(root)
    if not found:
        return False
    keys = ('version', 'seed', 'scale', 'counts', 'image_size')
    if any(found.get(k) != expected[k] for k in keys):
        return False
    files = found.get('files', {})
    if len(files) != sum(expected['counts'].values()):
        return False
    for rel, digest in files.items():
        path = root / rel
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return False
    return True


def _check_replaceable(out: Path) -> None:
    """Refuse to delete a folder that is not (a partial) demo dataset."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f'--out {out} exists and is not a folder; pick another --out')
    extra = sorted(p.name for p in out.iterdir() if p.name not in (*DATASETS, MANIFEST_NAME))
    if extra:
        raise ValueError(f'--out {out} exists and holds files that are not demo data ({extra[:3]});'
                         ' refusing to replace it: pick another --out or remove it yourself')


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_stale_builds(out: Path) -> None:
    """Delete hidden build folders next to `out` left by runs that were killed."""
    for path in sorted(out.parent.glob(f'.{out.name}.*-*')):
        kind, _, pid = path.name.rpartition('-')
        if kind.endswith(('.tmp', '.old')) and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _render_all(jobs: list[tuple], workers: int, desc: str, progress: bool) -> dict[str, str]:
    """Run `_write_one` over all jobs (in a process pool when workers > 1); path -> sha256."""
    from tqdm import tqdm

    files: dict[str, str] = {}
    with tqdm(total=len(jobs), desc=desc, unit='img', disable=None if progress else True) as bar:
        if workers == 1:
            for rel, digest in map(_write_one, jobs):
                files[rel] = digest
                bar.update()
            return files
        with multiprocessing.get_context().Pool(workers) as pool:  # terminated on error
            for rel, digest in pool.imap_unordered(_write_one, jobs, chunksize=8):
                files[rel] = digest
                bar.update()
    return files


def generate_demo_datasets(out: str | Path, scale: str | Mapping = 'small', seed: int = 0,
                           workers: int | None = None, progress: bool = True) -> Path:
    """Write (or reuse) the demo datasets under `out`; returns `out` as a Path.

    `scale` is a name from SCALES or a custom mapping dataset -> split -> {'real': n, 'fake': m}.
    The output is built in a hidden sibling folder and renamed into place only when complete.
    """
    out = Path(out)
    scale_name, counts = resolve_scale(scale)
    expected = _manifest(seed, scale_name, counts, {})
    if _is_complete(out, expected):
        if progress:
            print(f'demo datasets: reusing complete {out} (scale {scale_name}, seed {seed}, '
                  f'manifest {manifest_digest(out)[:12]})', file=sys.stderr)
        return out
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(out)
    tmp = out.parent / f'.{out.name}.tmp-{os.getpid()}'
    old = out.parent / f'.{out.name}.old-{os.getpid()}'
    jobs = [(str(tmp), seed, *task) for task in _tasks(counts)]
    workers = min(workers or _default_workers(), max(1, len(jobs) // 8))
    start = time.perf_counter()
    try:
        for dataset, splits in counts.items():
            for split in splits:
                for class_name in CLASSES:
                    (tmp / dataset / split / class_name).mkdir(parents=True)
        files = _render_all(jobs, workers, f'demo datasets ({scale_name})', progress)
        text = json.dumps(_manifest(seed, scale_name, counts, files), indent=1) + '\n'
        (tmp / MANIFEST_NAME).write_text(text)  # written last: a manifest means a complete build
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    if progress:
        print(f'demo datasets: wrote {len(files)} images to {out} in '
              f'{time.perf_counter() - start:.1f}s with {workers} worker(s); '
              'this is procedural demo data, not the course data', file=sys.stderr)
    return out


def sample_grid(seed: int = 0, per_class: int = 3, tile: int = 128) -> Image.Image:
    """A labelled grid for docs: one row per (dataset, class), `per_class` train images each."""
    from PIL import ImageDraw

    label_w = 150
    rows = [(d, c) for d in DATASETS for c in CLASSES]
    grid = Image.new('RGB', (label_w + per_class * tile, len(rows) * tile), 'white')
    draw = ImageDraw.Draw(grid)
    for row, (dataset, class_name) in enumerate(rows):
        draw.text((6, row * tile + tile // 2 - 12), f'{dataset}\n{class_name}', fill='black')
        for col in range(per_class):
            image = Image.fromarray(make_image(seed, dataset, 'train', class_name, col))
            grid.paste(image.resize((tile, tile), Image.LANCZOS), (label_w + col * tile, row * tile))
    return grid


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='demo_datasets', help='output folder (default: %(default)s)')
    parser.add_argument('--scale', default='small', choices=list(SCALES),
                        help='dataset size (default: %(default)s): ' + '; '.join(
                            f'{k}: fakes {sum(sum(c.values()) for c in v["fakes_dataset"].values())},'
                            f' synthetic {sum(sum(c.values()) for c in v["synthetic_dataset"].values())}'
                            for k, v in SCALES.items()))
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: %(default)s)')
    parser.add_argument('--workers', type=int, default=None,
                        help='worker processes (default: number of CPUs)')
    parser.add_argument('--sample-grid', metavar='PNG', default=None,
                        help='only write a small labelled grid of samples (docs figure) to PNG')
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error('--workers must be at least 1')
    if args.sample_grid:
        Path(args.sample_grid).parent.mkdir(parents=True, exist_ok=True)
        grid = sample_grid(args.seed)  # a dithered 256-colour palette keeps the docs figure small
        grid = grid.quantize(palette=grid.quantize(256), dither=Image.Dither.FLOYDSTEINBERG)
        grid.save(args.sample_grid, optimize=True)
        print(args.sample_grid)
        return 0
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so a killed run removes its build folder
    try:
        root = generate_demo_datasets(args.out, args.scale, args.seed, args.workers)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(root)
    return 0


if __name__ == '__main__':
    sys.exit(main())
