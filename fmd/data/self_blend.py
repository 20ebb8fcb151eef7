"""Self-blended images: a real face and a training fake made from it, as Self-Blended Images do.

After Self-Blended Images (SBI, Shiohara & Yamasaki, CVPR 2022) and Face X-ray (Li et al., CVPR
2020). `self_blend(face, landmarks, rng)` returns a `BlendedPair`: the fake pastes an altered copy of
the face into itself inside a soft, deformed landmark mask, so it carries the traces of a face swap (a
blending boundary, a colour and frequency mismatch) and nothing specific to one forgery method. The
rules that keep a detector from learning a shortcut instead:

- **Source or target.** The colour-and-frequency change (downscale or sharpen) goes to the pasted
  source or, as often, to the host face; the pair's real is that host. So neither "smoother inside"
  nor "sharper inside" nor "sharpened image" says fake: only the mismatch does.
- **Both classes alike.** Each pair goes through the same whole-image changes (colour jitter, blur,
  noise, JPEG at a random quality), drawn once and applied to both images.
- **Upsampled faces.** Half the pairs are made at a lower resolution and upsampled back, as real
  videos' faces (about 130 px in DFDC) are when cropped to 256.

Every range is a field of `BlendSettings`; everything random comes from the numpy Generator passed
in, so the same generator state gives the same bytes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fmd.data import image_ops

# dlib's 68-point numbering (fmd.data.landmarks). The eye parts include their brows, as pasted eyes do.
PART_POINTS: dict[str, tuple[int, ...]] = {
    'left_eye': (*range(17, 22), *range(36, 42)),   # the eye on the image's left (subject's right)
    'right_eye': (*range(22, 27), *range(42, 48)),  # the eye on the image's right
    'nose': tuple(range(27, 36)),
    'mouth': tuple(range(48, 60)),
}
PARTS = tuple(PART_POINTS)
WHOLE_FACE = 'face'    # the hull of all 68 points
INNER_FACE = 'inner'   # brows, eyes, nose and mouth (points 17-67): what face swaps replace
REGION_POINTS = {INNER_FACE: tuple(range(17, 68)), **PART_POINTS}
SIDE = 256           # the side of the faces the pixel ranges below are written for


@dataclass(frozen=True)
class BlendSettings:
    """The ranges every random draw is taken from; pixel sizes are for 256x256 faces."""

    # The region: the whole face, the inner face, else a random non-empty set of PARTS (as in the
    # ciplab composites).
    whole_face_probability: float = 0.4
    inner_face_probability: float = 0.3
    # The mask's shape (SBI): moved with the source, wobbled, eroded and blurred, then scaled.
    elastic_grid: int = 8                        # px between the displacement field's control points
    elastic_amplitude: float = 3.0               # px; each control point moves U(-a, a) along x and y
    elastic_max: float = 4.0                     # px; no pixel moves further (bicubic overshoot)
    mask_rescale: tuple[float, float] = (0.75, 1.0)  # per axis; erosion and blur work on this size
    erode_kernel: tuple[int, int] = (5, 25)      # odd square kernel side, drawn among the odd sides
    blur_kernel: tuple[int, int] = (5, 25)       # odd Gaussian kernel side
    blur_sigma: tuple[float, float] = (5.0, 45.0)
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # one drawn with equal odds
    # Source or target: which one gets the change below.
    source_probability: float = 0.5              # the pasted source; else the host face (the pair's real)
    rgb_shift_probability: float = 0.3
    rgb_shift: float = 20.0                      # levels per channel
    brightness: float = 0.1                      # x 255
    contrast: float = 0.1
    downscale_probability: float = 0.5           # else sharpen
    downscale_factors: tuple[int, ...] = (2, 4)
    sharpen_alpha: tuple[float, float] = (0.2, 0.5)
    sharpen_lightness: tuple[float, float] = (0.5, 1.0)
    # The source's move (SBI): a shift (fractions of the side) and a scale about the centre.
    shift_x: float = 0.03
    shift_y: float = 0.015
    scale: tuple[float, float] = (0.95, 1 / 0.95)
    # Upsampled faces: the pair is made at a lower side, then resized back to the face's side.
    low_res_probability: float = 0.5
    low_res_side: tuple[int, int] = (96, 224)    # px, of a 256 px face
    upsample_interpolations: tuple[str, ...] = ('linear', 'cubic')
    # Whole-image changes, the same for both images of a pair.
    jitter_probability: float = 0.3              # each of: RGB shift, saturation, brightness-contrast
    jitter_rgb_shift: float = 20.0
    jitter_saturation: float = 0.3               # x U(1 - s, 1 + s)
    jitter_brightness: float = 0.3
    jitter_contrast: float = 0.3
    blur_probability: float = 0.2
    blur_sigma_range: tuple[float, float] = (0.4, 1.5)
    noise_probability: float = 0.2
    noise_sigma: tuple[float, float] = (1.0, 6.0)  # levels
    jpeg_probability: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 100)

    def mask_bound(self) -> float:
        """How far (px, Euclidean) the mask's support can reach beyond the chosen landmarks' hulls:
        the source's move, the wobble, then half the blur kernel (stretched by the rescale)."""
        half = SIDE / 2
        move = math.hypot(self.shift_x * SIDE, self.shift_y * SIDE)
        scale = max(abs(self.scale[1] - 1), abs(1 - self.scale[0])) * math.hypot(half, half)
        blur = (self.blur_kernel[1] // 2 + 1) / self.mask_rescale[0]
        return move + scale + self.elastic_max + blur + 2.0  # + nearest-neighbour rounding


DEFAULT_SETTINGS = BlendSettings()


@dataclass(frozen=True)
class BlendedPair:
    """A real face and its self-blend: uint8 HxWx3 each, the float32 HxW mask, the parts it covers."""

    real: np.ndarray
    fake: np.ndarray
    mask: np.ndarray
    parts: tuple[str, ...]


# ----------------------------------------------------------------------------- the mask

def choose_parts(rng: np.random.Generator, settings: BlendSettings = DEFAULT_SETTINGS) -> tuple[str, ...]:
    """('face',), ('inner',) or a non-empty subset of PARTS, as in the ciplab composites."""
    draw = rng.random()
    if draw < settings.whole_face_probability:
        return (WHOLE_FACE,)
    if draw < settings.whole_face_probability + settings.inner_face_probability:
        return (INNER_FACE,)
    code = int(rng.integers(1, 2 ** len(PARTS)))
    return tuple(part for bit, part in enumerate(PARTS) if code >> bit & 1)


def part_points(landmarks: np.ndarray, part: str) -> np.ndarray:
    """The landmarks of one region: all 68 for 'face', else those REGION_POINTS names."""
    return landmarks if part == WHOLE_FACE else landmarks[list(REGION_POINTS[part])]


def hull_mask(points_per_part: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """uint8 0/1 mask: the union of the convex hulls of each point set."""
    import cv2

    mask = np.zeros(shape, dtype=np.uint8)
    for points in points_per_part:
        hull = cv2.convexHull(np.round(points).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    return mask


def odd_side(rng: np.random.Generator, low_high: tuple[int, int]) -> int:
    """An odd integer drawn with equal odds from [low, high] (both odd)."""
    low, high = low_high
    return low + 2 * int(rng.integers(0, (high - low) // 2 + 1))


def displacement_field(shape: tuple[int, int], rng: np.random.Generator,
                       settings: BlendSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """HxWx2 smooth random displacement (SBI wobbles its mask elastically): control points every
    elastic_grid px move U(-amplitude, amplitude), bicubic in between, clipped to elastic_max."""
    import cv2

    height, width = shape
    grid = (max(2, -(-height // settings.elastic_grid)), max(2, -(-width // settings.elastic_grid)))
    amplitude = settings.elastic_amplitude
    points = rng.uniform(-amplitude, amplitude, (*grid, 2)).astype(np.float32)
    field = cv2.resize(points, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(field, -settings.elastic_max, settings.elastic_max)


def soften(mask: np.ndarray, rng: np.random.Generator, settings: BlendSettings = DEFAULT_SETTINGS,
           ) -> np.ndarray:
    """SBI's blend mask: on a copy resized per axis, erode (a square kernel), Gaussian-blur, scale the
    peak to 1, resize back; then x a blend ratio. Returns float32 in [0, 1]."""
    import cv2

    height, width = mask.shape
    small_h = max(1, round(height * rng.uniform(*settings.mask_rescale)))
    small_w = max(1, round(width * rng.uniform(*settings.mask_rescale)))
    small = cv2.resize(mask.astype(np.float32), (small_w, small_h), interpolation=cv2.INTER_LINEAR)
    erode = odd_side(rng, settings.erode_kernel)
    eroded = cv2.erode((small >= 0.5).astype(np.float32), np.ones((erode, erode), np.uint8))
    if not eroded.any():  # a part smaller than the kernel: keep it rather than lose the blend
        eroded = (small >= 0.5).astype(np.float32)
    blur = odd_side(rng, settings.blur_kernel)
    sigma = rng.uniform(*settings.blur_sigma)
    soft = cv2.GaussianBlur(eroded, (blur, blur), sigma, borderType=cv2.BORDER_CONSTANT)
    soft = cv2.resize(soft / max(float(soft.max()), 1e-6), (width, height), interpolation=cv2.INTER_LINEAR)
    ratio = settings.blend_ratios[int(rng.integers(len(settings.blend_ratios)))]
    return np.clip(soft, 0.0, 1.0) * np.float32(ratio)


def source_move(rng: np.random.Generator, settings: BlendSettings = DEFAULT_SETTINGS,
                ) -> tuple[tuple[float, float], float]:
    """((shift x, shift y) as fractions of the side, scale) of the pasted source and its mask."""
    shift = (rng.uniform(-settings.shift_x, settings.shift_x),
             rng.uniform(-settings.shift_y, settings.shift_y))
    return shift, rng.uniform(*settings.scale)


def blend_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator,
               settings: BlendSettings = DEFAULT_SETTINGS,
               move: tuple[tuple[float, float], float] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """(float32 HxW mask in [0, 1], the parts it covers): the parts' hulls, moved as the source is
    (`move`, drawn here when None), wobbled, then softened (`soften`)."""
    parts = choose_parts(rng, settings)
    hull = hull_mask([part_points(landmarks, part) for part in parts], shape).astype(np.float32)
    shift, scale = source_move(rng, settings) if move is None else move
    moved = image_ops.affine(hull, shift, scale, nearest=True)
    wobbled = image_ops.elastic(moved, displacement_field(shape, rng, settings))
    if not wobbled.any():
        wobbled = hull
    return soften(wobbled, rng, settings), parts


# ----------------------------------------------------------------------------- the images

def altered(image: np.ndarray, rng: np.random.Generator, settings: BlendSettings = DEFAULT_SETTINGS,
            ) -> np.ndarray:
    """SBI's source transform on float32 0-255: maybe an RGB shift, brightness and contrast, then a
    downscale (x2 or x4, nearest down, bilinear up) or a sharpen."""
    if rng.random() < settings.rgb_shift_probability:
        image = image_ops.rgb_shift(image, rng.uniform(-settings.rgb_shift, settings.rgb_shift, 3))
    image = image_ops.brightness_contrast(image, rng.uniform(-settings.brightness, settings.brightness),
                                          rng.uniform(-settings.contrast, settings.contrast))
    if rng.random() < settings.downscale_probability:
        factor = settings.downscale_factors[int(rng.integers(len(settings.downscale_factors)))]
        return image_ops.downscale(image, factor)
    return image_ops.sharpen(image, rng.uniform(*settings.sharpen_alpha),
                             rng.uniform(*settings.sharpen_lightness))


def whole_image_changes(images: list[np.ndarray], rng: np.random.Generator,
                        settings: BlendSettings = DEFAULT_SETTINGS) -> list[np.ndarray]:
    """The same colour jitter, blur, noise and JPEG (each drawn once) applied to every image (float
    0-255; JPEG clips what it encodes, the caller clips the end result)."""
    s = settings
    steps = []
    if rng.random() < s.jitter_probability:
        shift = rng.uniform(-s.jitter_rgb_shift, s.jitter_rgb_shift, 3)
        steps.append(lambda image: image_ops.rgb_shift(image, shift))
    if rng.random() < s.jitter_probability:
        factor = rng.uniform(1 - s.jitter_saturation, 1 + s.jitter_saturation)
        steps.append(lambda image: image_ops.saturation(image, factor))
    if rng.random() < s.jitter_probability:
        brightness = rng.uniform(-s.jitter_brightness, s.jitter_brightness)
        contrast = rng.uniform(-s.jitter_contrast, s.jitter_contrast)
        steps.append(lambda image: image_ops.brightness_contrast(image, brightness, contrast))
    if rng.random() < s.blur_probability:
        sigma = rng.uniform(*s.blur_sigma_range)
        steps.append(lambda image: image_ops.gaussian_blur(image, sigma))
    if rng.random() < s.noise_probability:
        noise = rng.normal(0, rng.uniform(*s.noise_sigma), images[0].shape).astype(np.float32)
        steps.append(lambda image: image + noise)
    if rng.random() < s.jpeg_probability:
        quality = int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1))
        steps.append(lambda image: image_ops.jpeg(image, quality))
    for step in steps:
        images = [step(image) for image in images]
    return images


def working_side(side: int, rng: np.random.Generator, settings: BlendSettings = DEFAULT_SETTINGS,
                 ) -> tuple[int, str]:
    """(the side the pair is made at, the interpolation that brings it back): `side` itself, or a
    lower side (low_res_side scaled to `side`) with probability low_res_probability."""
    if rng.random() >= settings.low_res_probability:
        return side, ''
    low = round(settings.low_res_side[0] * side / SIDE)
    high = round(settings.low_res_side[1] * side / SIDE)
    interpolation = settings.upsample_interpolations[int(rng.integers(len(settings.upsample_interpolations)))]
    return int(rng.integers(low, high + 1)), interpolation


def check_face(face: np.ndarray) -> None:
    """A square uint8 HxWx3 face, else a ValueError saying what came."""
    if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3 or face.shape[0] != face.shape[1]:
        raise ValueError(f'self-blending needs a square uint8 HxWx3 image, got {face.dtype} {face.shape}')


def self_blend(face: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
               settings: BlendSettings = DEFAULT_SETTINGS) -> BlendedPair:
    """The pair (real, fake) made from a real square uint8 face and its 68x2 landmarks.

    fake = mask x source + (1 - mask) x target, where one of source and target is the face after
    `altered` and the other the face itself; real = target. Both then share the whole-image changes.
    """
    check_face(face)
    if landmarks.shape != (68, 2):
        raise ValueError(f'self-blending needs 68x2 landmarks, got {landmarks.shape}')
    side = face.shape[0]
    work, interpolation = working_side(side, rng, settings)
    move = source_move(rng, settings)
    mask, parts = blend_mask(landmarks, face.shape[:2], rng, settings, move)
    image = face.astype(np.float32)
    if work != side:
        image = image_ops.resize(image, work, 'area')
    changed = altered(image, rng, settings)
    source, target = (changed, image) if rng.random() < settings.source_probability else (image, changed)
    source = image_ops.affine(source, *move)
    work_mask = mask if work == side else image_ops.resize(mask, work, 'area')
    fake = target + work_mask[..., None] * (source - target)  # exactly the target where the mask is 0
    real = target
    if work != side:
        real, fake = (image_ops.resize(x, side, interpolation) for x in (real, fake))
    real, fake = whole_image_changes([real, fake], rng, settings)
    return BlendedPair(image_ops.to_uint8(real), image_ops.to_uint8(fake), mask, parts)


def unblended(face: np.ndarray, rng: np.random.Generator, settings: BlendSettings = DEFAULT_SETTINGS,
              ) -> np.ndarray:
    """An image that is not part of a pair (a real without landmarks, a dataset's own fake) through
    the same resolution and whole-image draws as a pair's, so it is no different a population."""
    check_face(face)
    side = face.shape[0]
    work, interpolation = working_side(side, rng, settings)
    image = face.astype(np.float32)
    if work != side:
        image = image_ops.resize(image_ops.resize(image, work, 'area'), side, interpolation)
    return image_ops.to_uint8(whole_image_changes([image], rng, settings)[0])
