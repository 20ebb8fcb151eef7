"""Our training epoch against a typical template solution's, on the same data, in one run (A B A B).

"Template" is a minimal reimplementation of the loop most public solutions of this assignment
use: a PIL Dataset (Image.open(...).convert('RGB') + TRANSFORM_TRAIN / TRANSFORM_TEST per image),
DataLoader(batch_size=32, num_workers=0), the model eager in contiguous (NCHW) memory, Adam, and
train + validation + test passes each epoch with loss.item() per batch.

"Ours" is what `train_main.py -d DATASET -m MODEL -b 32 -o Adam` runs per epoch: Trainer._one_epoch
(train, validate with ROC AUC, test, keep the best state) on load_dataset(..., uint8=True) splits,
the model from performance.prepare_model (its memory format; --compile to compile it), default
DataLoader workers and torch threads.

Both start from the same initial weights and see the same files; epochs alternate (ours,
template, ours, template, ...) after one untimed warm-up epoch each, and the script prints every
epoch's wall time and the ratio template / ours (above 1: ours is faster).

    python bench/bench_vs_template.py --data-root /tmp/perf_demo             # SimpleNet on fakes
    python bench/bench_vs_template.py --data-root /tmp/perf_demo -m BonusNet --limit 300
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_train import cpu_seconds
from fmd.core.devices import default_threads, default_workers, pick_device, seed_everything
from fmd.core.registry import build_model, canonical_model_name
from fmd.data.decode_cache import prepare_datasets
from fmd.data.presets import TRANSFORM_TEST, TRANSFORM_TRAIN
from fmd.training.optimizers import build_optimizer
from fmd.training.performance import describe, prepare_model
from plain_train_main import FacesDataset as TemplateDataset  # the plain solution's dataset
from trainer import LoggingParameters, Trainer
from utils import load_dataset


class TemplateRun:
    """The template's epoch: train, then evaluate validation and test, num_workers=0, eager."""

    def __init__(self, model: nn.Module, root: Path, device: torch.device, batch_size: int):
        self.model, self.device = model.to(device), device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.criterion = nn.CrossEntropyLoss()
        self.train_loader = DataLoader(TemplateDataset(root / 'train', TRANSFORM_TRAIN),
                                       batch_size=batch_size, shuffle=True, num_workers=0)
        self.eval_loaders = [DataLoader(TemplateDataset(root / part, TRANSFORM_TEST),
                                        batch_size=batch_size, shuffle=False, num_workers=0)
                             for part in ('val', 'test')]

    def epoch(self) -> None:
        self.model.train()
        total_loss, correct = 0.0, 0
        for inputs, targets in self.train_loader:
            inputs, targets = inputs.to(self.device), targets.to(self.device)
            self.optimizer.zero_grad()
            outputs = self.model(inputs)
            loss = self.criterion(outputs, targets)
            loss.backward()
            self.optimizer.step()
            total_loss += loss.item() * inputs.size(0)
            correct += (outputs.argmax(1) == targets).sum().item()
        self.model.eval()
        with torch.no_grad():
            for loader in self.eval_loaders:
                for inputs, targets in loader:
                    inputs, targets = inputs.to(self.device), targets.to(self.device)
                    outputs = self.model(inputs)
                    total_loss += self.criterion(outputs, targets).item() * inputs.size(0)
                    correct += (outputs.argmax(1) == targets).sum().item()


class OurRun:
    """train_main.py's epoch: Trainer._one_epoch on uint8 splits, the model prepared for speed."""

    def __init__(self, model: nn.Module, model_name: str, data_root: Path, dataset: str,
                 device: torch.device, batch_size: int, workers: int, compile_model: bool):
        model, self.memory_format, self.compiled = prepare_model(model, model_name, device,
                                                                 compile=compile_model)
        splits = [load_dataset(dataset, part, data_root, uint8=True)
                  for part in ('train', 'val', 'test')]
        started = time.perf_counter()
        workers, self.data_line = prepare_datasets(splits, device, workers, default_workers())
        self.prepare_seconds = time.perf_counter() - started
        self.workers = workers
        self.trainer = Trainer(model, build_optimizer('Adam', model, 1e-3, 0.0),
                               nn.CrossEntropyLoss(), batch_size, *splits, device=device,
                               num_workers=workers, show_progress=False)
        parameters = LoggingParameters(model_name, dataset, 'Adam', {})
        self.record, self.best, _ = self.trainer._start(parameters, Path(os.devnull), resume=False)

    def epoch(self) -> None:
        self.trainer.epoch += 1
        self.trainer._one_epoch(self.record, self.best, 0)


