"""Find the largest face in an image or video frame and crop it square: the one preprocessing shared
by fmd.prepare (building datasets) and fmd.detect (scoring new inputs), so both see the same crops.

Detectors run offline from what pip installs: dlib's HOG frontal face detector ('hog', no model file,
the one FaceForensics++ uses) and dlib's CNN (MMOD) detector ('cnn', model file from the
face-recognition-models package). 'none' takes the centre square, for inputs already cropped.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fmd.core.images import IMAGE_EXTENSIONS, ImageReadError, open_image

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')
DETECTORS = ('hog', 'cnn', 'none')
DEFAULT_DETECTOR = 'hog'
DEFAULT_MARGIN = 1.3  # FaceForensics++: the detector's box enlarged 1.3 times
DEFAULT_SIZE = 256
# Detection runs on a copy whose longer side is at most this (boxes are mapped back): dlib's cost
# grows with the pixel count, and a face filling a fraction of a 1024 px image is still found.
DETECT_MAX_SIDE = 1024
# An image over 1.5 times this side is first searched on a copy of this side: a face found there is at
# least ~80 px in it (larger than the faces too small to be found there), and the search at up to
# DETECT_MAX_SIDE runs only when it finds none. A phone photo's face costs several times less to find.
DETECT_FIRST_SIDE = 400
# A large JPEG is decoded at a reduced scale that keeps at least this longer side (read_image_reduced).
REDUCED_MIN_SIDE = 640
CNN_MODEL_FILE = 'mmod_human_face_detector.dat'

__all__ = ['CNN_MODEL_FILE', 'DEFAULT_DETECTOR', 'DEFAULT_MARGIN', 'DEFAULT_SIZE', 'DETECTORS',
           'DETECT_MAX_SIDE', 'IMAGE_EXTENSIONS', 'VIDEO_EXTENSIONS', 'Detector', 'FaceBox', 'ImageFace',
           'InputReadError', 'centre_box', 'cnn_model_path', 'crop_face', 'crop_square', 'face_box',
           'frame_indices', 'get_detector', 'image_face', 'largest_face', 'read_image_reduced',
           'read_image_rgb', 'read_video_frames', 'square_box']


@dataclass(frozen=True)
class FaceBox:
    """An axis-aligned box in pixels: left x, top y, width w, height h (may reach outside the image)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        """w * h, for picking the largest face."""
        return self.w * self.h


Detector = Callable[[np.ndarray], list[FaceBox]]


class InputReadError(OSError):
    """An image or video that cannot be decoded; the message names the file, `reason` says why."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f'cannot read {path}: {reason}')
        self.path, self.reason = str(path), reason

    def __reduce__(self):
        return type(self), (self.path, self.reason)


# ----------------------------------------------------------------------------- detectors

def _dlib():
    try:
        import dlib
    except ImportError as error:
        raise ImportError('dlib is not installed; `pip install -r requirements.txt` installs it '
                          '(package dlib-bin), or use detector none') from error
    return dlib


def model_file(name: str) -> Path:
    """A dlib model file shipped in the face-recognition-models package (detector, landmarks)."""
    # The package's __init__ imports pkg_resources, which new setuptools lacks: find it, never import.
    spec = importlib.util.find_spec('face_recognition_models')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f'{name} comes with the face-recognition-models package '
                          '(`pip install -r requirements.txt`)')
    path = Path(next(iter(spec.submodule_search_locations))) / 'models' / name
    if not path.is_file():
        raise FileNotFoundError(f'{path} is missing; reinstall face-recognition-models')
    return path


def cnn_model_path() -> Path:
    """dlib's MMOD face detector weights (the cnn detector)."""
    return model_file(CNN_MODEL_FILE)


def _rect_box(rect, scale: float) -> FaceBox:
    """dlib rectangle (inclusive corners) in the detection copy -> FaceBox in source pixels."""
    x0, y0 = rect.left() / scale, rect.top() / scale
    x1, y1 = (rect.right() + 1) / scale, (rect.bottom() + 1) / scale
    return FaceBox(round(x0), round(y0), round(x1 - x0), round(y1 - y0))


def _shrunk(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """A copy whose longer side is at most `side` (box-filtered by a whole factor first: fast, and as good
    for finding faces) and its scale."""
    h, w = image.shape[:2]
    size = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
    small = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0)
    return np.ascontiguousarray(np.asarray(small)), size[0] / w


