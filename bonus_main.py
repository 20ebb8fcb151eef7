"""Evaluate the bonus model (checkpoints/bonus_model.pt) on the fakes_dataset test split.

Prints test accuracy, the ROC AUC of the fake score and the number of parameters, the way the
assignment's evaluation script does. `--export SRC` first copies a BonusNet training checkpoint
(e.g. checkpoints/fakes_dataset_BonusNet_Adam.pt, the best-validation epoch) to bonus_model.pt.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from bonus_model import BONUS_CHECKPOINT, export_bonus_checkpoint, my_bonus_model
from common import OUTPUT_DIR
from numerical_analysis import get_soft_scores_and_true_labels
from trainer import Trainer
from utils import (
    CheckpointMismatchError,
    add_common_args,
    atomic_write_json,
    get_nof_params,
    load_dataset,
    resolve_data_root,
    seed_everything,
)

DATASET = 'fakes_dataset'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """--export, --batch-size, --no-progress plus --data-root/--seed/--workers."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--export', metavar='SRC', default=None,
                        help=f'first copy this BonusNet training checkpoint to {BONUS_CHECKPOINT}')
    parser.add_argument('--batch-size', '-b', type=int, default=32,
                        help='evaluation batch size (default: 32)')
    parser.add_argument('--no-progress', action='store_true', help='hide the tqdm bars')
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    return args


def fake_score_auc(labels: list[int], fake_scores: list[float]) -> float:
    """ROC AUC of the fake score (positive label 1); NaN when the split holds one class only."""
    return float(roc_auc_score(labels, fake_scores)) if len(set(labels)) == 2 else math.nan


def main(argv: list[str] | None = None) -> tuple[float, int]:
    """Evaluate my_bonus_model() on the fakes_dataset test split; returns (test accuracy %, params)."""
    args = parse_args(argv)
    seed_everything(args.seed)
    try:
        if args.export:
            print(f'Exported {export_bonus_checkpoint(args.export)} from {args.export}')
        model = my_bonus_model()
        data_root = resolve_data_root(args.data_root)
        test_dataset = load_dataset(DATASET, 'test', data_root)
    except (CheckpointMismatchError, FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')

    # As in the assignment's evaluation script: a Trainer whose three datasets are the test split.
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0), nn.CrossEntropyLoss(),
                      args.batch_size, test_dataset, test_dataset, test_dataset,
                      num_workers=args.workers, seed=args.seed, show_progress=not args.no_progress)
    _, test_accuracy = trainer.evaluate_model_on_dataloader(test_dataset)
    _, fake_scores, labels = get_soft_scores_and_true_labels(
        test_dataset, trainer.model, batch_size=args.batch_size, num_workers=args.workers,
        show_progress=not args.no_progress)
    nof_parameters = get_nof_params(model)
    roc_auc = fake_score_auc(labels, fake_scores)

    print(f'BonusNet on {DATASET} test ({len(test_dataset)} images from {data_root})')
    print(f'Test accuracy: {test_accuracy:.2f}%')
    print(f'ROC AUC of the fake score: {roc_auc:.4f}')
    print(f'Number of parameters: {nof_parameters:,}')
    results_path = Path(OUTPUT_DIR) / 'bonus_main.json'
    atomic_write_json({'test_accuracy': test_accuracy,
                       'roc_auc': None if math.isnan(roc_auc) else roc_auc,
                       'nof_parameters': nof_parameters, 'n_test': len(test_dataset),
                       'data_root': str(data_root)}, results_path)
    print(f'Wrote {results_path}')
    return test_accuracy, nof_parameters


if __name__ == '__main__':
    main()
