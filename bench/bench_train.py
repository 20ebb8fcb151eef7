"""Training/evaluation throughput: pure compute on in-memory tensors vs. end to end from PNG files.

Both are measured in one run on the same model, so their ratio shows what image decoding, the
augmentation and the DataLoader cost. Also prints achieved GFLOP/s against a measured float32
matmul peak of this machine, and the peak resident memory of the process and its workers.
"""
from __future__ import annotations

import argparse
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

from faces_dataset import FacesDataset
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
                 repeats: int) -> float:
    """Best images/s of train steps (or eval forwards) on one in-memory batch, after a warm-up."""
    images = torch.randn(batch_size, 3, 256, 256, device=device)
    labels = torch.randint(0, 2, (batch_size,), device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
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
    best = 0.0
    for _ in range(repeats):
        synchronize()
        started = time.perf_counter()
        for _ in range(batches):
            step()
        synchronize()
        best = max(best, batches * batch_size / (time.perf_counter() - started))
    return best


def end_to_end(model: nn.Module, folder: Path, batch_size: int, workers: int,
               repeats: int) -> tuple[float, float]:
    """Best images/s of Trainer.train_one_epoch and of its evaluation, reading PNGs from `folder`."""
    train_set = FacesDataset(str(folder), TRANSFORM_TRAIN)
    test_set = FacesDataset(str(folder), TRANSFORM_TEST)
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=1e-4), nn.CrossEntropyLoss(),
                      batch_size, train_set, test_set, test_set, num_workers=workers,
                      show_progress=False)
    # Start both loaders' persistent workers and warm the kernels before timing: in a real run
    # only the first of many epochs pays for that.
    next(iter(trainer._loader(train_set, shuffle=True)))
    trainer.evaluate_model_on_dataloader(test_set)
    train_rate = eval_rate = 0.0
    for _ in range(repeats):
        synchronize()
        started = time.perf_counter()
        trainer.train_one_epoch()
        synchronize()
        train_rate = max(train_rate, len(train_set) / (time.perf_counter() - started))
        started = time.perf_counter()
        trainer.evaluate_model_on_dataloader(test_set)
        synchronize()
        eval_rate = max(eval_rate, len(test_set) / (time.perf_counter() - started))
    return train_rate, eval_rate


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident memory (MiB) of this process and of its largest finished child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run both measurements and print a table of figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-m', '--model', default='SimpleNet', help='model name (default: SimpleNet)')
    parser.add_argument('-b', '--batch-size', type=int, default=32)
    parser.add_argument('--images', type=int, default=256, help='PNG files for the end-to-end pass')
    parser.add_argument('--workers', type=int, default=default_workers())
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help='torch intra-op threads (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=2,
                        help='timed passes per measurement; the best is kept (default: 2)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    model_name = canonical_model_name(args.model)
    model = load_model(model_name, pretrained=False).to(device)
    batches = max(1, args.images // args.batch_size)

    flops = forward_flops(model)
    peak = matmul_peak_gflops()
    compute_train = pure_compute(model, args.batch_size, batches, True, args.repeats)
    compute_eval = pure_compute(model, args.batch_size, batches, False, args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        write_face_like_pngs(Path(folder), batches * args.batch_size, args.seed)
        e2e_train, e2e_eval = end_to_end(model, Path(folder), args.batch_size, args.workers,
                                         args.repeats)
    own_rss, child_rss = peak_rss_mib()

    results = {
        'train_images_per_s_compute': compute_train, 'train_images_per_s_end_to_end': e2e_train,
        'eval_images_per_s_compute': compute_eval, 'eval_images_per_s_end_to_end': e2e_eval,
        'train_ratio': e2e_train / compute_train, 'eval_ratio': e2e_eval / compute_eval,
        'forward_gflop_per_image': flops / 1e9, 'matmul_peak_gflops': peak,
        'train_gflops': 3 * flops * compute_train / 1e9, 'eval_gflops': flops * compute_eval / 1e9,
        'peak_rss_mib': own_rss, 'peak_rss_child_mib': child_rss,
    }
    print(f'{model_name} on {device} | batch {args.batch_size} | {batches * args.batch_size} images '
          f'| {args.threads} threads | {args.workers} workers')
    print(f'{"":10} {"compute img/s":>14} {"end-to-end img/s":>17} {"ratio":>6} {"GFLOP/s":>8}')
    for phase in ('train', 'eval'):
        print(f'{phase:10} {results[f"{phase}_images_per_s_compute"]:14.1f} '
              f'{results[f"{phase}_images_per_s_end_to_end"]:17.1f} '
              f'{results[f"{phase}_ratio"]:6.2f} {results[f"{phase}_gflops"]:8.1f}')
    print(f'forward {results["forward_gflop_per_image"]:.2f} GFLOP/image (train step ~3x); '
          f'float32 matmul peak {peak:.1f} GFLOP/s; train reaches '
          f'{results["train_gflops"] / peak:.0%} of it, eval {results["eval_gflops"] / peak:.0%}')
    print(f'peak RSS: main process {own_rss:.0f} MiB, largest worker {child_rss:.0f} MiB')
    return results


if __name__ == '__main__':
    main()
