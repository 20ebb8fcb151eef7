"""Image transforms in one place: the assignment's train/test presets and normalisation.

The PIL presets (TRANSFORM_TRAIN, TRANSFORM_TEST) turn one decoded image into a normalised float
tensor. Their uint8 twins (`uint8_transform`) do the geometry only, on the uint8 tensor that
torchvision decodes, and leave ToTensor + Normalize to fmd.core.batches.normalize_uint8, once per batch:
same random draws, same pixels, same floats.
"""
from __future__ import annotations

import torch
from torchvision import transforms

from fmd.core.batches import NORMALIZE_MEAN, NORMALIZE_STD
from fmd.core.options import AUGMENT_PRESETS, IMAGE_SIZE, UINT8_PRESETS

TRANSFORM_TRAIN = transforms.Compose([
    transforms.RandomCrop(IMAGE_SIZE, padding=4),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize(mean=NORMALIZE_MEAN, std=NORMALIZE_STD),
])

TRANSFORM_TEST = transforms.Compose([
    transforms.ToTensor(),
    transforms.Normalize(mean=NORMALIZE_MEAN, std=NORMALIZE_STD),
])


class RandomCropFlip:
    """TRANSFORM_TRAIN's geometry on a uint8 CxHxW tensor: torchvision v2's RandomCrop(size, padding)
    with zero fill, then RandomHorizontalFlip(p).

    v2 draws the same random numbers in the same order as TRANSFORM_TRAIN's transforms (torch.randint
    for the row, then the column, then torch.rand for the flip), so for the same torch seed it cuts
    the same window and flips the same images. The result is stored HWC in memory (like
    torchvision's decoder output), which batches.collate_images stacks into a channels_last batch
    without a transposing copy.
    """

    def __init__(self, size: int = IMAGE_SIZE, padding: int = 4, flip_probability: float = 0.5):
        from torchvision.transforms import v2  # here: importing v2 costs every script that imports presets

        self.size, self.padding, self.flip_probability = size, padding, flip_probability
        self.geometry = v2.Compose([v2.RandomCrop(size, padding=padding),
                                    v2.RandomHorizontalFlip(flip_probability)])

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.geometry(image).permute(1, 2, 0).contiguous().permute(2, 0, 1)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, padding={self.padding}, '
                f'flip_probability={self.flip_probability})')


def unnormalize(images: torch.Tensor) -> torch.Tensor:
    """Undo TRANSFORM_TEST's Normalize: CxHxW or BxCxHxW tensor back to [0, 1] colours."""
    shape = (3, 1, 1) if images.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(NORMALIZE_MEAN, dtype=images.dtype, device=images.device).view(shape)
    std = torch.tensor(NORMALIZE_STD, dtype=images.dtype, device=images.device).view(shape)
    return (images * std + mean).clamp(0.0, 1.0)


def forensic_train_transform(size: int = IMAGE_SIZE) -> transforms.Compose:
    """Augmentations for real face forgeries (flip, small rotation/scale, colour jitter, blur, JPEG
    re-compression at quality 40-100, random erasing), each applied with a probability."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.PILToTensor(),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomAffine(degrees=10, scale=(0.9, 1.1))], p=0.3),
        v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.2, 0.05)], p=0.3),
        v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.1, 1.5))], p=0.2),
        v2.RandomApply([v2.JPEG(quality=(40, 100))], p=0.5),
        v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=NORMALIZE_MEAN, std=NORMALIZE_STD),
        v2.RandomErasing(p=0.2, scale=(0.02, 0.1)),
    ])


def uint8_transform(augment: str | None) -> RandomCropFlip | None:
    """The uint8-tensor twin of a preset's geometry: RandomCropFlip for 'assignment' training,
    None (nothing to do) for evaluation (augment=None). 'forensic' has no uint8 twin (it
    normalises before its random erasing): ValueError."""
    if augment is None:
        return None
    if augment == 'assignment':
        return RandomCropFlip(IMAGE_SIZE, padding=4)
    raise ValueError(f'Preset {augment!r} has no uint8 form; only {UINT8_PRESETS} do.')


def train_transform(augment: str = 'assignment') -> transforms.Compose:
    """The training transform of an augmentation preset: 'assignment' (crop + flip) or 'forensic'."""
    if augment == 'assignment':
        return TRANSFORM_TRAIN
    if augment == 'forensic':
        return forensic_train_transform()
    raise ValueError(f'Unknown augmentation preset {augment!r}; choose one of {list(AUGMENT_PRESETS)}.')
