"""The assignment's shared names (`device`, transforms, `load_dataset`, `load_model`, `get_nof_params`).

The jobs behind them live in modules named for them (devices, presets, data_root, registry,
checkpoints, atomic_io); this module re-exports what the assignment's code imports from utils.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from faces_dataset import FacesDataset, ImageReadError  # noqa: F401
from fmd.core.atomic_io import atomic_torch_save, atomic_write_json, read_json_list  # noqa: F401
from fmd.core.cli import add_common_args  # noqa: F401
from fmd.core.devices import default_workers, model_device, pick_device, seed_everything  # noqa: F401
from fmd.core.images import open_image
from fmd.core.registry import MODEL_ALIASES, MODEL_BUILDERS, build_model, canonical_model_name  # noqa: F401
from fmd.data.data_root import (  # noqa: F401
    DATA_ROOT_ENV,
    DATASET_NAMES,
    DATASET_PARTS,
    DataRootNotFoundError,
    data_root_candidates,
    is_demo_root,
    resolve_data_root,
    split_dir,
)
from fmd.data.presets import (  # noqa: F401
    IMAGE_SIZE,
    NORMALIZE_MEAN,
    NORMALIZE_STD,
    TRANSFORM_TEST,
    TRANSFORM_TRAIN,
    UINT8_PRESETS,
    train_transform,
    uint8_transform,
    unnormalize,
)
from fmd.training.checkpoints import CheckpointMismatchError, load_checkpoint, load_trained_model  # noqa: F401


def __getattr__(name: str) -> object:
    """`utils.device` (the assignment's global, `from utils import device`) is picked when first
    asked for, not at import; library code takes the device as an argument (pick_device)."""
    if name == 'device':
        return pick_device()
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def check_images(dataset: FacesDataset, size: int = IMAGE_SIZE, both_classes: bool = True) -> int:
    """Read every image header: unreadable files are an ImageReadError naming the file, an empty
    class is a ValueError (an empty fake/ too unless not `both_classes`); returns how many images
    are not size x size (they get resized)."""
    for names, class_name in ((dataset.real_image_names, 'real'), (dataset.fake_image_names, 'fake')):
        if not names and (both_classes or class_name == 'real'):
            raise ValueError(f'{Path(dataset.root_path) / class_name} has no images: every split '
                             'needs real and fake images (see docs/data.md).')
    other_size = 0
    for index in range(len(dataset)):
        path, _ = dataset.image_path(index)
        with open_image(path) as image:  # an unreadable file or a decompression bomb: ImageReadError
            other_size += image.size != (size, size)
    return other_size


def load_dataset(dataset_name: str, dataset_part: str,
                 data_root: str | os.PathLike | None = None, augment: str = 'assignment',
                 uint8: bool = False, both_classes: bool = True) -> Dataset:
    """FacesDataset for one split (any dataset folder under the data root); train gets the
    `augment` preset (TRANSFORM_TRAIN by default), val/test TRANSFORM_TEST. Images of another size
    are resized to 256x256.

    uint8=True (for the Trainer and inference.predict, which normalise per batch with
    performance.prepare_batch): items are the preset's un-normalised uint8 3x256x256 tensors
    (torchvision decoding, presets.uint8_transform), the same pixels; presets without a uint8 form
    ('forensic') keep their float output. both_classes=False accepts an empty fake/ (the test split
    of a dataset of real faces only, trained with self-blends).
    """
    root = resolve_data_root(data_root, announce=False)
    folder = split_dir(root, dataset_name, dataset_part)
    preset = augment if dataset_part == 'train' else None
    if uint8 and (preset is None or preset in UINT8_PRESETS):
        dataset = FacesDataset(str(folder), transform=uint8_transform(preset), image_size=IMAGE_SIZE,
                               decoder='tensor')
    else:
        transform = train_transform(augment) if dataset_part == 'train' else TRANSFORM_TEST
        dataset = FacesDataset(str(folder), transform=transform, image_size=IMAGE_SIZE)
    other_size = check_images(dataset, both_classes=both_classes)
    if other_size:
        print(f'WARNING: {other_size} of {len(dataset)} images in {folder} are not '
              f'{IMAGE_SIZE}x{IMAGE_SIZE}; they are resized to {IMAGE_SIZE}x{IMAGE_SIZE}.',
              file=sys.stderr)
    return dataset


def load_model(model_name: str, pretrained: bool = True) -> nn.Module:
    """Build a fresh model by name; pretrained=False skips ImageNet weights (a checkpoint follows)."""
    return build_model(model_name, pretrained=pretrained)


def get_nof_params(model: nn.Module) -> int:
    """Number of trainable parameters (those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
