"""What fmd.detect scores: the image and video files under the given paths, and the largest face of each
image or video frame, found and cropped exactly as fmd.prepare does (face_crop.py).

No torch here, so the worker processes that read inputs and find faces start fast.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from fmd.core.parallel import process_pool
from fmd.data import face_crop
from fmd.data.face_crop import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FaceBox, InputReadError

# Pictures kept for drawing are shrunk to this longer side: enough to read a verdict, and cheap to hold
# (a video keeps one per frame with a face), to send from a worker and to write as PNG.
PREVIEW_MAX_SIDE = 640


class DetectInputError(ValueError):
    """Bad arguments or a worker process that died; the message says which and what to do."""


@dataclass(frozen=True)
class Input:
    """One file to score: the path as found, 'image' or 'video' ('' when unknown), and `error` when it is
    known before reading that it cannot be scored (missing, unsupported type, a folder with no media)."""

    path: str
    kind: str
    error: str = ''


@dataclass(frozen=True)
class CropSettings:
    """How faces are found and cropped (as fmd.prepare's flags), and whether to keep pictures."""

    detector: str = face_crop.DEFAULT_DETECTOR
    margin: float = face_crop.DEFAULT_MARGIN
    size: int = face_crop.DEFAULT_SIZE
    frames_per_video: int = 16
    previews: bool = False


@dataclass(frozen=True)
class Face:
    """The largest face of an image (frame None) or video frame: its square box in source pixels and
    its size x size RGB crop."""

    frame: int | None
    box: FaceBox
    crop: np.ndarray


@dataclass(frozen=True)
class Preview:
    """An image or frame shrunk for drawing; `scale` maps source pixels to preview pixels."""

    frame: int | None
    image: np.ndarray
    scale: float


@dataclass
class FoundFaces:
    """What reading one input gave: its faces, previews of the frames with a face (of the first frame
    when none has one, when previews were asked for), and `error` when it could not be read."""

    input: Input
    faces: list[Face] = field(default_factory=list)
    previews: dict[int | None, Preview] = field(default_factory=dict)
    error: str = ''


# ----------------------------------------------------------------------------- listing inputs

def kind_of(path: str) -> str:
    """'image' or 'video' by the file extension, '' for anything else."""
    suffix = os.path.splitext(path)[1].lower()
    return 'image' if suffix in IMAGE_EXTENSIONS else 'video' if suffix in VIDEO_EXTENSIONS else ''


def _media_under(folder: str) -> list[str]:
    """Images and videos below folder (hidden files and folders skipped), sorted by their path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith('.')]
        found += [os.path.join(dirpath, name) for name in filenames
                  if not name.startswith('.') and kind_of(name)]
    return sorted(found, key=lambda path: os.path.relpath(path, folder).split(os.sep))


def list_inputs(paths: Iterable[str | os.PathLike]) -> list[Input]:
    """Every file to score, in order: files as given, folders searched recursively; each path once."""
    supported = ', '.join(e[1:] for e in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    inputs: list[Input] = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            media = _media_under(path)
            inputs += [Input(p, kind_of(p)) for p in media] or \
                [Input(path, '', f'no images or videos ({supported}) in this folder')]
        elif not os.path.exists(path):
            inputs.append(Input(path, kind_of(path), 'no such file or folder'))
        elif not kind_of(path):
            inputs.append(Input(path, '', f'unsupported file type (supported: {supported})'))
        else:
            inputs.append(Input(path, kind_of(path)))
    seen: set[str] = set()
    return [i for i in inputs if not (i.path in seen or seen.add(i.path))]


# ----------------------------------------------------------------------------- reading and cropping

def preview_of(image: np.ndarray, frame: int | None) -> Preview:
    """A copy of image whose longer side is at most PREVIEW_MAX_SIDE: box-filtered by a whole factor
    (Image.reduce: a few ms where a bilinear resize of a 1280 px photo took 17)."""
    h, w = image.shape[:2]
    factor = -(-max(h, w) // PREVIEW_MAX_SIDE)  # ceil
    if factor > 1:
        image = np.asarray(Image.fromarray(image).reduce(factor))
    return Preview(frame, image, image.shape[1] / w)


def find_faces(item: Input, settings: CropSettings) -> FoundFaces:
    """Read one input and crop the largest face of the image or of each sampled frame; never raises."""
    found = FoundFaces(item, error=item.error)
    if item.error:
        return found
    try:
        if item.kind == 'image':  # the face found and cut as fmd.prepare does (a large JPEG read reduced)
            face = face_crop.image_face(item.path, settings.detector, settings.margin, settings.size)
            if face.box is not None:
                found.faces.append(Face(None, face.box, face.crop))
            if settings.previews:
                preview = preview_of(face.image, None)
                found.previews[None] = Preview(None, preview.image, preview.scale * face.scale)
            return found
        for frame, image in face_crop.read_video_frames(item.path, settings.frames_per_video):
            box, _ = face_crop.face_box(image, settings.detector, settings.margin)
            if box is not None:
                found.faces.append(Face(frame, box, face_crop.crop_square(image, box, settings.size)))
            if settings.previews and (box is not None or not found.previews):
                found.previews[frame] = preview_of(image, frame)
    except InputReadError as error:
        return FoundFaces(item, error=f'cannot read it: {error.reason}')
    except Exception as error:  # one odd file must not stop the others; its row says what happened
        return FoundFaces(item, error=f'{type(error).__name__}: {error}')
    if found.faces and settings.previews:  # the first frame was kept only in case no face turned up
        found.previews = {f: p for f, p in found.previews.items() if any(x.frame == f for x in found.faces)}
    return found


def _init_worker(detector: str) -> None:
    """Workers use one OpenCV thread and build the detector once (process_pool: Ctrl-C is the parent's)."""
    import cv2

    cv2.setNumThreads(1)
    face_crop.get_detector(detector)


def found_faces(inputs: Sequence[Input], settings: CropSettings, workers: int = 0) -> Iterator[FoundFaces]:
    """find_faces of every input, in order; with workers > 0 in that many processes, a few inputs ahead."""
    workers = min(workers, len(inputs))  # a pool bigger than the work only costs start-up
    if workers <= 0:
        yield from (find_faces(item, settings) for item in inputs)
        return
    pool = process_pool(workers, _init_worker, (settings.detector,))
    try:
        queue: deque[Future] = deque()
        todo = iter(inputs)
        for item in todo:
            queue.append(pool.submit(find_faces, item, settings))
            if len(queue) >= 2 * workers:  # bounded: finished previews wait in memory until used
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
    except BrokenProcessPool as error:
        raise DetectInputError('a worker process died (killed, or out of memory?); try fewer --workers') \
            from error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
