"""What self-blending costs a training epoch: images/s with `--fakes self-blend` vs `--fakes dataset`.

`python bench/bench_self_blend.py [--data-root demo_datasets] [-d fakes_dataset] [-m BonusNet]`

Both epochs run train_main.py's pipeline (decoded-image cache, crop + flip, the automatic DataLoader
workers) through Trainer.train_one_epoch on the same model, alternating dataset, self-blend, dataset,
self-blend, ... so the ratio of their images/s is measured side by side. Also prints the data
pipeline alone (the loader without the model), the blend's CPU ms per image and the peak RSS.
Landmarks are found first when the dataset has none (python -m fmd.data.landmarks).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fmd.core.devices import default_threads, default_workers, pick_device, seed_everything
from fmd.data.decode_cache import prepare_datasets
from fmd.data.landmarks import LANDMARKS_FILE, add_landmarks
from fmd.data.presets import IMAGE_SIZE, uint8_transform
from fmd.data.self_blend import self_blend
from fmd.data.training_fakes import self_blend_splits
from fmd.training.optimizers import build_optimizer
from fmd.training.performance import keep_freed_memory, prepare_model
from trainer import Trainer
from utils import load_dataset, load_model


def timed_epoch(trainer: Trainer, dataset, epoch: int) -> float:
    """Seconds of one training epoch over `dataset`."""
    trainer.train_dataset, trainer.epoch = dataset, epoch
    started = time.perf_counter()
    trainer.train_one_epoch()
    return time.perf_counter() - started


def loader_rate(trainer: Trainer, dataset) -> float:
    """Images/s of the training DataLoader alone (decode cache, blend, crop, flip, collate)."""
    loader = trainer._loader(dataset, shuffle=True)
    started = time.perf_counter()
    count = sum(len(targets) for _, targets in loader)
    return count / (time.perf_counter() - started)


def blend_ms(dataset, count: int = 64) -> float:
    """CPU ms per self_blend call on the first `count` blended faces."""
    faces = [dataset.base[i][0].permute(1, 2, 0).numpy() for i in dataset.blended[:count]]
    started = time.process_time()
    for k, face in enumerate(faces):
        self_blend(face, dataset.points[k], np.random.default_rng(k))
    return 1000 * (time.process_time() - started) / len(faces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default='demo_datasets')
    parser.add_argument('-d', '--dataset', default='fakes_dataset')
    parser.add_argument('-m', '--model', default='BonusNet')
    parser.add_argument('-b', '--batch-size', type=int, default=32)
    parser.add_argument('--rounds', type=int, default=2, help='A/B rounds (default: 2)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--blend-workers', type=int, default=None,
                        help='DataLoader workers of the self-blend epochs (default: the automatic choice)')
    args = parser.parse_args()
    seed_everything(args.seed)
    torch.set_num_threads(default_threads())
    keep_freed_memory()  # as train_main.py does on CPU
    device = pick_device()
    folder = Path(args.data_root) / args.dataset
    if not (folder / LANDMARKS_FILE).is_file():
        add_landmarks(folder, default_workers(), progress=False)

    plain = load_dataset(args.dataset, 'train', args.data_root, uint8=True)
    blended, _, bases, line = self_blend_splits(args.data_root, args.dataset, 'self-blend',
                                                uint8_transform('assignment'), args.seed, IMAGE_SIZE)
    workers, cache_line = prepare_datasets([plain, *bases], device, None, default_workers())
    print(f'{line}\n{cache_line}')
    model, _, _ = prepare_model(load_model(args.model), args.model, device)
    trainer = Trainer(model, build_optimizer('Adam', model, 1e-3, 0.9), nn.CrossEntropyLoss(),
                      args.batch_size, plain, plain, plain, device=device, num_workers=workers,
                      seed=args.seed, show_progress=False)
    blend_workers = workers if args.blend_workers is None else args.blend_workers
    blend_trainer = Trainer(model, trainer.optimizer, nn.CrossEntropyLoss(), args.batch_size, plain, plain,
                            plain, device=device, num_workers=blend_workers, seed=args.seed,
                            show_progress=False)
    timed_epoch(trainer, plain, 1)  # warm-up: first-touch allocations, oneDNN kernel choice
    rates: dict[str, list[float]] = {'dataset': [], 'self-blend': []}
    for round_ in range(args.rounds):
        for name, dataset, runner in (('dataset', plain, trainer), ('self-blend', blended, blend_trainer)):
            seconds = timed_epoch(runner, dataset, 2 + round_)
            rates[name].append(len(dataset) / seconds)
            print(f'round {round_ + 1} {name:10}: {len(dataset)} images in {seconds:.1f} s, '
                  f'{rates[name][-1]:.1f} images/s', flush=True)
    data_plain, data_blend = loader_rate(trainer, plain), loader_rate(trainer, blended)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f'\n{args.model}, batch {args.batch_size}, {device}, {torch.get_num_threads()} threads, '
          f'{workers} DataLoader workers ({blend_workers} for the self-blend epochs)')
    print('| epoch | training images/s (median) | data pipeline alone, images/s |')
    print('|---|---:|---:|')
    print(f'| --fakes dataset | {median["dataset"]:.1f} | {data_plain:.0f} |')
    print(f'| --fakes self-blend | {median["self-blend"]:.1f} | {data_blend:.0f} |')
    per_round = ', '.join(f'{b / a:.2f}' for a, b in zip(rates['dataset'], rates['self-blend'], strict=True))
    print(f'self-blend / dataset images/s: {median["self-blend"] / median["dataset"]:.2f} '
          f'(per round: {per_round})')
    print(f'self_blend: {blend_ms(blended):.1f} CPU ms per face | peak RSS {rss:.0f} MiB')


if __name__ == '__main__':
    main()
