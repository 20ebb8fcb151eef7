"""The two kinds of fake: a face swap that leaves blending traces, and GAN-like transposed-conv upsampling."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from .camera import camera_capture, resize
from .canvas import Canvas
from .faces import BUZZ_CUT, Identity, Scene
from .layout import IMAGE_SIZE
from .render import render_face
from .seeding import keyed_rng

# What the swap model takes from the target: the landmark layout, so the new face lines up.
LAYOUT_FIELDS = ('head_half_width', 'head_half_height', 'jaw_taper', 'eye_offset', 'eye_level',
                 'brow_above_eye', 'nose_length', 'mouth_below_nose')
GAN_RENDER_SIZE = 128  # synthetic fakes are rendered here, then upsampled to IMAGE_SIZE
KERNEL_PERTURBATION = 0.012  # size of the random part of the upsampling kernels (the fingerprint)


def face_swap(target: Identity, source: Identity, scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """The source's inner face blended onto a photo of the target, leaving swap traces.

    Traces, each of random strength: the inner face is rendered at low resolution and upsampled
    (no sensor noise, soft edges), its colours are only partly matched, and the blend leaves a seam.
    """
    photo = camera_capture(render_face(target, scene, IMAGE_SIZE, rng), rng)
    swapped = dataclasses.replace(source, **{field: getattr(target, field) for field in LAYOUT_FIELDS},
                                  hair_style=BUZZ_CUT, hairline=-2.0)  # hairline above the head: no hair
    aligned = dataclasses.replace(  # landmark alignment is a little off
        scene, offset_x=scene.offset_x + rng.normal(0, 0.008),
        offset_y=scene.offset_y + rng.normal(0, 0.008), rotation=scene.rotation + rng.normal(0, 0.02),
        zoom=scene.zoom * rng.uniform(0.98, 1.02))
    low_resolution = int(IMAGE_SIZE * rng.uniform(0.28, 0.5))
    face = resize(render_face(swapped, aligned, low_resolution, rng), IMAGE_SIZE)
    mask = _inner_face_mask(Canvas(IMAGE_SIZE, scene), target, scene, feather=rng.uniform(0.015, 0.06))
    # Imperfect colour transfer: move the source's mean towards the target's inside the mask.
    weights = mask[..., None] / mask.sum()
    shift = (photo * weights).sum((0, 1)) - (face * weights).sum((0, 1))
    face = face + shift * rng.uniform(0.5, 0.9) + rng.normal(0, 0.015, 3)
    seam = 4 * mask * (1 - mask) * rng.uniform(0.015, 0.06) * rng.choice([-1.0, 1.0])
    blended = photo * (1 - mask[..., None]) + face * mask[..., None] + seam[..., None]
    return np.clip(blended, 0, 1)


def _inner_face_mask(canvas: Canvas, target: Identity, scene: Scene, feather: float) -> np.ndarray:
    """Soft ellipse from the brows to below the mouth, the region a swap model replaces."""
    top = target.eye_level - target.brow_above_eye - 0.04
    bottom = target.mouth_level + 0.06
    half_width, half_height = target.eye_offset + target.eye_half_width + 0.03, (bottom - top) / 2
    distance = (np.sqrt(((canvas.x - scene.feature_shift) / half_width) ** 2
                        + ((canvas.y - (top + bottom) / 2) / half_height) ** 2) - 1) * half_height
    return np.clip(0.5 - distance / feather, 0, 1)


class UpsamplingLayer(NamedTuple):
    """One transposed convolution: weight (in channels, out channels, k, k), stride, padding."""

    weight: np.ndarray
    stride: int
    padding: int


def upsampling_layers(seed: int) -> list[UpsamplingLayer]:
    """The fixed layers of the synthetic 'generator', the same for every image of a seed.

    A stride-2 bilinear upsampler and a 3x3 refinement, each plus a zero-sum random perturbation:
    colours survive, but the four output phases of the stride-2 layer differ slightly, the periodic
    spectral fingerprint of transposed convolutions.
    """
    rng = keyed_rng(seed, 'gan_kernels')
    bilinear_1d = np.array([0.25, 0.75, 0.75, 0.25])
    identity_3x3 = np.zeros((3, 3))
    identity_3x3[1, 1] = 1
    layers = []
    for base, stride, strength in ((np.outer(bilinear_1d, bilinear_1d), 2, KERNEL_PERTURBATION),
                                   (identity_3x3, 1, KERNEL_PERTURBATION / 2)):
        size = base.shape[0]
        weight = np.einsum('io,hw->iohw', np.eye(3), base)  # each colour channel to itself
        perturbation = rng.normal(0, 1, (3, 3, size, size)) * (np.eye(3)[..., None, None] + 0.3)
        perturbation -= perturbation.mean((2, 3), keepdims=True)
        layers.append(UpsamplingLayer((weight + strength * perturbation).astype(np.float32), stride,
                                      (size - stride) // 2))
    return layers


def transposed_convolution(image: np.ndarray, layer: UpsamplingLayer) -> np.ndarray:
    """One transposed convolution (torch's conv_transpose2d) of a float32 HxWxC image."""
    import torch  # here, not at the top: importing torch takes seconds and only this needs it

    batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    output = torch.nn.functional.conv_transpose2d(batch, torch.from_numpy(layer.weight),
                                                 stride=layer.stride, padding=layer.padding)
    return output[0].permute(1, 2, 0).numpy()


def gan_like_image(identity: Identity, scene: Scene, layers: list[UpsamplingLayer],
                   rng: np.random.Generator) -> np.ndarray:
    """A low-resolution render brought to full size by the fixed layers, with noise injection."""
    image = render_face(identity, scene, GAN_RENDER_SIZE, rng)
    noise = rng.uniform(3, 7) / 255  # injected before each layer, about as strong as sensor noise
    with _one_torch_thread():
        for layer in layers:
            image = image + rng.standard_normal(image.shape, dtype=np.float32) * noise
            image = transposed_convolution(image, layer)
    return np.clip(image, 0, 1)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: the same bytes whatever the caller's setting, safe in forked workers."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