def subset_root(data_root: Path, dataset: str, limit: int, scratch: Path) -> Path:
    """A data root holding `dataset` with at most `limit` images per split (symlinks), the
    real:fake ratio of each split kept."""
    for part in ('train', 'val', 'test'):
        split = data_root / dataset / part
        names = {label: sorted(n for n in os.listdir(split / label) if n.endswith('.png'))
                 for label in ('real', 'fake')}
        total = sum(len(n) for n in names.values())
        for label, files in names.items():
            keep = max(1, round(limit * len(files) / total)) if total > limit else len(files)
            (scratch / dataset / part / label).mkdir(parents=True)
            for name in files[:keep]:
                (scratch / dataset / part / label / name).symlink_to(split / label / name)
    return scratch


def timed(run: object) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process, its threads and DataLoader workers) of an epoch."""
    started, cpu = time.perf_counter(), cpu_seconds()
    with contextlib.redirect_stdout(io.StringIO()):
        run.epoch()
    return time.perf_counter() - started, cpu_seconds() - cpu


def main(argv: list[str] | None = None) -> dict:
    """Alternate our epoch and the template's; print each time and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-root', type=Path, required=True,
                        help='folder holding the dataset (e.g. demo data from fmd.demo_data)')
    parser.add_argument('-d', '--dataset', default='fakes_dataset')
    parser.add_argument('-m', '--model', default='SimpleNet')
    parser.add_argument('-b', '--batch-size', type=int, default=32)
    parser.add_argument('--rounds', type=int, default=2, help='timed (ours, template) pairs (default: 2)')
    parser.add_argument('--limit', type=int, default=None,
                        help='at most this many images per split (default: all)')
    parser.add_argument('--workers', type=int, default=None,
                        help="our DataLoader workers (default: train_main.py's automatic choice; "
                             "the template's: 0)")
    parser.add_argument('--compile', action='store_true', help='compile our model (torch.compile)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    model_name = canonical_model_name(args.model)
    threads = default_threads()
    torch.set_num_threads(threads)
    device = pick_device()
    seed_everything(args.seed)
    template_model = build_model(model_name, pretrained=False)
    our_model = copy.deepcopy(template_model)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        root = (subset_root(args.data_root, args.dataset, args.limit, Path(scratch))
                if args.limit else args.data_root)
        ours = OurRun(our_model, model_name, root, args.dataset, device, args.batch_size,
                      args.workers, args.compile)
        template = TemplateRun(template_model, root / args.dataset, device, args.batch_size)
        sizes = [len(ours.trainer.train_dataset), len(ours.trainer.validation_dataset),
                 len(ours.trainer.test_dataset)]
        print(f'{model_name} on {args.dataset} ({"/".join(map(str, sizes))} train/val/test images) '
              f'| {device} | {threads} torch threads | ours: {describe(ours.memory_format, ours.compiled)}'
              f' | template: contiguous, eager, 0 workers\nours: {ours.data_line} (preparing the data: '
              f'{ours.prepare_seconds:.1f} s once per run, not in the epoch times)', flush=True)
        warm = {'ours': timed(ours), 'template': timed(template)}
        print(f'warm-up epoch (not in the ratio): ours {warm["ours"][0]:.1f} s, template '
              f'{warm["template"][0]:.1f} s', flush=True)
        times: dict[str, list[tuple[float, float]]] = {'ours': [], 'template': []}
        for round_index in range(args.rounds):
            for name, run in (('ours', ours), ('template', template)):
                times[name].append(timed(run))
            (ours_wall, ours_cpu), (template_wall, template_cpu) = times['ours'][-1], times['template'][-1]
            print(f'round {round_index + 1}: ours {ours_wall:.1f} s ({ours_cpu:.1f} CPU s), template '
                  f'{template_wall:.1f} s ({template_cpu:.1f} CPU s), ratio {template_wall / ours_wall:.2f}'
                  f' (CPU {template_cpu / ours_cpu:.2f}; load {os.getloadavg()[0]:.1f})', flush=True)
    ratios = [t[0] / o[0] for o, t in zip(times['ours'], times['template'], strict=True)]
    cpu_ratios = [t[1] / o[1] for o, t in zip(times['ours'], times['template'], strict=True)]
    result = {'model': model_name, 'ours_seconds': times['ours'], 'template_seconds': times['template'],
              'ratio_median': statistics.median(ratios), 'cpu_ratio_median': statistics.median(cpu_ratios),
              'warm_up_seconds': warm, 'prepare_seconds': ours.prepare_seconds,
              'load_before': load_before, 'load_after': os.getloadavg()[0]}
    print(f'template / ours epoch time: median {result["ratio_median"]:.2f} over {len(ratios)} rounds '
          f'(per round {", ".join(f"{r:.2f}" for r in ratios)}); CPU seconds: median '
          f'{result["cpu_ratio_median"]:.2f}; load average {load_before:.1f} before, '
          f'{result["load_after"]:.1f} after on {os.cpu_count()} cores')
    print('On a loaded machine the wall ratio favours ours (its workers get a share of the CPU '
          'too); the CPU ratio does not, and is the conservative figure for an idle machine (there '
          "the template's decoding, with no workers, also leaves a core idle).")
    return result


if __name__ == '__main__':
    main()
