"""Small pure image operations the self-blend recipe draws from: each takes its parameters explicitly.

Every function takes and returns a float32 HxWx3 image on the 0-255 scale (no clipping unless it
says so), so a chain of them rounds once, at the end. `fmd.data.self_blend` draws the parameters.
"""
from __future__ import annotations

import numpy as np


def resize(image: np.ndarray, side: int, interpolation: str) -> np.ndarray:
    """`image` resized to side x side with OpenCV's 'area', 'nearest', 'linear' or 'cubic'."""
    import cv2

    flags = {'area': cv2.INTER_AREA, 'nearest': cv2.INTER_NEAREST, 'linear': cv2.INTER_LINEAR,
             'cubic': cv2.INTER_CUBIC}
    return cv2.resize(image, (side, side), interpolation=flags[interpolation])


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """SBI's RandomDownScale: nearest-neighbour down by `factor`, bilinear back up (detail lost, aliased)."""
    import cv2

    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // factor), max(1, height // factor)),
                       interpolation=cv2.INTER_NEAREST)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def sharpen_kernel(alpha: float, lightness: float) -> np.ndarray:
    """3x3 kernel (1 - alpha) * identity + alpha * [[-1,-1,-1],[-1,8+lightness,-1],[-1,-1,-1]]."""
    effect = -np.ones((3, 3), np.float32)
    effect[1, 1] = 8 + lightness
    identity = np.zeros((3, 3), np.float32)
    identity[1, 1] = 1
    return (1 - alpha) * identity + alpha * effect


def sharpen(image: np.ndarray, alpha: float, lightness: float) -> np.ndarray:
    """Laplacian sharpening (the kernel of `sharpen_kernel`), borders reflected."""
    import cv2

    return cv2.filter2D(image, -1, sharpen_kernel(alpha, lightness), borderType=cv2.BORDER_REFLECT_101)


def brightness_contrast(image: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    """albumentations' RandomBrightnessContrast: image * (1 + contrast) + brightness * 255."""
    return image * np.float32(1 + contrast) + np.float32(255 * brightness)


def rgb_shift(image: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Add a per-channel shift (3 levels)."""
    return image + shift.astype(np.float32)


def saturation(image: np.ndarray, scale: float) -> np.ndarray:
    """Scale each pixel's distance from its grey level (0 = grey, 1 = unchanged)."""
    import cv2

    grey = cv2.transform(image, np.array([[0.299, 0.587, 0.114]], np.float32))[..., None]
    return grey + np.float32(scale) * (image - grey)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation `sigma` px (kernel from OpenCV's rule), borders reflected."""
    import cv2

    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Clip, round to uint8, JPEG-encode at `quality` (4:2:0, OpenCV/libjpeg) and decode again."""
    import cv2

    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode('.jpg', cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f'JPEG encoding at quality {quality} failed')
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32)


def affine(image: np.ndarray, shift: tuple[float, float], scale: float, nearest: bool = False) -> np.ndarray:
    """Scale about the centre by `scale`, then move by `shift` (fractions of width, height)."""
    import cv2

    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, scale)
    matrix[:, 2] += (shift[0] * width, shift[1] * height)
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    border = cv2.BORDER_CONSTANT if nearest else cv2.BORDER_REFLECT_101
    return cv2.warpAffine(image, matrix, (width, height), flags=flags, borderMode=border)


def elastic(mask: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """Move each pixel of a HxW mask by the HxWx2 (dx, dy) field (nearest neighbour, zeros outside)."""
    import cv2

    height, width = mask.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(mask, grid_x + displacement[..., 0], grid_y + displacement[..., 1],
                     interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round half to even and clip into uint8."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
