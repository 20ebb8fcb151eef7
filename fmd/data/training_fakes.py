"""Where a run's training fakes come from: the dataset's own, self-blends of its reals, or both.

`train_main.py --fakes MODE` (FAKES_MODES):

- `dataset` (default, the assignment): the split's real/ and fake/ images as they are.
- `self-blend`: each real image once as itself (label 0) and, when it has landmarks, once as a fresh
  self-blend (label 1). The split's fake/ folder is never opened, so the run never sees the
  manipulation it is tested on. Validation is built the same way from the val reals (fixed blends).
- `dataset+self-blend`: the dataset's fakes as well (validation: the val split as it is).

A blend is drawn from numpy's Generator seeded with (seed, epoch, image index): different every
epoch, the same for the same seed whatever the order, the worker or the resume point.

With `with_masks` (train_main.py --mask-loss-weight) every item also carries its manipulation mask
at MASK_SIZE (the blend mask for a self-blend, zeros for a real), cut and flipped with the image.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from faces_dataset import FacesDataset, list_images
from fmd.core.options import FAKES_MODES

VALIDATION_EPOCH = 0  # training epochs count from 1: validation blends never repeat a training one
MASK_SIZE = 64  # side of a mask target (and of the mask head's map): a 256x256 face's 4x4 cells


class RealFacesDataset(FacesDataset):
    """The real/ images of one split as uint8 tensors; its fake/ folder is never listed or read."""

    def __init__(self, root_path: str, image_size: int):
        root = Path(root_path)
        if not (root / 'real').is_dir():
            raise FileNotFoundError(f'Dataset folder {root / "real"} is missing: self-blending needs '
                                    'the real faces of each split')
        self.root_path, self.transform, self.image_size = root_path, None, image_size
        self.decoder, self.decoded_cache = 'tensor', None
        self.real_image_names, self.fake_image_names = list_images(root / 'real'), []
        if not self.real_image_names:
            raise ValueError(f'{root / "real"} holds no images to self-blend')


class SelfBlendDataset(Dataset):
    """`base`'s real images (label 0), then the self-blends of those with landmarks (label 1), then
    `base`'s own fakes (label 1) when it has any. Items are (uint8 3xHxW tensor (HWC in memory) after
    `transform`, label), plus a float 1xMASK_SIZExMASK_SIZE manipulation mask when `with_masks` (only
    without dataset fakes: their masks are unknown).

    A real with landmarks is the real of its pair (`fmd.data.self_blend.self_blend`): the same draws
    make its blend, so the two share every whole-image change. Every other image goes through the
    same kind of draws alone (`unblended`)."""

    PAIR_CACHE = 256  # pairs kept for the other half of the pair: each pair is made once per epoch

    def __init__(self, base: FacesDataset, landmarks: dict[str, np.ndarray], split: str, seed: int,
                 transform=None, epoch: int = VALIDATION_EPOCH, with_masks: bool = False):
        self.base, self.transform, self.seed, self.epoch = base, transform, seed, epoch
        self.with_masks = with_masks
        self.n_real = len(base.real_image_names)
        keys = [f'{split}/real/{name}' for name in base.real_image_names]
        self.blended = [i for i, key in enumerate(keys) if key in landmarks]  # base indices
        self.pair_of = {base_index: k for k, base_index in enumerate(self.blended)}
        self.points = [np.asarray(landmarks[keys[i]], dtype=np.float32) for i in self.blended]
        self.without_landmarks = [keys[i] for i in range(self.n_real) if keys[i] not in landmarks]
        self.n_fake = len(base.fake_image_names)
        if with_masks and self.n_fake:
            raise ValueError('manipulation masks need --fakes self-blend: the masks of the '
                             "dataset's own fakes are unknown")
        self._pairs: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return self.n_real + len(self.blended) + self.n_fake

    def class_counts(self) -> tuple[int, int]:
        """(real, fake) items per epoch."""
        return self.n_real, len(self.blended) + self.n_fake

    def set_epoch(self, epoch: int) -> None:
        """Draw the next epoch's blends (Trainer calls it before each training epoch)."""
        self.epoch = epoch
        self._pairs.clear()

    def blend_generator(self, base_index: int) -> np.random.Generator:
        """The generator of one image's draws in this epoch (a pair's, or an unpaired image's)."""
        return np.random.default_rng([self.seed, self.epoch, base_index])

    def pair(self, k: int):
        """The k-th blended real's pair this epoch (a BlendedPair), made once and kept for its other
        half (a bounded cache: a pair that fell out is made again, to the same bytes)."""
        from fmd.data.self_blend import self_blend

        key = (self.epoch, k)
        if key in self._pairs:
            return self._pairs.pop(key)
        base_index = self.blended[k]
        made = self_blend(self.base[base_index][0].permute(1, 2, 0).numpy(), self.points[k],
                          self.blend_generator(base_index))
        self._pairs[key] = made
        while len(self._pairs) > self.PAIR_CACHE:
            self._pairs.popitem(last=False)
        return made

    def __getitem__(self, index: int) -> tuple:
        from fmd.data.self_blend import unblended

        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} items')
        mask = None
        if index < self.n_real and index in self.pair_of:
            pixels, label = self.pair(self.pair_of[index]).real, 0
        elif index < self.n_real or index >= self.n_real + len(self.blended):
            base_index = index if index < self.n_real else index - len(self.blended)
            pixels = unblended(self.base[base_index][0].permute(1, 2, 0).numpy(),
                               self.blend_generator(base_index))
            label = int(index >= self.n_real)
        else:
            made = self.pair(index - self.n_real)
            pixels, mask, label = made.fake, made.mask, 1
        image = torch.from_numpy(pixels).permute(2, 0, 1)
        if not self.with_masks:
            return (self.transform(image) if self.transform is not None else image), label
        return masked_item(image, mask, label, self.transform)


