"""Evaluate checkpoints on the test splits of datasets: ROC AUC with a 95% bootstrap interval,
balanced accuracy and accuracy, one markdown row per (checkpoint, dataset).

A checkpoint tested on another dataset than the one it was trained on gives a cross-dataset row.
The interval resamples the test images (reals and fakes separately, 1000 resamples, seed 0 by
default; the AUC of a resample is the Mann-Whitney statistic with ties counted one half), the same
computation as the evaluation engine's `bootstrap_auc_ci`. The decision for (balanced) accuracy is
P(fake) >= 0.5, i.e. the argmax of the two logits.

    python bench/recipe_table.py --checkpoints runs/a/checkpoints/ciplab_BonusNet_AdamW.pt \\
        --datasets /tmp/data_real:ciplab /tmp/recipe_demo:fakes_dataset
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checkpoints import load_trained_model, read_checkpoint
from devices import pick_device
from inference import fake_probability, predict
from registry import build_model
from utils import load_dataset


def count_resample(rng: np.random.Generator, n: int, n_resamples: int) -> np.ndarray:
    """How often each of n items is drawn in each of n_resamples draws of n with replacement."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    offsets = np.arange(n_resamples)[:, None] * n
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n).reshape(n_resamples, n)


def bootstrap_auc_ci(labels: np.ndarray, scores: np.ndarray, n_resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the ROC AUC over stratified bootstrap resamples of the images."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    negatives, positives = np.sort(scores[labels == 0]), scores[labels == 1]
    if len(negatives) == 0 or len(positives) == 0:
        raise ValueError('the AUC interval needs real and fake images')
    below = np.searchsorted(negatives, positives, side='left')
    up_to = np.searchsorted(negatives, positives, side='right')
    rng = np.random.default_rng(seed)
    neg_counts = count_resample(rng, len(negatives), n_resamples)
    pos_counts = count_resample(rng, len(positives), n_resamples)
    cumulative = np.concatenate([np.zeros((n_resamples, 1)), np.cumsum(neg_counts, axis=1)], axis=1)
    wins = cumulative[:, below] + 0.5 * (cumulative[:, up_to] - cumulative[:, below])
    aucs = (pos_counts * wins).sum(axis=1) / (len(positives) * len(negatives))
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(aucs, [tail, 100.0 - tail])
    return float(low), float(high)


def summarize(labels: np.ndarray, scores: np.ndarray, n_resamples: int, seed: int) -> dict:
    """AUC, its bootstrap interval, balanced accuracy and accuracy (percent) at P(fake) >= 0.5."""
    decisions = scores >= 0.5
    return {'n': len(labels), 'auc': float(roc_auc_score(labels, scores)),
            'auc_ci': list(bootstrap_auc_ci(labels, scores, n_resamples, seed)),
            'balanced_accuracy': 100.0 * float(balanced_accuracy_score(labels, decisions)),
            'accuracy': 100.0 * float(accuracy_score(labels, decisions))}


def load_scoring_model(path: str, device: torch.device) -> tuple[nn.Module, str, str]:
    """(model in eval mode, trained-on dataset, label) of a checkpoint train_main.py wrote, or of an
    interrupted run's state (checkpoints/<run>.interrupted.pt: its best epoch so far)."""
    checkpoint = read_checkpoint(path)
    if 'best' in checkpoint and 'record' in checkpoint:  # interrupted state
        record, best = checkpoint['record'], checkpoint['best']
        model = build_model(record['model'], pretrained=False)
        model.load_state_dict(best['model'])
        return (model.to(device).eval(), record['dataset'],
                f"{path} (stopped after epoch {checkpoint['epoch']}, best {best['epoch']})")
    return load_trained_model(path, device), checkpoint.get('dataset', '?'), str(path)


def parse_dataset(spec: str, default_root: str | None) -> tuple[str | None, str]:
    """'ROOT:NAME' or 'NAME' (under --data-root) -> (root, name)."""
    root, sep, name = spec.rpartition(':')
    return (root, name) if sep else (default_root, spec)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Checkpoints, datasets and the bootstrap settings."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoints', nargs='+', required=True,
                        help='training checkpoints (train_main.py output; an .interrupted.pt state '
                             'gives its best epoch so far), model read from each')
    parser.add_argument('--datasets', nargs='+', required=True,
                        help='test sets as ROOT:NAME or NAME (then under --data-root)')
    parser.add_argument('--data-root', default=None, help='data root for bare dataset names')
    parser.add_argument('--split', default='test', help='split to score (default: test)')
    parser.add_argument('--resamples', type=int, default=1000, help='bootstrap resamples (1000)')
    parser.add_argument('--seed', type=int, default=0, help='bootstrap seed (default: 0)')
    parser.add_argument('--batch-size', type=int, default=32, help='scoring batch size (32)')
    parser.add_argument('--json', default=None, help='also write the rows to this JSON file')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    """Score every checkpoint on every dataset, print a markdown table, return the rows."""
    args = parse_args(argv)
    device = pick_device()
    datasets = [parse_dataset(spec, args.data_root) for spec in args.datasets]
    rows = []
    for path in args.checkpoints:
        model, trained_on, label = load_scoring_model(path, device)
        for root, name in datasets:
            logits, labels = predict(model, load_dataset(name, args.split, root), device=device,
                                     batch_size=args.batch_size)
            scores = fake_probability(logits).numpy()
            row = {'checkpoint': label, 'model': type(model).__name__,
                   'trained_on': trained_on, 'tested_on': name,
                   **summarize(labels.numpy(), scores, args.resamples, args.seed)}
            rows.append(row)
            print(f'scored {path} on {name}', file=sys.stderr)
    print('| model | trained on | tested on | n | AUC [95% CI] | balanced acc. | acc. | checkpoint |')
    print('|---|---|---|---|---|---|---|---|')
    for row in rows:
        low, high = row['auc_ci']
        print(f"| {row['model']} | {row['trained_on']} | {row['tested_on']} | {row['n']} | "
              f"{row['auc']:.3f} [{low:.3f}, {high:.3f}] | {row['balanced_accuracy']:.1f}% | "
              f"{row['accuracy']:.1f}% | {row['checkpoint']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + '\n')
    return rows


if __name__ == '__main__':
    main()
