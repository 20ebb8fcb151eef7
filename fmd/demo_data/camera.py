"""What a camera and image sharing do to a picture: lens blur, sensor noise, resizing and JPEG."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to 8-bit pixels, rounded and clipped."""
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def _to_float(image: Image.Image) -> np.ndarray:
    """8-bit PIL image back to float32 in [0, 1], the working format of the renderer."""
    return np.asarray(image, dtype=np.float32) / 255


def lens_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `sigma` pixels, the softness of a real lens."""
    return _to_float(Image.fromarray(to_uint8(image)).filter(ImageFilter.GaussianBlur(sigma)))


def sensor_noise(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness-dependent shot noise plus weaker colour noise; `strength` is in 8-bit units."""
    height, width, _ = image.shape
    luma = rng.standard_normal((height, width, 1), dtype=np.float32) * (strength / 255)
    chroma = rng.standard_normal((height, width, 3), dtype=np.float32) * (strength * 0.35 / 255)
    return image + luma * (0.6 + 0.6 * np.sqrt(image.mean(2, keepdims=True))) + chroma


def camera_capture(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo of a rendered scene: lens blur, then sensor noise, both of random strength."""
    blurred = lens_blur(image, rng.uniform(0.3, 0.9))
    return sensor_noise(blurred, rng, rng.uniform(1.5, 4.5))


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize to size x size, as a cheap face-swap model upsamples its output."""
    return _to_float(Image.fromarray(to_uint8(image)).resize((size, size), Image.BILINEAR))


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Compress and decode as JPEG in memory: every shared picture, real or fake, went through it."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format='JPEG', quality=quality)
    return _to_float(Image.open(buffer).convert('RGB'))