def _with_downscale(detect: Callable[[np.ndarray], list], image: np.ndarray) -> list[FaceBox]:
    """Run a dlib detector on the image (first on a copy of DETECT_FIRST_SIDE when it is over 1.5 times
    that), shrunk to DETECT_MAX_SIDE if larger; retry upsampled if none."""
    h, w = image.shape[:2]
    if max(h, w) > DETECT_FIRST_SIDE * 3 // 2:
        first, scale = _shrunk(image, DETECT_FIRST_SIDE)
        rects = detect(first, 0)
        if rects:
            return [_rect_box(r, scale) for r in rects]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = image
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        scale = size[0] / w
    small = np.ascontiguousarray(small)
    rects = detect(small, 0)
    if not rects and max(small.shape[:2]) <= DETECT_MAX_SIDE // 2:
        rects = detect(small, 1)  # upsampling once finds faces down to ~40 px, at 4x the cost
    return [_rect_box(r, scale) for r in rects]


def _hog_detector() -> Detector:
    detector = _dlib().get_frontal_face_detector()
    return lambda image: _with_downscale(lambda img, up: list(detector(img, up)), image)


def _cnn_detector() -> Detector:
    detector = _dlib().cnn_face_detection_model_v1(str(cnn_model_path()))
    return lambda image: _with_downscale(lambda img, up: [d.rect for d in detector(img, up)], image)


def _none_detector() -> Detector:
    return lambda image: [centre_box(image.shape[1], image.shape[0])]


_BUILDERS: dict[str, Callable[[], Detector]] = {
    'hog': _hog_detector, 'cnn': _cnn_detector, 'none': _none_detector}


@functools.cache
def get_detector(name: str) -> Detector:
    """The detector called `name` (see DETECTORS): RGB uint8 HxWx3 -> face boxes. Built once per process."""
    if name not in _BUILDERS:
        raise ValueError(f'unknown detector {name!r}; choose one of {", ".join(DETECTORS)}')
    return _BUILDERS[name]()


# ----------------------------------------------------------------------------- boxes and crops

def largest_face(boxes: Sequence[FaceBox]) -> FaceBox | None:
    """The box of largest area (the first of equals), or None when there is none."""
    return max(boxes, key=lambda box: box.area, default=None)


