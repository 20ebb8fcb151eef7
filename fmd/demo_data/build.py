"""Writes the demo datasets: reuse a complete matching output, else build atomically with a worker pool.

A build goes to a hidden sibling folder `.<out>.tmp-<pid>` and is renamed into place only once its
manifest is written, so an interrupted run never leaves a half dataset; folders left by killed runs
are removed by the next run.
"""
from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from fmd.core.cli import default_workers

from .images import make_image
from .layout import CLASSES, DATASETS, DEFAULT_SCALE, image_keys, relative_path, resolve_scale
from .manifest import MANIFEST_NAME, build_manifest, is_complete, manifest_digest, manifest_text


class ImageJob(NamedTuple):
    """One image for a worker to render: where the build lives, the seed and the image's key."""

    root: str
    seed: int
    dataset: str
    split: str
    class_name: str
    index: int


def generate_demo_datasets(out: str | Path, scale: str | Mapping = DEFAULT_SCALE, seed: int = 0,
                           workers: int | None = None, progress: bool = True) -> Path:
    """Write (or reuse) the demo datasets under `out`; returns `out` as a Path.

    `scale` is a name from SCALES or a custom mapping dataset -> split -> {'real': n, 'fake': m}.
    The bytes depend only on (seed, scale), never on `workers`.
    """
    out = Path(out)
    scale_name, counts = resolve_scale(scale)
    if is_complete(out, build_manifest(seed, scale_name, counts, {})):
        if progress:
            print(f'demo datasets: reusing complete {out} (scale {scale_name}, seed {seed}, '
                  f'manifest {manifest_digest(out)[:12]})', file=sys.stderr)
        return out
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(out)
    build = out.parent / f'.{out.name}.tmp-{os.getpid()}'
    previous = out.parent / f'.{out.name}.old-{os.getpid()}'
    jobs = [ImageJob(str(build), seed, *key) for key in image_keys(counts)]
    workers = min(workers or default_workers(), max(1, len(jobs) // 8))
    start = time.perf_counter()
    try:
        for dataset, splits in counts.items():
            for split in splits:
                for class_name in CLASSES:
                    (build / dataset / split / class_name).mkdir(parents=True)
        files = _render_all(jobs, workers, f'demo datasets ({scale_name})', progress)
        manifest = build_manifest(seed, scale_name, counts, files)
        (build / MANIFEST_NAME).write_text(manifest_text(manifest))  # last: marks a complete build
        if out.exists():
            out.rename(previous)
        build.rename(out)
    finally:
        shutil.rmtree(build, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
    if progress:
        print(f'demo datasets: wrote {len(files)} images to {out} in '
              f'{time.perf_counter() - start:.1f}s with {workers} worker(s); '
              'this is procedural demo data, not the course data', file=sys.stderr)
    return out


def write_image(job: ImageJob) -> tuple[str, str]:
    """Worker: render one image, save it as PNG in the build folder; (relative path, SHA-256)."""
    relative = relative_path(job.dataset, job.split, job.class_name, job.index)
    buffer = io.BytesIO()
    pixels = make_image(job.seed, job.dataset, job.split, job.class_name, job.index)
    Image.fromarray(pixels).save(buffer, format='PNG', compress_level=1)
    data = buffer.getvalue()
    (Path(job.root) / relative).write_bytes(data)
    return relative, hashlib.sha256(data).hexdigest()


def _render_all(jobs: list[ImageJob], workers: int, description: str, progress: bool) -> dict[str, str]:
    """Run `write_image` over all jobs, in a process pool when workers > 1; path -> SHA-256."""
    from tqdm import tqdm

    files: dict[str, str] = {}
    with tqdm(total=len(jobs), desc=description, unit='img', disable=None if progress else True) as bar:
        if workers == 1:
            for relative, digest in map(write_image, jobs):
                files[relative] = digest
                bar.update()
            return files
        # terminated (SIGTERM) when the block ends; workers take the default SIGTERM action so
        # that ends them, whatever handler the parent process had installed
        with multiprocessing.get_context().Pool(workers, initializer=signal.signal,
                                                initargs=(signal.SIGTERM, signal.SIG_DFL)) as pool:
            for relative, digest in pool.imap_unordered(write_image, jobs, chunksize=8):
                files[relative] = digest
                bar.update()
    return files


def _check_replaceable(out: Path) -> None:
    """Refuse to delete a folder that is not (a partial) demo dataset."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f'--out {out} exists and is not a folder; pick another --out')
    extra = sorted(path.name for path in out.iterdir() if path.name not in (*DATASETS, MANIFEST_NAME))
    if extra:
        raise ValueError(f'--out {out} exists and holds files that are not demo data ({extra[:3]});'
                         ' refusing to replace it: pick another --out or remove it yourself')


def _remove_stale_builds(out: Path) -> None:
    """Delete hidden build folders next to `out` left by runs that were killed."""
    for path in sorted(out.parent.glob(f'.{out.name}.*-*')):
        kind, _, pid = path.name.rpartition('-')
        if kind.endswith(('.tmp', '.old')) and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a folder of a live run must not be touched)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError included: it exists but belongs to someone else
        return True
    return True