def masked_item(image: torch.Tensor, mask: np.ndarray | None, label: int,
                transform=None) -> tuple[torch.Tensor, int, torch.Tensor]:
    """(uint8 3xHxW image, label, float 1xMASK_SIZExMASK_SIZE mask): the mask (None = a real face,
    all zeros) rides as a fourth uint8 channel through `transform`, so it is cut and flipped with
    the image, then is averaged over cells down to MASK_SIZE."""
    height, width = image.shape[1:]
    levels = (torch.zeros((1, height, width), dtype=torch.uint8) if mask is None else
              torch.from_numpy(np.rint(mask * 255).astype(np.uint8))[None])
    stacked = torch.cat([image.permute(1, 2, 0), levels.permute(1, 2, 0)], dim=2).permute(2, 0, 1)
    if transform is not None:
        stacked = transform(stacked)
    image = stacked[:3].permute(1, 2, 0).contiguous().permute(2, 0, 1)  # HWC in memory, as decoded
    return image, label, mask_target(stacked[3:].float()[None] / 255)[0]


def mask_target(masks: torch.Tensor, size: int = MASK_SIZE) -> torch.Tensor:
    """Blend masks (BxHxW or Bx1xHxW, values in [0, 1]) -> Bx1xSxS: the mean of each cell."""
    if masks.dim() == 3:
        masks = masks.unsqueeze(1)
    return F.adaptive_avg_pool2d(masks.float(), size)


def describe(dataset: SelfBlendDataset, what: str) -> str:
    """`train: 612 real + 612 self-blends (9 reals without landmarks not blended)`."""
    line = f'{what}: {dataset.n_real} real + {len(dataset.blended)} self-blends'
    if dataset.n_fake:
        line += f' + {dataset.n_fake} dataset fakes'
    if dataset.without_landmarks:
        line += f' ({len(dataset.without_landmarks)} reals without landmarks not blended)'
    return line


def self_blend_splits(data_root: str | os.PathLike, dataset: str, fakes: str, augment_transform,
                      seed: int, image_size: int, with_masks: bool = False,
                      ) -> tuple[SelfBlendDataset, Dataset, list[Dataset], str]:
    """(training set, validation set, the datasets whose decoded images to cache, a log line) of a
    `--fakes self-blend` or `dataset+self-blend` run; `dataset` mode is train_main's own.
    `with_masks`: training items carry their manipulation masks (self-blend mode only)."""
    from fmd.data.data_root import split_dir
    from fmd.data.landmarks import LANDMARKS_FILE, read_landmarks

    if fakes not in FAKES_MODES[1:]:
        raise ValueError(f'self_blend_splits: fakes must be one of {FAKES_MODES[1:]}, got {fakes!r}')
    folder = split_dir(Path(data_root), dataset, 'train').parent
    landmarks = read_landmarks(folder / LANDMARKS_FILE).points
    with_fakes = fakes == 'dataset+self-blend'

    def base(split: str) -> FacesDataset:
        path = str(split_dir(Path(data_root), dataset, split))
        if with_fakes:
            return FacesDataset(path, image_size=image_size, decoder='tensor')
        return RealFacesDataset(path, image_size)

    train_base, val_base = base('train'), base('val')
    train = SelfBlendDataset(train_base, landmarks, 'train', seed, augment_transform, epoch=1,
                             with_masks=with_masks)
    if not train.blended:
        raise ValueError(f'{folder / LANDMARKS_FILE} has landmarks for none of the train reals; run '
                         f'`python -m fmd.data.landmarks {folder}`')
    if with_fakes:
        val, val_line = val_base, 'val: the val split as it is (its own fakes)'
    else:
        val = SelfBlendDataset(val_base, landmarks, 'val', seed)
        val_line = describe(val, 'val (model selection, no real fake used)')
    return train, val, [train_base, val_base], f'{describe(train, "train")} | {val_line}'
