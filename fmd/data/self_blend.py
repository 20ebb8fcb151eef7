"""Self-blended images: a training fake made from one real face and its 68 landmarks.

After Self-Blended Images (Shiohara & Yamasaki, CVPR 2022) and Face X-ray (Li et al., CVPR 2020): a
real face is blended with a slightly altered copy of itself inside a soft landmark mask, so the fake
carries the traces every face manipulation leaves (a blending boundary, a colour and frequency
mismatch between the pasted region and its surroundings) and nothing specific to one forgery method.

`self_blend(face, landmarks, rng)` returns `(fake, mask)`: `fake = mask * source + (1 - mask) * face`,
rounded to uint8, where `source` is the same face after a random colour change, sharpen or blur,
down-and-up resize and small shift/scale. Outside the mask (mask == 0) the fake is the face byte for
byte. Everything random comes from the numpy Generator passed in: same generator state, same bytes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# dlib's 68-point numbering (fmd.data.landmarks). The eye parts include their brows, as pasted eyes do.
PART_POINTS: dict[str, tuple[int, ...]] = {
    'left_eye': (*range(17, 22), *range(36, 42)),   # the eye on the image's left (subject's right)
    'right_eye': (*range(22, 27), *range(42, 48)),  # the eye on the image's right
    'nose': tuple(range(27, 36)),
    'mouth': tuple(range(48, 60)),
}
PARTS = tuple(PART_POINTS)
WHOLE_FACE = 'face'  # the hull of all 68 points


@dataclass(frozen=True)
class BlendSettings:
    """The ranges every random draw is taken from; pixel sizes are for 256x256 faces."""

    whole_face_probability: float = 0.5   # else a random non-empty set of PARTS
    jitter: float = 3.0                   # each landmark moves up to this many px along x and y
    face_dilation: tuple[int, int] = (-6, 6)   # px; negative erodes the whole-face hull
    part_dilation: tuple[int, int] = (2, 10)   # px; parts' hulls are small, so they only grow
    blur_radius: tuple[int, int] = (2, 10)     # px; the Gaussian kernel is 2r+1 wide, sigma r/2
    full_strength_probability: float = 0.5     # else the mask is scaled by U(min_strength, 1)
    min_strength: float = 0.5
    colour_shift: float = 12.0            # per-channel RGB shift, up to this many levels
    hue_shift: float = 6.0                # OpenCV hue units (180 = a full turn)
    saturation_scale: float = 0.15        # x U(1 - s, 1 + s)
    brightness_shift: float = 0.08        # x 255
    contrast_scale: float = 0.15          # around the mean
    resize_factor: tuple[float, float] = (0.5, 0.9)
    max_shift: float = 0.03               # of the side
    scale_range: float = 0.04             # x U(1 - s, 1 + s)

    def mask_bound(self) -> float:
        """How far (px, Euclidean) the mask's support can reach beyond the chosen landmarks' hulls."""
        dilation = max(self.face_dilation[1], self.part_dilation[1])
        return math.sqrt(2) * (self.jitter + self.blur_radius[1]) + dilation + 1.0


DEFAULT_SETTINGS = BlendSettings()


def choose_parts(rng: np.random.Generator, settings: BlendSettings = DEFAULT_SETTINGS) -> tuple[str, ...]:
    """('face',) or a non-empty subset of PARTS, as in the ciplab composites."""
    if rng.random() < settings.whole_face_probability:
        return (WHOLE_FACE,)
    code = int(rng.integers(1, 2 ** len(PARTS)))
    return tuple(part for bit, part in enumerate(PARTS) if code >> bit & 1)


def part_points(landmarks: np.ndarray, part: str) -> np.ndarray:
    """The landmarks of one part (all 68 for 'face')."""
    return landmarks if part == WHOLE_FACE else landmarks[list(PART_POINTS[part])]


def hull_mask(points_per_part: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """uint8 0/1 mask: the union of the convex hulls of each point set."""
    import cv2

    mask = np.zeros(shape, dtype=np.uint8)
    for points in points_per_part:
        hull = cv2.convexHull(np.round(points).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    return mask


def blend_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator,
               settings: BlendSettings = DEFAULT_SETTINGS) -> tuple[np.ndarray, tuple[str, ...]]:
    """(float32 HxW mask in [0, 1], the parts it covers): jittered hulls, dilated or eroded, blurred,
    scaled by a random strength."""
    import cv2

    parts = choose_parts(rng, settings)
    jittered = [part_points(landmarks, part) + rng.uniform(-settings.jitter, settings.jitter,
                                                           (len(part_points(landmarks, part)), 2))
                for part in parts]
    mask = hull_mask(jittered, shape)
    low, high = settings.face_dilation if parts == (WHOLE_FACE,) else settings.part_dilation
    radius = int(rng.integers(low, high + 1))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1,) * 2)
        eroded = cv2.erode(mask, kernel) if radius < 0 else None
        mask = cv2.dilate(mask, kernel) if radius > 0 else (eroded if eroded.any() else mask)
    blur = int(rng.integers(settings.blur_radius[0], settings.blur_radius[1] + 1))
    soft = cv2.GaussianBlur(mask.astype(np.float32), (2 * blur + 1,) * 2, blur / 2,
                            borderType=cv2.BORDER_CONSTANT)
    strength = 1.0 if rng.random() < settings.full_strength_probability else \
        rng.uniform(settings.min_strength, 1.0)
    return np.clip(soft * np.float32(strength), 0.0, 1.0), parts


def _colour(image: np.ndarray, rng: np.random.Generator, s: BlendSettings) -> np.ndarray:
    """Random RGB shift, hue/saturation change, brightness and contrast on a float32 0-255 image."""
    import cv2

    image = image + rng.uniform(-s.colour_shift, s.colour_shift, 3).astype(np.float32)
    hsv = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-s.hue_shift, s.hue_shift)) % 180
    hsv[..., 1] *= rng.uniform(1 - s.saturation_scale, 1 + s.saturation_scale)
    image = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    mean = image.mean()
    contrast = rng.uniform(1 - s.contrast_scale, 1 + s.contrast_scale)
    return (image - mean) * contrast + mean + 255 * rng.uniform(-s.brightness_shift, s.brightness_shift)


def _sharpen_or_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    blurred = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < 0.5:
        return blurred
    return image + rng.uniform(0.3, 1.0) * (image - blurred)  # unsharp mask


def _resize_down_up(image: np.ndarray, rng: np.random.Generator, s: BlendSettings) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    factor = rng.uniform(*s.resize_factor)
    small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _shift_scale(image: np.ndarray, rng: np.random.Generator, s: BlendSettings) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0,
                                     rng.uniform(1 - s.scale_range, 1 + s.scale_range))
    matrix[:, 2] += rng.uniform(-s.max_shift, s.max_shift, 2) * (width, height)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def blend_source(face: np.ndarray, rng: np.random.Generator,
                 settings: BlendSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """float32 HxWx3 altered copy of `face`: each step with probability 1/2, colour always."""
    image = _colour(face.astype(np.float32), rng, settings)
    if rng.random() < 0.5:
        image = _sharpen_or_blur(image, rng)
    if rng.random() < 0.5:
        image = _resize_down_up(image, rng, settings)
    if rng.random() < 0.5:
        image = _shift_scale(image, rng, settings)
    return np.clip(image, 0, 255)


def self_blend(face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
               settings: BlendSettings = DEFAULT_SETTINGS) -> tuple[np.ndarray, np.ndarray]:
    """(fake uint8 HxWx3, mask float32 HxW) from a real uint8 HxWx3 face and its 68x2 landmarks."""
    if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3:
        raise ValueError(f'self_blend needs a uint8 HxWx3 image, got {face.dtype} {face.shape}')
    if landmarks.shape != (68, 2):
        raise ValueError(f'self_blend needs 68x2 landmarks, got {landmarks.shape}')
    mask, _ = blend_mask(landmarks, face.shape[:2], rng, settings)
    return blend(face, blend_source(face, rng, settings), mask), mask


def blend(face: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 `mask * source + (1 - mask) * face`; where mask == 0 exactly the face's bytes."""
    face_float = face.astype(np.float32)
    fake = face_float + mask[..., None] * (source - face_float)  # exactly the face where mask == 0
    return np.rint(fake, out=fake).astype(np.uint8)
