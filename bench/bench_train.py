"""Training/evaluation throughput: pure compute on in-memory tensors vs. end to end from PNG files.

Both are measured in one run on the same model, alternating (compute, end to end, compute, ...),
so their ratio shows what image decoding, the augmentation and the DataLoader cost. The model runs
in its memory format (performance.CHANNELS_LAST_ON_CPU) unless --format says otherwise; the
end-to-end pass reads the files as train_main.py does (uint8 pipeline), and `--pipelines uint8 pil`
also times the per-image PIL path it replaced. Also prints achieved GFLOP/s against a measured float32
matmul peak of this machine, and the peak resident memory of the process and its workers.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faces_dataset import FacesDataset, list_images
from fmd.core.devices import default_threads
from fmd.data.decode_cache import prepare_datasets
from fmd.data.presets import IMAGE_SIZE, uint8_transform
from fmd.training.optimizers import build_optimizer
from fmd.training.performance import keep_freed_memory, prepare_model
from trainer import Trainer
from utils import (
    TRANSFORM_TEST,
    TRANSFORM_TRAIN,
    canonical_model_name,
    default_workers,
    device,
    load_model,
    seed_everything,
)


def write_face_like_pngs(folder: Path, count: int, seed: int) -> None:
    """256x256 PNGs of smooth shapes plus sensor noise: decode cost close to real photos."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32) / 255.0
    for label in ('real', 'fake'):
        (folder / label).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        centre = rng.uniform(0.3, 0.7, size=2)
        blob = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / rng.uniform(0.02, 0.08))
        colours = rng.uniform(0.2, 0.9, size=(2, 3))
        image = (blob[..., None] * colours[0] + (1 - blob[..., None]) * colours[1]
                 + rng.normal(0, 0.02, size=(256, 256, 3)))
        pixels = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        label = 'real' if index % 3 else 'fake'
        Image.fromarray(pixels).save(folder / label / f'{index:05d}.png')


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of a square matmul on `device`."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    best = float('inf')
    for _ in range(repeats):
        synchronize()
        started = time.perf_counter()
        a @ b
        synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / best / 1e9


def synchronize() -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def forward_flops(model: nn.Module) -> int:
    """FLOPs of one 256x256 image's forward pass (multiply and add counted separately)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, 256, 256, device=device))
    return counter.get_total_flops()


def pure_compute(model: nn.Module, batch_size: int, batches: int, train: bool,
                 memory_format: torch.memory_format = torch.contiguous_format) -> Meter:
    """Wall and CPU time of `batches` train steps (or eval forwards) on one in-memory batch."""
    images = torch.randn(batch_size, 3, 256, 256, device=device).contiguous(
        memory_format=memory_format)
    labels = torch.randint(0, 2, (batch_size,), device=device)
    optimizer = build_optimizer('Adam', model, 1e-4, 0.0)  # as train_main.py: fused
    criterion = nn.CrossEntropyLoss()

    def step() -> None:
        if train:
            optimizer.zero_grad(set_to_none=True)
            criterion(model(images), labels).backward()
            optimizer.step()
        else:
            with torch.no_grad():
                model(images)

    model.train(train)
    step()
    with Meter(batches * batch_size) as meter:
        for _ in range(batches):
            step()
    return meter


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its descendants: the DataLoader
    workers, forked directly or by a fork server. Finished children count through getrusage;
    live descendants (Linux /proc) with their own finished children."""
    total = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total += children.ru_utime + children.ru_stime
    proc = Path('/proc')
    if not proc.is_dir():
        return total
    ticks = os.sysconf('SC_CLK_TCK')
    parents, times = {}, {}
    for stat in proc.glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(value) for value in fields[11:15]) / ticks  # utime stime cutime cstime
    me = os.getpid()
    for pid, seconds in times.items():
        ancestor = parents.get(pid)
        while ancestor not in (None, 0, 1, me):
            ancestor = parents.get(ancestor)
        if ancestor == me:
            total += seconds
    return total


class Meter:
    """Wall and CPU seconds (process + workers) of a block: images/s and CPU ms per image."""

    def __init__(self, images: int):
        self.images = images

    def __enter__(self) -> Meter:
        synchronize()
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize()
        self.wall = time.perf_counter() - self.wall
        self.cpu = cpu_seconds() - self.cpu

    @property
    def rate(self) -> float:
        return self.images / self.wall

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.images


PIPELINES = ('cached', 'uint8', 'pil')


