"""Open an image file safely: the one place that decides what counts as an unreadable image.

A missing, empty, truncated or non-image file and a decompression bomb (an image over MAX_PIXELS
pixels, whatever its size on disk) all become one ImageReadError that names the file and says why;
no PIL exception or DecompressionBombWarning escapes. Every reader of images in the project (the
datasets, the image checks, fmd.detect, fmd.prepare, fmd.explain, fmd.evaluate, the analysis scripts)
goes through open_image or check_pixels. Also the one rule for which files of a folder are images
(list_images) and how any PIL mode becomes 8-bit RGB (to_rgb). Imports PIL and numpy only, no torch:
fmd.data.prefetch decodes with it before torch is imported.
"""
from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
HIGH_BIT_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I')

# PIL's own decompression-bomb threshold (Image.MAX_IMAGE_PIXELS: 1024 * 1024 * 1024 // 4 // 3), fixed
# here so that a library changing PIL's global cannot lift it: about 9459 x 9459, a 89-megapixel photo.
MAX_PIXELS = 89_478_485
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# Whatever PIL raises for a file it cannot decode (truncated data raises OSError or SyntaxError, some
# plugins ValueError, IndexError or struct.error on nonsense headers).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error,
                 Image.DecompressionBombError, Image.DecompressionBombWarning)


class ImageReadError(OSError):
    """An image file that cannot be decoded: `path` and `reason`; the message names the file and what
    to do. Pickles (it crosses process pools)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f'Cannot read image {path}: {reason}. Remove or replace the file.')
        self.path, self.reason = str(path), reason

    def __reduce__(self):
        return type(self), (self.path, self.reason)


def too_many_pixels(width: int, height: int) -> str:
    """The reason given for an image over MAX_PIXELS ('' when it is within the limit)."""
    if width * height <= MAX_PIXELS:
        return ''
    return _over_limit(width * height)


def _over_limit(pixels: int | None) -> str:
    size = 'more pixels than' if pixels is None else f'{pixels:,} pixels, more than'
    return f'{size} the limit of {MAX_PIXELS:,} (a decompression bomb?)'


def check_pixels(path: str | os.PathLike, width: int, height: int) -> None:
    """ImageReadError when a width x height image is over MAX_PIXELS."""
    reason = too_many_pixels(width, height)
    if reason:
        raise ImageReadError(path, reason)


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header bytes, None when `data` is not a PNG: a decoder that skips
    PIL (torchvision's decode_png) checks the pixel count with it before it allocates anything."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b'IHDR':
        return None
    return struct.unpack('>II', data[16:24])


def _reason(path: str | os.PathLike, error: BaseException) -> str:
    if isinstance(error, UnidentifiedImageError):
        return 'empty file' if _is_empty(path) else 'not an image that PIL can decode'
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        found = re.search(r'\((\d+) pixels\)', str(error))  # PIL: "Image size (900000000 pixels) exceeds"
        return _over_limit(int(found.group(1)) if found else None)
    if isinstance(error, FileNotFoundError):
        return 'no such file'
    text = str(error).replace(str(path), Path(path).name).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _is_empty(path: str | os.PathLike) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False


@contextlib.contextmanager
def open_image(path: str | os.PathLike) -> Iterator[Image.Image]:
    """`with open_image(path) as image:` Image.open with every failure, in the open or in the block
    (decoding happens there), as one ImageReadError; over MAX_PIXELS is refused before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error', Image.DecompressionBombWarning)
            with Image.open(path) as image:
                check_pixels(path, *image.size)
                yield image
    except ImageReadError:
        raise
    except (UnidentifiedImageError, *DECODE_ERRORS) as error:
        raise ImageReadError(path, _reason(path, error)) from error


def list_images(folder: Path) -> list[str]:
    """Sorted image file names in `folder` (stray files such as .DS_Store are ignored)."""
    return sorted(name for name in os.listdir(folder)
                  if not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS)
                  and (folder / name).is_file())


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB; 16-bit grey (mode I;16 / I) is scaled to 8 bits, not clipped."""
    if image.mode in HIGH_BIT_MODES:
        pixels = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.round(pixels / 257.0), 0, 255).astype(np.uint8), 'L')
    return image.convert('RGB')
