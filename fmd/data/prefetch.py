"""Decode a training run's images while the run imports torch: start-up on two cores instead of one.

A run of the assignment's command pays about 5 s of imports on one core (torch; torch._dynamo, which
every torch optimizer imports at its first use; scikit-learn's metrics) and about 3 CPU-ms per image
to decode its PNGs (1,500 images on the demo data). `start` lists the splits and forks decoder
processes before torch is imported (no threads yet, so fork is safe); they decode with PIL into an
anonymous shared mapping (freed with the last process that holds it: nothing to clean up, even after
a kill) while the parent imports; a parent done with its imports decodes from the other end
(`Prefetch.wait`). decode_cache.take_prefetched then copies the images into the run's cache. An
image they cannot decode to size x size RGB is skipped: the cache's own fill decodes it and reports
a bad file in its usual words. A decoder exits when its parent is gone and on Ctrl-C/SIGTERM,
without a traceback.

Started once per process by train_main.py's script entry (`start`); everything else asks `current()`.
Imports no torch.
"""
from __future__ import annotations

import contextlib
import mmap
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmd.core.cli import usable_cores
from fmd.core.images import list_images, open_image, to_rgb
from fmd.core.options import CLASS_NAMES
from fmd.data.cache_budget import cache_budget_bytes


@dataclass
class PrefetchedSplit:
    """One split folder's images in FacesDataset's order (real/ then fake/, each sorted)."""

    root: Path
    real_names: list[str]
    fake_names: list[str]
    first: int  # its first image's index in the mapping
    count: int  # how many of its images are decoded (the budget may cut a split short)


class Prefetch:
    """Decoder processes filling `images` (N x size x size x 3 uint8) and `done` (N flags)."""

    def __init__(self, roots: list[Path], size: int, processes: int, budget_bytes: int):
        self.size, self.started = size, time.perf_counter()
        self.splits: list[PrefetchedSplit] = []
        paths: list[Path] = []
        capacity = budget_bytes // (size * size * 3)
        for root in roots:
            real, fake = (list_images(root / folder) for folder in CLASS_NAMES)
            count = max(0, min(len(real) + len(fake), capacity - len(paths)))
            self.splits.append(PrefetchedSplit(root, real, fake, len(paths), count))
            names = [root / CLASS_NAMES[0] / n for n in real] + [root / CLASS_NAMES[1] / n for n in fake]
            paths += names[:count]
        self.paths, self.total = paths, len(paths)
        self.mapping = mmap.mmap(-1, max(1, self.total * (size * size * 3 + 2)))  # MAP_SHARED
        self.claimed = np.frombuffer(self.mapping, np.uint8, self.total, 0)  # someone decodes it
        self.done = np.frombuffer(self.mapping, np.uint8, self.total, self.total)  # it is decoded
        self.images = np.frombuffer(self.mapping, np.uint8, self.total * size * size * 3,
                                    2 * self.total).reshape(self.total, size, size, 3)
        self.children = [self._fork(k, processes) for k in range(processes) if k < self.total]
        self.seconds: float | None = None

    def _fork(self, k: int, processes: int) -> int:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            return pid
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # die with the run's Ctrl-C, quietly
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = 0
        try:
            for index in range(k, self.total, processes):
                if os.getppid() != parent:
                    break
                self._decode(index)
        except BaseException:  # a child never reports: the parent's fill decodes the rest
            code = 1
        finally:
            os._exit(code)

    def _decode(self, index: int) -> None:
        """Decode image `index` unless another process has claimed it (two that claim it at once
        write the same pixels)."""
        if self.claimed[index]:
            return
        self.claimed[index] = 1
        try:
            with open_image(self.paths[index]) as image:
                rgb = to_rgb(image)
        except OSError:  # ImageReadError included: the cache fill reports it
            return
        if rgb.size == (self.size, self.size):
            self.images[index] = np.asarray(rgb)
            self.done[index] = 1

    def wait(self) -> float:
        """Decode from the last image down while the decoders work up from the first, then wait for
        them; returns the seconds from start to the last one's exit."""
        if self.children:
            for index in range(self.total - 1, -1, -1):
                self._decode(index)
        for pid in self.children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if self.seconds is None:
            self.seconds = time.perf_counter() - self.started
        self.children = []
        return self.seconds

    def close(self) -> None:
        """Give the mapping back (the images were copied into the run's cache: not held twice)."""
        self.wait()
        self.claimed = self.done = self.images = None  # views of the mapping: dropped before closing
        self.splits = []
        self.mapping.close()

    def split_for(self, root: str | Path, real_names: list[str],
                  fake_names: list[str]) -> PrefetchedSplit | None:
        """The prefetched split of folder `root` when it lists exactly these files, else None (also
        once closed)."""
        for split in self.splits:
            if (Path(root) == split.root and split.real_names == real_names
                    and split.fake_names == fake_names):
                return split
        return None


_current: Prefetch | None = None  # the one prefetch of this process (train_main.py starts it)


def start(roots: list[Path], size: int, processes: int | None = None) -> Prefetch | None:
    """Fork the decoders for the split folders `roots` (those that exist), within the decoded-image
    cache's budget; None where fork is unavailable, torch is already imported (the fork would copy
    its threads), nothing is to be decoded, or a prefetch runs already."""
    global _current
    roots = [Path(root) for root in roots if all((Path(root) / f).is_dir() for f in CLASS_NAMES)]
    if _current is not None or not roots or not hasattr(os, 'fork') or 'torch' in sys.modules:
        return None
    if processes is None:  # the parent imports on one core, the decoders take the others
        processes = usable_cores() - 1
    budget = cache_budget_bytes()
    if budget < size * size * 3:
        return None
    _current = Prefetch(roots, size, max(1, processes), budget)
    return _current


def current() -> Prefetch | None:
    """The prefetch this process started, if any."""
    return _current
