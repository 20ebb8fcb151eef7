"""Evaluate the bonus model (checkpoints/bonus_model.pt) on the fakes_dataset test split.

Prints test accuracy, the ROC AUC of the fake score and the number of parameters, the way the
assignment's evaluation script does; main() with no arguments returns (test accuracy, parameters)
as the course template's does, whatever sys.argv holds. `--export SRC` first copies a BonusNet
training checkpoint (e.g. checkpoints/fakes_dataset_BonusNet_Adam.pt, the best-validation epoch) to
bonus_model.pt (the template's load line) and bonus.pt (the assignment's text), the same bytes.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from common import CHECKPOINT_DIR
from fmd.core.cli import (
    add_batch_size_arg,
    add_common_args,
    add_compile_arg,
    add_progress_arg,
    parse_api_args,
)

DATASET = 'fakes_dataset'
BONUS_CHECKPOINT_PATH = os.path.join(CHECKPOINT_DIR, 'bonus_model.pt')  # bonus_model.BONUS_CHECKPOINT
BONUS_CHECKPOINT_COPY_PATH = os.path.join(CHECKPOINT_DIR, 'bonus.pt')  # bonus_model.BONUS_CHECKPOINT_COPY


def build_parser() -> argparse.ArgumentParser:
    """--export, --batch-size, --no-progress plus --data-root/--seed/--workers (light modules only:
    --help answers before torch is imported)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--export', metavar='SRC', default=None,
                        help=f'first copy this BonusNet training checkpoint to {BONUS_CHECKPOINT_PATH} '
                             f'(the template\'s load line) and {BONUS_CHECKPOINT_COPY_PATH} (the '
                             'assignment\'s text), the same bytes')
    add_batch_size_arg(parser, help='evaluation batch size')
    add_progress_arg(parser)
    add_compile_arg(parser)
    add_common_args(parser)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """`argv` parsed by build_parser; None: every default, never sys.argv (cli.parse_api_args)."""
    return parse_api_args(build_parser(), argv)


if __name__ == '__main__':
    parse_args(sys.argv[1:])  # --help and usage errors answer here, before the imports below load torch

import math
from pathlib import Path

from sklearn.metrics import roc_auc_score

from bonus_model import BONUS_CHECKPOINT, BONUS_CHECKPOINT_COPY, TRAIN_COMMAND, BonusNet, my_bonus_model
from fmd.core.atomic_io import atomic_torch_save, atomic_write, atomic_write_json
from fmd.core.cli import resolve_workers, run_cli
from fmd.core.devices import pick_device, seed_everything
from fmd.core.inference import fake_probability, predict
from fmd.core.runs import BONUS_RESULTS
from fmd.training.checkpoints import load_checkpoint
from fmd.training.performance import prepare_model
from utils import get_nof_params, load_dataset, resolve_data_root


def export_bonus_checkpoint(source: str | Path, destination: str | Path = BONUS_CHECKPOINT,
                            copy: str | Path | None = BONUS_CHECKPOINT_COPY) -> Path:
    """Check that `source` is a BonusNet training checkpoint, then save it atomically to `destination`
    (bonus_model.pt, which the template's load line reads) and the same bytes to `copy` (bonus.pt,
    the name the assignment's text gives; None: no copy). Returns `destination`."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f'Cannot export {source}: file not found. Train BonusNet first '
                                f'with `{TRAIN_COMMAND}`.')
    checkpoint = load_checkpoint(BonusNet(), source, 'BonusNet')  # named error on a wrong model
    destination = atomic_torch_save(checkpoint, destination)
    if copy is not None:
        data = destination.read_bytes()
        atomic_write(copy, lambda handle: handle.write(data))
    return destination


def fake_score_auc(labels: list[int], fake_scores: list[float]) -> float:
    """ROC AUC of the fake score (positive label 1); NaN when the split holds one class only."""
    return float(roc_auc_score(labels, fake_scores)) if len(set(labels)) == 2 else math.nan


def main(argv: Sequence[str] | None = None) -> tuple[float, int]:
    """Evaluate my_bonus_model() on the fakes_dataset test split; returns (test accuracy %, params).

    main() with no arguments is the course template's main(): every default, whatever sys.argv holds."""
    args = parse_args(argv)
    args.workers = resolve_workers(args.workers)
    seed_everything(args.seed)
    device = pick_device()
    if args.export:
        print(f'Exported {export_bonus_checkpoint(args.export)} and {BONUS_CHECKPOINT_COPY} '
              f'from {args.export}')
    model, _, _ = prepare_model(my_bonus_model(), 'BonusNet', device, compile=args.compile)
    data_root = resolve_data_root(args.data_root)
    test_dataset = load_dataset(DATASET, 'test', data_root, uint8=True)

    logits, labels = predict(model, test_dataset, device=device, batch_size=args.batch_size,
                             workers=args.workers, show_progress=not args.no_progress)
    correct = int((logits.argmax(dim=1) == labels).sum())
    test_accuracy = 100.0 * correct / len(labels)  # as Trainer.test computes it, to the last bit
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
    run_cli(main, sys.argv[1:])
