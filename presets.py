"""Image transforms in one place: the assignment's train/test presets and normalisation."""
from __future__ import annotations

import torch
from torchvision import transforms

IMAGE_SIZE = 256
NORMALIZE_MEAN = (0.4914, 0.4822, 0.4465)
NORMALIZE_STD = (0.2023, 0.1994, 0.2010)

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


AUGMENT_PRESETS = ('assignment', 'forensic')


def train_transform(augment: str = 'assignment') -> transforms.Compose:
    """The training transform of an augmentation preset: 'assignment' (crop + flip) or 'forensic'."""
    if augment == 'assignment':
        return TRANSFORM_TRAIN
    if augment == 'forensic':
        return forensic_train_transform()
    raise ValueError(f'Unknown augmentation preset {augment!r}; choose one of {list(AUGMENT_PRESETS)}.')
