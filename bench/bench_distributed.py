"""Training throughput of torchrun data parallelism: 1 CPU process, N CPU processes (gloo), GPUs.

Each configuration trains through the real Trainer (DistributedDataParallel under torchrun) on the
same folder of 256x256 PNGs with the same global batch; after a warm-up epoch the best of
--repeats timed epochs gives images/s. On a 2-core machine two processes share the same two cores
as one process with two threads, so expect no gain there: the figures show what the collectives
cost; one process with one thread gives the per-core baseline. With CUDA it adds 1 GPU (and every
GPU of the machine when there are several).

`python bench/bench_distributed.py [-m SimpleNet] [-b 32] [--images 128] [--processes 2]`
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

RESULT_PREFIX = 'BENCH_RESULT '


def worker(args: argparse.Namespace) -> None:
    """Time Trainer.train_one_epoch in this process (one rank of a torchrun job, or alone)."""
    import torch
    import torch.distributed as dist
    from torch import nn

    from faces_dataset import FacesDataset
    from fmd.core.devices import pick_device, seed_everything
    from fmd.core.registry import build_model, canonical_model_name
    from fmd.data.presets import TRANSFORM_TEST, TRANSFORM_TRAIN
    from fmd.training.distributed import process_group
    from trainer import Trainer

    with process_group() as (distributed, device):
        device = device or (pick_device() if args.device == 'auto' else torch.device(args.device))
        seed_everything(args.seed)
        model = build_model(canonical_model_name(args.model), pretrained=False)
        train_set = FacesDataset(args.data, TRANSFORM_TRAIN)
        test_set = FacesDataset(args.data, TRANSFORM_TEST)
        trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=1e-4), nn.CrossEntropyLoss(),
                          args.batch_size // distributed.world_size, train_set, test_set, test_set,
                          device=device, num_workers=args.workers, seed=args.seed,
                          show_progress=False, distributed=distributed)

        def timed(step: object) -> float:
            if distributed.enabled:
                dist.barrier()
            if device.type == 'cuda':
                torch.cuda.synchronize()
            started = time.perf_counter()
            step()
            if device.type == 'cuda':
                torch.cuda.synchronize()
            return time.perf_counter() - started  # train/eval end in an all_reduce: all ranks done

        trainer.epoch = 1
        trainer.train_one_epoch()  # warm-up: kernels, allocator, DDP buckets
        trainer.evaluate_model_on_dataloader(test_set)
        train_s = min(timed(trainer.train_one_epoch) for _ in range(args.repeats))
        eval_s = min(timed(lambda: trainer.evaluate_model_on_dataloader(test_set))
                     for _ in range(args.repeats))
        if distributed.is_main:
            print(RESULT_PREFIX + json.dumps({
                'processes': distributed.world_size, 'backend': distributed.backend,
                'device': str(device), 'threads': torch.get_num_threads(),
                'train_images_per_s': len(train_set) / train_s,
                'eval_images_per_s': len(test_set) / eval_s}), flush=True)


def measure(args: argparse.Namespace, data: Path, processes: int, gpu: bool,
            threads: int | None = None) -> dict:
    """Run the worker alone (1 process) or under torchrun; returns its result line."""
    options = ['--worker', '--data', str(data), '-m', args.model, '-b', str(args.batch_size),
               '--workers', str(args.workers), '--repeats', str(args.repeats), '--seed', str(args.seed),
               '--device', 'auto' if gpu else 'cpu']
    script = str(Path(__file__).resolve())
    command = ([sys.executable, script, *options] if processes == 1 else
               [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                f'--nproc_per_node={processes}', script, *options])
    env = {**os.environ, 'PYTHONPATH': str(PROJECT_ROOT)}
    if not gpu:
        env['CUDA_VISIBLE_DEVICES'] = ''  # CPU rows stay on the CPU (gloo) on a GPU machine too
    if threads is not None:
        env['OMP_NUM_THREADS'] = str(threads)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if result.returncode != 0 or not lines:
        sys.exit(f'error: {" ".join(command)} failed:\n{result.stderr[-2000:]}')
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def main(argv: list[str] | None = None) -> list[dict]:
    """Measure every configuration this machine has and print one table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-m', '--model', default='SimpleNet', help='model (default: SimpleNet)')
    parser.add_argument('-b', '--batch-size', type=int, default=32,
                        help='global batch size, split across the processes (default: 32)')
    parser.add_argument('--images', type=int, default=128, help='training PNGs (default: 128)')
    parser.add_argument('--processes', type=int, default=2,
                        help='CPU processes of the data-parallel row (default: 2)')
    parser.add_argument('--workers', type=int, default=0,
                        help='DataLoader workers per process (default: 0, so every row uses the '
                             'same cores)')
    parser.add_argument('--repeats', type=int, default=2, help='timed epochs; the best is kept')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--data', help=argparse.SUPPRESS)
    parser.add_argument('--device', default='auto', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return []
    if args.batch_size % args.processes:
        parser.error(f'-b {args.batch_size} does not split evenly across {args.processes} processes')

    import torch

    from bench_train import write_face_like_pngs

    # (processes, GPU, threads): one process with all cores, one with one core (the per-process
    # share of the torchrun row), N processes; then the GPUs.
    rows = [(1, False, None), (1, False, 1), (args.processes, False, None)]
    if torch.cuda.is_available():
        rows.append((1, True, None))
        if torch.cuda.device_count() > 1:
            rows.append((torch.cuda.device_count(), True, None))
    results = []
    with tempfile.TemporaryDirectory() as folder:
        write_face_like_pngs(Path(folder), args.images, args.seed)
        for processes, gpu, threads in rows:
            results.append(measure(args, Path(folder), processes, gpu, threads))
    baseline = results[0]['train_images_per_s']
    print(f'{args.model} | global batch {args.batch_size} | {args.images} training images | '
          f'{args.workers} DataLoader workers per process | {os.cpu_count()} CPU cores')
    print(f'{"processes":>9} {"backend":>8} {"device":>8} {"threads":>7} {"train img/s":>12} '
          f'{"vs 1 CPU":>8} {"eval img/s":>11}')
    for row in results:
        print(f'{row["processes"]:9d} {row["backend"] or "-":>8} {row["device"]:>8} {row["threads"]:7d} '
              f'{row["train_images_per_s"]:12.1f} {row["train_images_per_s"] / baseline:8.2f} '
              f'{row["eval_images_per_s"]:11.1f}')
    return results


if __name__ == '__main__':
    main()
