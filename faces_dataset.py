"""Real/fake face images from `<root>/real` (label 0) and `<root>/fake` (label 1)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fmd.core.images import (  # noqa: F401 (IMAGE_EXTENSIONS, HIGH_BIT_MODES: importable here too)
    HIGH_BIT_MODES,
    IMAGE_EXTENSIONS,
    ImageReadError,
    check_pixels,
    list_images,
    open_image,
    png_size,
    to_rgb,
)
from fmd.core.options import CLASS_NAMES  # index = label

DECODERS = ('pil', 'tensor')


def read_rgb(path: Path, size: int | None = None) -> Image.Image:
    """Decode `path` as RGB (resized to size x size when it is another size); any unreadable file,
    a decompression bomb included, is an ImageReadError naming it (fmd.core.images.open_image)."""
    with open_image(path) as image:
        image = to_rgb(image)
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    return image


def pil_to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> uint8 3xHxW tensor, stored HWC in memory like torchvision's decoder output."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)


def read_rgb_tensor(path: Path, size: int | None = None) -> torch.Tensor:
    """The pixels of read_rgb(path, size) as a uint8 3xHxW tensor (HWC in memory).

    8-bit PNGs of the right size are decoded by torchvision (libpng), which gives exactly PIL's
    pixels (grey, palette and alpha are converted to RGB the same way) with less work per image.
    Anything else (JPEG and other formats, 16-bit PNGs, images that need resizing, files
    torchvision cannot read) goes through read_rgb, so the pixels and errors are PIL's.
    """
    from torchvision.io import ImageReadMode, decode_png

    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageReadError(path, error.strerror or str(error)) from error
    header = png_size(data)
    if header is not None:
        check_pixels(path, *header)  # before libpng allocates a bomb's pixels
        try:
            image = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                               mode=ImageReadMode.RGB)
        except (RuntimeError, ValueError):
            image = None  # read_rgb reports the file in PIL's words
        if (image is not None and image.dtype == torch.uint8
                and (size is None or tuple(image.shape[1:]) == (size, size))):
            return image
    return pil_to_uint8_tensor(read_rgb(path, size))


class FacesDataset(Dataset):
    """Indices 0..n_real-1 are the real images, the rest the fake ones; files sorted by name.

    `image_size` (when given) resizes every image of another size to image_size x image_size.
    `decoder` says what the transform receives: 'pil' (default) an RGB PIL image, 'tensor' the
    same pixels as a uint8 3xHxW tensor (read_rgb_tensor: faster for PNGs); without a transform,
    that is what an item holds.
    """

    def __init__(self, root_path: str, transform: Callable | None = None,
                 image_size: int | None = None, decoder: str = 'pil'):
        if decoder not in DECODERS:
            raise ValueError(f'decoder must be one of {DECODERS}, got {decoder!r}')
        self.root_path = root_path
        self.transform = transform
        self.image_size = image_size
        self.decoder = decoder
        self.decoded_cache = None  # a decode_cache.DecodedImageCache (tensor decoder only)
        root = Path(root_path)
        for sub in CLASS_NAMES:
            if not (root / sub).is_dir():
                raise FileNotFoundError(
                    f'Dataset folder {root / sub} is missing: {root_path} must hold real/ and '
                    'fake/ image folders (see docs/data.md).')
        self.real_image_names = list_images(root / 'real')
        self.fake_image_names = list_images(root / 'fake')
        if len(self) == 0:
            raise ValueError(f'Dataset {root_path} has no images in real/ or fake/ '
                             f'(accepted extensions: {", ".join(IMAGE_EXTENSIONS)}).')

    def __len__(self) -> int:
        """Number of real images plus number of fake images."""
        return len(self.real_image_names) + len(self.fake_image_names)

    def image_path(self, index: int) -> tuple[Path, int]:
        """File path and label of sample `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f'Index {index} out of range for {self.root_path} '
                             f'({len(self)} images).')
        n_real = len(self.real_image_names)
        if index < n_real:
            return Path(self.root_path, 'real', self.real_image_names[index]), 0
        return Path(self.root_path, 'fake', self.fake_image_names[index - n_real]), 1

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """(transformed RGB image, label) with label 0 = real, 1 = fake."""
        path, label = self.image_path(int(index))
        if self.decoder == 'tensor' and self.decoded_cache is not None:
            image = self.decoded_cache.get(int(index), lambda: read_rgb_tensor(path, self.image_size))
        elif self.decoder == 'tensor':
            image = read_rgb_tensor(path, self.image_size)
        else:
            image = read_rgb(path, self.image_size)
        if self.transform is not None:
            image = self.transform(image)
        return image, label