def centre_box(w: int, h: int) -> FaceBox:
    """The largest centred square of a w x h image (what detector 'none' crops)."""
    side = min(w, h)
    return FaceBox((w - side) // 2, (h - side) // 2, side, side)


def _place(start: int, side: int, extent: int) -> int:
    """Shift a span [start, start + side) inside [0, extent), or, if longer, make it cover all of it."""
    low, high = sorted((0, extent - side))
    return min(max(start, low), high)


def square_box(box: FaceBox, margin: float, image_w: int, image_h: int) -> FaceBox:
    """Square of side round(margin * longer side), centred on the box, then moved inside the image.

    On an axis where the square fits, it is shifted (not shrunk) to lie inside the image; where it is
    longer than the image, it covers the whole image and crop_square pads the rest with black.
    """
    side = max(1, round(max(box.w, box.h) * margin))
    x = round(box.x + box.w / 2 - side / 2)
    y = round(box.y + box.h / 2 - side / 2)
    return FaceBox(_place(x, side, image_w), _place(y, side, image_h), side, side)


def crop_square(image_rgb: np.ndarray, box: FaceBox, size: int) -> np.ndarray:
    """The box cut out of the image (black outside it), resized to size x size: uint8 RGB."""
    h, w = image_rgb.shape[:2]
    x0, y0, x1, y1 = max(box.x, 0), max(box.y, 0), min(box.x + box.w, w), min(box.y + box.h, h)
    inside = image_rgb[y0:y1, x0:x1]
    if inside.shape[:2] != (box.h, box.w):
        canvas = np.zeros((box.h, box.w, 3), dtype=np.uint8)
        if x1 > x0 and y1 > y0:
            canvas[y0 - box.y:y1 - box.y, x0 - box.x:x1 - box.x] = inside
        inside = canvas
    if inside.shape[:2] == (size, size):
        return np.ascontiguousarray(inside)
    resized = Image.fromarray(np.ascontiguousarray(inside)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def face_box(image_rgb: np.ndarray, detector: str = DEFAULT_DETECTOR,
             margin: float = DEFAULT_MARGIN) -> tuple[FaceBox | None, int]:
    """(square crop box of the largest face, number of faces found); (None, 0) when there is no face.

    With detector 'none' the box is the centre square and the margin is not applied.
    """
    h, w = image_rgb.shape[:2]
    if detector == 'none':
        return centre_box(w, h), 1
    boxes = get_detector(detector)(image_rgb)
    face = largest_face(boxes)
    if face is None:
        return None, 0
    return square_box(face, margin, w, h), len(boxes)


def crop_face(image_rgb: np.ndarray, detector: str = DEFAULT_DETECTOR, margin: float = DEFAULT_MARGIN,
              size: int = DEFAULT_SIZE) -> tuple[np.ndarray, FaceBox] | None:
    """(size x size RGB crop of the largest face, its square box in source pixels), or None: no face."""
    box, _ = face_box(image_rgb, detector, margin)
    if box is None:
        return None
    return crop_square(image_rgb, box, size), box


# ----------------------------------------------------------------------------- reading inputs

def read_image_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file (any PIL mode, EXIF orientation applied) to HxWx3 uint8 RGB; an unreadable
    file or a decompression bomb is an InputReadError saying why (fmd.core.images.open_image)."""
    return _decode(path)[0]


def read_image_reduced(path: str | Path, min_side: int = REDUCED_MIN_SIDE) -> tuple[np.ndarray, float]:
    """(RGB pixels, decoded pixels per source pixel): a JPEG whose longer side is at least twice
    `min_side` is decoded at the largest DCT reduction (1/2, 1/4 or 1/8) that keeps that side at least
    `min_side`, several times faster than a whole decode; any other file as read_image_rgb (1.0)."""
    return _decode(path, min_side)


def _decode(path: str | Path, min_side: int | None = None) -> tuple[np.ndarray, float]:
    try:
        with open_image(path) as image:
            width = image.size[0]
            longer = max(image.size)
            if min_side is not None and image.format in ('JPEG', 'MPO') and longer >= 2 * min_side:
                image.draft('RGB', tuple(-(-side * min_side // longer) for side in image.size))
            scale = image.size[0] / width
            image = ImageOps.exif_transpose(image)
            if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):  # 16-bit grey: keep the top 8 bits
                image = Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255)
                                        .astype(np.uint8))
            rgb = np.asarray(image.convert('RGB'))
    except ImageReadError as error:
        raise InputReadError(path, error.reason) from error
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputReadError(path, 'empty image')
    return np.ascontiguousarray(rgb), scale


@dataclass(frozen=True)
class ImageFace:
    """The largest face of an image file: its square box in source pixels (None: no face), the number
    of faces found, its size x size crop, and the decoded pixels it came from with their scale
    (decoded pixels per source pixel; below 1 for a reduced JPEG)."""

    box: FaceBox | None
    faces: int
    crop: np.ndarray | None
    image: np.ndarray
    scale: float


def image_face(path: str | Path, detector: str = DEFAULT_DETECTOR, margin: float = DEFAULT_MARGIN,
               size: int = DEFAULT_SIZE) -> ImageFace:
    """Find and crop the largest face of an image file, as fmd.prepare and fmd.detect both do.

    The face is looked for on read_image_reduced's pixels, and on the whole image when none is found
    there (a face too small for the reduced copy). The crop is cut from the reduced pixels when the
    face's box there is at least `size` (the crop is still shrunk, as from the whole image: the two
    differ by about 0.3 grey levels on average), else from the whole image.
    """
    image, scale = read_image_reduced(path)
    box, faces = face_box(image, detector, margin)
    if box is None and scale < 1:
        image, scale = read_image_rgb(path), 1.0
        box, faces = face_box(image, detector, margin)
    if box is None:
        return ImageFace(None, 0, None, image, scale)
    if scale < 1 and box.w < size:
        image, box, scale = read_image_rgb(path), _scaled(box, 1 / scale), 1.0
    return ImageFace(_scaled(box, 1 / scale), faces, crop_square(image, box, size), image, scale)


def _scaled(box: FaceBox, factor: float) -> FaceBox:
    return FaceBox(*(round(value * factor) for value in (box.x, box.y, box.w, box.h)))


def frame_indices(frame_count: int, n: int) -> list[int]:
    """n evenly spaced frame indices of a frame_count-frame video: the centres of n equal parts."""
    if frame_count <= 0 or n <= 0:
        return []
    return sorted({(2 * i + 1) * frame_count // (2 * n) for i in range(n)})


def _count_frames(capture) -> int:
    count = 0
    while capture.grab():
        count += 1
    return count


def read_video_frames(path: str | Path, n: int) -> list[tuple[int, np.ndarray]]:
    """n evenly spaced frames of a video (see frame_indices) as (frame index, HxWx3 uint8 RGB).

    Frames that cannot be decoded are left out; a video with none readable is an InputReadError.
    """
    # FFmpeg's own complaints about broken files would clutter the progress bar; the caller reports them.
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')  # read when OpenCV first opens a video
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputReadError(path, 'OpenCV cannot open it as a video')
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:  # some containers do not store it: count by decoding, then start again
            count = _count_frames(capture)
            capture.release()
            capture.open(str(path))
        frames: list[tuple[int, np.ndarray]] = []
        position = 0
        for index in frame_indices(count, n):
            if index - position > 64:  # far ahead: seek instead of decoding every frame between
                capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            else:
                while position < index and capture.grab():
                    position += 1
            ok, frame = capture.read()
            position = index + 1
            if ok and frame is not None and frame.ndim == 3:
                frames.append((index, np.ascontiguousarray(frame[:, :, ::-1])))
    finally:
        capture.release()
    if not frames:
        raise InputReadError(path, 'no video frame could be decoded')
    return frames
