"""Decode each image once per run: a shared-memory cache of decoded uint8 images for FacesDataset.

PNG decoding is most of the data pipeline's work (about 2.3 of 2.9 CPU ms per 256x256 image on
the reference machine) and, on a CPU-only machine, it competes with the model for the same cores.
Every epoch decodes the whole training, validation and test split again; with this cache the
DataLoader worker that first decodes an image stores it in shared memory, and later epochs (new
workers included: the memory is shared, not copied) only crop, flip and batch it.

The cache holds the decoded, un-augmented pixels (uint8, HWC: 192 KiB per 256x256 image), so the
random crop and flip still happen fresh every epoch and every number stays the same. Memory is
taken only as images are stored, and the total is bounded (`cache_budget_bytes`): a split larger
than what is left is cached for its first images only.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from fmd.data.cache_budget import BUDGET_ENV, cache_budget_bytes

_reserved_bytes = 0  # what the caches made in this process may fill


class DecodedImageCache:
    """uint8 3xSxS images of indices 0..count-1 in shared memory, filled on first decode."""

    def __init__(self, count: int, size: int):
        self.count, self.size = count, size
        storage = torch.UntypedStorage._new_shared(count * size * size * 3)  # pages untouched
        self.images = torch.empty(0, dtype=torch.uint8).set_(storage, 0, (count, size, size, 3))
        self.filled = torch.zeros(count, dtype=torch.bool).share_memory_()

    @property
    def nbytes(self) -> int:
        return self.images.numel()

    def get(self, index: int, decode: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The decoded image `index` (3xSxS uint8, HWC in memory): from the cache, else decode()
        and store it. Safe across DataLoader workers: a sampler hands each index to one worker
        per epoch, and an image is marked filled only after it is written."""
        if index < self.count and bool(self.filled[index]):
            return self.images[index].permute(2, 0, 1).clone()
        image = decode()
        if index < self.count and tuple(image.shape) == (3, self.size, self.size):
            self.images[index].copy_(image.permute(1, 2, 0))
            self.filled[index] = True
        return image


class _Filler(Dataset):
    """Decodes the not-yet-cached images of a FacesDataset into its cache, and returns nothing
    (no transform: the global random state is not touched)."""

    def __init__(self, dataset: object):
        self.dataset = dataset
        cache = dataset.decoded_cache
        self.indices = [i for i in range(cache.count) if not bool(cache.filled[i])]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> int:
        from faces_dataset import read_rgb_tensor

        index = self.indices[position]
        path, _ = self.dataset.image_path(index)
        self.dataset.decoded_cache.get(index, lambda: read_rgb_tensor(path, self.dataset.image_size))
        return index


def take_prefetched(datasets: Sequence[object]) -> tuple[int, float] | None:
    """Copy into the caches of `datasets` what fmd.data.prefetch's decoders made of the same files,
    waiting for them first, then close the prefetch: (images taken, the decoders' seconds), None
    when no prefetch ran."""
    from fmd.data import prefetch

    started = prefetch.current()
    if started is None:
        return None
    seconds, taken = started.wait(), 0
    for dataset in datasets:
        cache = getattr(dataset, 'decoded_cache', None)
        split = None if cache is None or dataset.image_size != started.size else started.split_for(
            dataset.root_path, dataset.real_image_names, dataset.fake_image_names)
        if split is None:
            continue
        count = min(split.count, cache.count)
        rows = slice(split.first, split.first + count)
        cache.images[:count].copy_(torch.from_numpy(started.images[rows]))
        done = torch.from_numpy(started.done[rows]).bool()
        cache.filled[:count] |= done
        taken += int(done.sum())
    started.close()
    return taken, seconds


def fill_caches(datasets: Sequence[object], workers: int) -> tuple[int, float]:
    """Decode every cached image of `datasets` now, with `workers` processes (all cores free: no
    training runs yet). Returns (images decoded, seconds). Uses a private generator, so the
    global random state, and with it the run's numbers, is unchanged."""
    started, decoded = time.perf_counter(), 0
    for dataset in datasets:
        if getattr(dataset, 'decoded_cache', None) is None:
            continue
        filler = _Filler(dataset)
        if len(filler) == 0:
            continue
        loader = DataLoader(filler, batch_size=32, num_workers=workers, collate_fn=len,
                            generator=torch.Generator())
        decoded += sum(loader)
    return decoded, time.perf_counter() - started


def fully_cached(datasets: Sequence[object]) -> bool:
    """Whether every image of `datasets` sits in a decoded-image cache."""
    return all(getattr(d, 'decoded_cache', None) is not None and d.decoded_cache.count == len(d)
               for d in datasets)


def prepare_datasets(datasets: Sequence[object], device: torch.device, workers: int | None,
                     fill_workers: int) -> tuple[int, str]:
    """What train_main.py does with its splits before training: cache their decoded images
    (cache_datasets), decode them all up front with `fill_workers` processes, and pick the
    training DataLoader workers when `workers` is None:

    - CPU, every image cached: 0. What is left per image (crop, flip, batching: under 1 ms) is
      cheaper in the training process than in workers, which on a small machine compete with the
      compute threads for the same cores and add a copy of every batch (bench/bench_train.py:
      BonusNet trains at 0.92 of pure compute with 0 workers, 0.55 with 1).
    - otherwise (GPU: the data must be ready while the device computes): cli.default_workers().

    Returns (workers, a line for the log).
    """
    from fmd.core.cli import resolve_workers

    line = cache_datasets(datasets)
    prefetched = take_prefetched(datasets)
    if prefetched is not None:
        line += f'; {prefetched[0]} decoded during start-up in {prefetched[1]:.1f} s'
    if any(getattr(d, 'decoded_cache', None) is not None for d in datasets):
        decoded, seconds = fill_caches(datasets, fill_workers)
        if decoded or prefetched is None:
            line += f'; {decoded} decoded up front in {seconds:.1f} s with {fill_workers} workers'
    if workers is None:  # --workers auto: the one rule of fmd.core.cli.resolve_workers
        workers = resolve_workers(None, in_memory=device.type == 'cpu' and fully_cached(datasets))
        line += f'; training DataLoader workers: {workers} (automatic)'
    return workers, line


def cache_datasets(datasets: Sequence[object]) -> str:
    """Give each tensor-decoding FacesDataset of `datasets` a cache, within the budget left in
    this process; returns a line for the log saying what is cached."""
    global _reserved_bytes
    budget = cache_budget_bytes()
    cached, total, nbytes = 0, 0, 0
    for dataset in datasets:
        size = getattr(dataset, 'image_size', None)
        if getattr(dataset, 'decoder', None) != 'tensor' or size is None:
            continue
        total += len(dataset)
        count = min(len(dataset), max(0, budget - _reserved_bytes) // (size * size * 3))
        if count == 0:
            continue
        try:
            cache = DecodedImageCache(count, size)
        except RuntimeError:  # no shared memory to be had
            break
        dataset.decoded_cache = cache
        _reserved_bytes += cache.nbytes
        cached += count
        nbytes += cache.nbytes
    if total == 0:
        return 'decoded-image cache: not used (PIL decoding)'
    if cached == 0:
        return f'decoded-image cache: off (budget {budget / 2 ** 20:.0f} MiB; set ${BUDGET_ENV})'
    return (f'decoded-image cache: {cached} of {total} images, up to {nbytes / 2 ** 20:.0f} MiB of '
            f'shared memory (each image is decoded once per run; ${BUDGET_ENV} sets the budget)')
