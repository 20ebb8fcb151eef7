"""Evaluate the bonus model (checkpoints/bonus_model.pt) on the fakes_dataset test split.

Prints test accuracy, the ROC AUC of the fake score and the number of parameters, the way the
assignment's evaluation script does. `--export SRC` first copies a BonusNet training checkpoint
(e.g. checkpoints/fakes_dataset_BonusNet_Adam.pt, the best-validation epoch) to bonus_model.pt.
"""
from __future__ import annotations

import argparse
import os

from common import CHECKPOINT_DIR
from fmd.core.cli import add_batch_size_arg, add_common_args, add_compile_arg, add_progress_arg

DATASET = 'fakes_dataset'
BONUS_CHECKPOINT_PATH = os.path.join(CHECKPOINT_DIR, 'bonus_model.pt')  # bonus_model.BONUS_CHECKPOINT


def build_parser() -> argparse.ArgumentParser:
    """--export, --batch-size, --no-progress plus --data-root/--seed/--workers (light modules only:
    --help answers before torch is imported)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--export', metavar='SRC', default=None,
                        help=f'first copy this BonusNet training checkpoint to {BONUS_CHECKPOINT_PATH}')
    add_batch_size_arg(parser, help='evaluation batch size')
    add_progress_arg(parser)
    add_compile_arg(parser)
    add_common_args(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (build_parser)."""
    return build_parser().parse_args(argv)


if __name__ == '__main__':
    parse_args()  # --help and usage errors answer here, before the imports below load torch

import math
from pathlib import Path

from sklearn.metrics import roc_auc_score

from bonus_model import BONUS_CHECKPOINT, TRAIN_COMMAND, BonusNet, my_bonus_model
from fmd.core.atomic_io import atomic_torch_save, atomic_write_json
from fmd.core.cli import resolve_workers, run_cli
from fmd.core.devices import pick_device, seed_everything
from fmd.core.inference import fake_probability, predict
from fmd.core.runs import BONUS_RESULTS
from fmd.training.checkpoints import load_checkpoint
from fmd.training.performance import prepare_model
from utils import get_nof_params, load_dataset, resolve_data_root


def export_bonus_checkpoint(source: str | Path, destination: str | Path = BONUS_CHECKPOINT) -> Path:
    """Check that `source` is a BonusNet training checkpoint, then copy it atomically to `destination`."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f'Cannot export {source}: file not found. Train BonusNet first '
                                f'with `{TRAIN_COMMAND}`.')
    checkpoint = load_checkpoint(BonusNet(), source, 'BonusNet')  # named error on a wrong model
    atomic_torch_save(checkpoint, destination)
    return Path(destination)


def fake_score_auc(labels: list[int], fake_scores: list[float]) -> float:
    """ROC AUC of the fake score (positive label 1); NaN when the split holds one class only."""
    return float(roc_auc_score(labels, fake_scores)) if len(set(labels)) == 2 else math.nan


def main(argv: list[str] | None = None) -> tuple[float, int]:
    """Evaluate my_bonus_model() on the fakes_dataset test split; returns (test accuracy %, params)."""
    args = parse_args(argv)
    args.workers = resolve_workers(args.workers)
    seed_everything(args.seed)
    device = pick_device()
    if args.export:
        print(f'Exported {export_bonus_checkpoint(args.export)} from {args.export}')
    model, _, _ = prepare_model(my_bonus_model(), 'BonusNet', device, compile=args.compile)
    data_root = resolve_data_root(args.data_root)
    test_dataset = load_dataset(DATASET, 'test', data_root, uint8=True)

    logits, labels = predict(model, test_dataset, device=device, batch_size=args.batch_size,
                             workers=args.workers, show_progress=not args.no_progress)
    test_accuracy = 100.0 * float((logits.argmax(dim=1) == labels).double().mean())
    roc_auc = fake_score_auc(labels.tolist(), fake_probability(logits).tolist())
    nof_parameters = get_nof_params(model)

    print(f'BonusNet on {DATASET} test ({len(test_dataset)} images from {data_root})')
    print(f'Test accuracy: {test_accuracy:.2f}%')
    print(f'ROC AUC of the fake score: {roc_auc:.4f}')
    print(f'Number of parameters: {nof_parameters:,}')
    atomic_write_json({'test_accuracy': test_accuracy,
                       'roc_auc': None if math.isnan(roc_auc) else roc_auc,
                       'nof_parameters': nof_parameters, 'n_test': len(test_dataset),
                       'data_root': str(data_root)}, BONUS_RESULTS)
    print(f'Wrote {BONUS_RESULTS}')
    return test_accuracy, nof_parameters


if __name__ == '__main__':
    run_cli(main)
