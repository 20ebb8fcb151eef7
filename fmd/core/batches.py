"""How a batch of images reaches a model: collated, on its device, in its memory format, normalised.

The datasets hand out uint8 images; they are normalised here once per batch, on the device, with the
assignment's mean and std: the same float operations as ToTensor + Normalize, so the numbers equal
the per-image PIL path (tests/test_performance_paths.py). Training, evaluation and every analysis
prepare their batches with these functions.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import default_collate

NORMALIZE_MEAN = (0.4914, 0.4822, 0.4465)
NORMALIZE_STD = (0.2023, 0.1994, 0.2010)


def input_memory_format(model: nn.Module) -> torch.memory_format:
    """channels_last when the model's convolution weights are stored channels_last, else
    contiguous: the format its input batches should have."""
    for parameter in model.parameters():
        if (parameter.dim() == 4 and not parameter.is_contiguous()
                and parameter.is_contiguous(memory_format=torch.channels_last)):
            return torch.channels_last
    return torch.contiguous_format


def normalize_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (Bx3xHxW or 3xHxW, any memory format) -> float32 normalised like
    TRANSFORM_TEST: the same operations as ToTensor (x / 255) then Normalize ((x - mean) / std),
    so the result is bit-identical to the per-image PIL path."""
    shape = (1, 3, 1, 1) if images.dim() == 4 else (3, 1, 1)
    mean = torch.tensor(NORMALIZE_MEAN, dtype=torch.float32, device=images.device).view(shape)
    std = torch.tensor(NORMALIZE_STD, dtype=torch.float32, device=images.device).view(shape)
    return images.float().div_(255).sub_(mean).div_(std)


def prepare_batch(images: torch.Tensor, device: torch.device,
                  memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """A batch as the model wants it: on `device`, in `memory_format` (4-D batches), and
    normalised when it holds uint8 images (those are normalised here, once per batch, on the
    device: 4x less to copy than float images, and no per-image work in the DataLoader workers)."""
    images = images.to(device, non_blocking=True)
    if images.dim() == 4:
        images = images.contiguous(memory_format=memory_format)
    if images.dtype == torch.uint8:
        images = normalize_uint8(images)
    return images


def on_device(batches: Iterable, device: torch.device,
              memory_format: torch.memory_format = torch.contiguous_format) -> Iterator[tuple]:
    """Each (images, labels, ...) batch with its images prepared (prepare_batch) and every other
    tensor moved to `device`."""
    for images, *rest in batches:
        yield (prepare_batch(images, device, memory_format),
               *(item.to(device, non_blocking=True) if isinstance(item, torch.Tensor) else item
                 for item in rest))


def collate_images(batch: list) -> object:
    """default_collate, except that uint8 image tensors stored HWC in memory (as torchvision's
    decoder and presets.RandomCropFlip return them) are stacked HWC: the batch comes out as a
    Bx3xHxW tensor in channels_last memory, with no transposing copy per image. Items of
    (image, label, mask) keep their masks as a third, default-collated, element."""
    first = batch[0]
    if isinstance(first, (tuple, list)) and len(first) in (2, 3) and all(
            isinstance(item[0], torch.Tensor) and item[0].dtype == torch.uint8 and item[0].dim() == 3
            and item[0].permute(1, 2, 0).is_contiguous() for item in batch):
        images = default_collate([item[0].permute(1, 2, 0) for item in batch]).permute(0, 3, 1, 2)
        rest = [default_collate([item[k] for item in batch]) for k in range(1, len(first))]
        return (images, *rest)
    return default_collate(batch)