def pipeline_datasets(folder: Path, pipeline: str, workers: int | None,
                      ) -> tuple[FacesDataset, FacesDataset, int]:
    """(train, eval) datasets of `folder` and the DataLoader workers: 'cached' as train_main.py
    reads them (decode_cache.prepare_datasets: every image decoded once, up front; crop/flip on
    uint8, normalised per batch; automatic workers), 'uint8' the same without the cache, 'pil' as
    before (PIL decoding and TRANSFORM_TRAIN/TRANSFORM_TEST per image). Workers: `workers`, else
    the automatic choice ('cached') or devices.default_workers()."""
    if pipeline in ('cached', 'uint8'):
        datasets = (FacesDataset(str(folder), uint8_transform('assignment'), IMAGE_SIZE, 'tensor'),
                    FacesDataset(str(folder), None, IMAGE_SIZE, 'tensor'))
        if pipeline == 'cached':
            workers, line = prepare_datasets(datasets, device, workers, default_workers())
            print(line)
    else:
        datasets = (FacesDataset(str(folder), TRANSFORM_TRAIN, IMAGE_SIZE),
                    FacesDataset(str(folder), TRANSFORM_TEST, IMAGE_SIZE))
    return *datasets, default_workers() if workers is None else workers


class EndToEnd:
    """Trainer.train_one_epoch and its evaluation over PNG files, loaders warmed before timing."""

    def __init__(self, model: nn.Module, folder: Path, batch_size: int, workers: int | None,
                 pipeline: str):
        self.train_set, self.eval_set, workers = pipeline_datasets(folder, pipeline, workers)
        self.workers = workers
        self.trainer = Trainer(model, build_optimizer('Adam', model, 1e-4, 0.0),
                               nn.CrossEntropyLoss(), batch_size, self.train_set, self.eval_set,
                               self.eval_set, num_workers=workers, show_progress=False)
        # Start the persistent evaluation workers and warm the kernels before timing: in a real
        # run only the first of many epochs pays for that. (Training workers start every epoch,
        # as in a run, and that is timed.)
        next(iter(self.trainer._loader(self.train_set, shuffle=True)))
        self.trainer.evaluate_model_on_dataloader(self.eval_set)

    def train(self) -> Meter:
        with Meter(len(self.train_set)) as meter, contextlib.redirect_stdout(io.StringIO()):
            self.trainer.train_one_epoch()
        return meter

    def evaluate(self) -> Meter:
        with Meter(len(self.eval_set)) as meter:
            self.trainer.evaluate_model_on_dataloader(self.eval_set)
        return meter


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident memory (MiB) of this process and of its largest finished child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Alternate compute and end-to-end passes (A B A B), keep the best of each, print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-m', '--model', default='SimpleNet', help='model name (default: SimpleNet)')
    parser.add_argument('-b', '--batch-size', type=int, default=32)
    parser.add_argument('--images', type=int, default=256, help='PNG files for the end-to-end pass')
    parser.add_argument('--data', type=Path, default=None,
                        help='a folder with real/ and fake/ PNGs to read instead of generated ones '
                             '(e.g. a demo split); its first --images files are used')
    parser.add_argument('--pipelines', nargs='+', default=['cached'], choices=PIPELINES,
                        help='end-to-end input pipelines to time (default: cached, what '
                             'train_main.py uses; uint8: without the decoded-image cache; pil: '
                             'the per-image PIL path they replaced)')
    parser.add_argument('--format', default='auto', choices=('auto', 'contiguous', 'channels_last'),
                        help="memory format (default: auto = the model's entry in "
                             'performance.CHANNELS_LAST_ON_CPU)')
    parser.add_argument('--workers', type=int, nargs='+', default=[None],
                        help='DataLoader workers; several values time each (default: what '
                             'train_main.py picks: 0 on CPU for the cached pipeline, else '
                             f'{default_workers()})')
    parser.add_argument('--threads', type=int, default=default_threads(),
                        help='torch intra-op threads (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=2,
                        help='alternating rounds; the best of each measurement is kept (default: 2)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as train_main.py does on CPU
    seed_everything(args.seed)
    model_name = canonical_model_name(args.model)
    model = load_model(model_name, pretrained=False)
    if args.format == 'auto':
        model, memory_format, _ = prepare_model(model, model_name, device)
    else:
        memory_format = torch.channels_last if args.format == 'channels_last' else torch.contiguous_format
        model = model.to(device=device, memory_format=memory_format)
    batches = max(1, args.images // args.batch_size)
    load_before = os.getloadavg()[0]

    flops = forward_flops(model)
    peak = matmul_peak_gflops()
    results: dict[str, float] = {}

    def keep(key: str, meter: Meter) -> None:
        results[f'{key}_images_per_s'] = max(results.get(f'{key}_images_per_s', 0.0), meter.rate)
        results[f'{key}_cpu_ms'] = min(results.get(f'{key}_cpu_ms', math.inf), meter.cpu_ms)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if args.data is None:
            write_face_like_pngs(folder, batches * args.batch_size, args.seed)
        else:
            link_first_images(args.data, folder, batches * args.batch_size)
        runs = {}
        for pipeline in args.pipelines:
            for workers in args.workers:
                run = EndToEnd(model, folder, args.batch_size, workers, pipeline)
                runs[f'{pipeline}/{run.workers}w'] = run
        labels = list(runs)
        for _ in range(args.repeats):
            keep('train_compute', pure_compute(model, args.batch_size, batches, True, memory_format))
            for pipeline, run in runs.items():
                keep(f'train_{pipeline}', run.train())
            keep('eval_compute', pure_compute(model, args.batch_size, batches, False, memory_format))
            for pipeline, run in runs.items():
                keep(f'eval_{pipeline}', run.evaluate())
        runs.clear()
    own_rss, child_rss = peak_rss_mib()
    results.update({'forward_gflop_per_image': flops / 1e9, 'matmul_peak_gflops': peak,
                    'train_gflops': 3 * flops * results['train_compute_images_per_s'] / 1e9,
                    'eval_gflops': flops * results['eval_compute_images_per_s'] / 1e9,
                    'peak_rss_mib': own_rss, 'peak_rss_child_mib': child_rss})
    for phase in ('train', 'eval'):
        for pipeline in labels:
            results[f'{phase}_ratio_{pipeline}'] = (results[f'{phase}_{pipeline}_images_per_s']
                                                    / results[f'{phase}_compute_images_per_s'])
            # What the ratio would be on an idle machine with perfect overlap: CPU work per image.
            results[f'{phase}_cpu_ratio_{pipeline}'] = (results[f'{phase}_compute_cpu_ms']
                                                        / results[f'{phase}_{pipeline}_cpu_ms'])
    layout = 'channels_last' if memory_format == torch.channels_last else 'contiguous'
    print(f'{model_name} on {device} | {layout} | batch {args.batch_size} | '
          f'{batches * args.batch_size} images | {args.threads} threads | '
          f'workers {", ".join(labels)} | '
          f'load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after '
          f'({os.cpu_count()} cores)')
    print('img/s: best wall-clock rate; CPU ms/img: process + DataLoader workers, least of the '
          'rounds; CPU ratio = compute CPU / end-to-end CPU (the wall ratio of an idle machine '
          'whose workers overlap the compute perfectly)')
    header = ''.join(f' | {"e2e " + p + " img/s":>16} {"ratio":>5} {"CPU ms":>7} {"CPU ratio":>9}'
                     for p in labels)
    print(f'{"":6} {"compute img/s":>13} {"CPU ms":>7}{header} | {"GFLOP/s":>7}')
    for phase in ('train', 'eval'):
        cells = ''.join(f' | {results[f"{phase}_{p}_images_per_s"]:16.1f} '
                        f'{results[f"{phase}_ratio_{p}"]:5.2f} {results[f"{phase}_{p}_cpu_ms"]:7.1f} '
                        f'{results[f"{phase}_cpu_ratio_{p}"]:9.2f}' for p in labels)
        print(f'{phase:6} {results[f"{phase}_compute_images_per_s"]:13.1f} '
              f'{results[f"{phase}_compute_cpu_ms"]:7.1f}{cells} | {results[f"{phase}_gflops"]:7.1f}')
    print(f'forward {results["forward_gflop_per_image"]:.2f} GFLOP/image (train step ~3x); '
          f'float32 matmul peak {peak:.1f} GFLOP/s; train reaches '
          f'{results["train_gflops"] / peak:.0%} of it, eval {results["eval_gflops"] / peak:.0%}')
    print(f'peak RSS: main process {own_rss:.0f} MiB, largest worker {child_rss:.0f} MiB')
    return results


def link_first_images(source: Path, folder: Path, count: int) -> None:
    """Symlink the first `count` images of source/real and source/fake (alternating) into folder."""
    names = {label: list_images(source / label) for label in ('real', 'fake')}
    for label in names:
        (folder / label).mkdir(parents=True, exist_ok=True)
    taken = 0
    for index in range(max(len(n) for n in names.values())):
        for label, files in names.items():
            if index < len(files) and taken < count:
                (folder / label / files[index]).symlink_to(source / label / files[index])
                taken += 1


if __name__ == '__main__':
    main()
