"""Quality bars of the demo datasets: colour statistics must not separate them, SimpleNet must learn.

Prints, per dataset, the test ROC AUC of logistic regression on six global statistics (per-channel
mean and std; bar: at most 0.65), of the ConvT checkerboard spectral peak alone (the synthetic
fingerprint) and of SimpleNet trained with the assignment's settings (Adam,
lr 0.001, batch 32; bar on fakes_dataset at `small`: at least 0.80).

    python bench/check_demo_quality.py --scale small --epochs 5
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmd.demo_data.build import generate_demo_datasets
from fmd.demo_data.layout import CLASSES, DATASETS, SCALES


def color_stats(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-image (mean R, G, B, std R, G, B) and labels (0 real, 1 fake) of one split folder."""
    features, labels = [], []
    for label, class_name in enumerate(CLASSES):
        for path in sorted((folder / class_name).glob('*.png')):
            pixels = np.asarray(Image.open(path).convert('RGB'), dtype=np.float64) / 255
            features.append(np.concatenate([pixels.mean((0, 1)), pixels.std((0, 1))]))
            labels.append(label)
    return np.array(features), np.array(labels)


def logistic_auc(root: Path, dataset: str) -> float:
    """Test ROC AUC of logistic regression on the six colour statistics, fit on train."""
    x_train, y_train = color_stats(root / dataset / 'train')
    x_test, y_test = color_stats(root / dataset / 'test')
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


def spectral_peak_auc(root: Path, dataset: str) -> float:
    """Test ROC AUC of one hand-made feature: the grey spectrum's checkerboard (Nyquist) peak."""
    scores, labels = [], []
    for label, class_name in enumerate(CLASSES):
        for path in sorted((root / dataset / 'test' / class_name).glob('*.png')):
            grey = np.asarray(Image.open(path).convert('L'), dtype=np.float64)
            spectrum = np.abs(np.fft.fft2(grey - grey.mean()))
            scores.append(spectrum[128, 128] / np.median(spectrum[120:137, 120:137]))
            labels.append(label)
    return float(roc_auc_score(labels, scores))


def simplenet_auc(root: Path, dataset: str, epochs: int, seed: int) -> list[float]:
    """Test ROC AUC (softmax P(fake)) after each epoch of SimpleNet, Adam lr 1e-3, batch 32."""
    import torch

    from fmd.core.devices import model_device
    from fmd.core.inference import fake_probability, predict
    from models import SimpleNet
    from trainer import Trainer
    from utils import load_dataset, seed_everything

    seed_everything(seed)
    parts = {part: load_dataset(dataset, part, root) for part in ('train', 'val', 'test')}
    model = SimpleNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(model, optimizer, torch.nn.CrossEntropyLoss(), 32, parts['train'],
                      parts['val'], parts['test'], seed=seed, show_progress=False)
    aucs = []
    for epoch in range(epochs):
        trainer.epoch = epoch
        trainer.train_one_epoch()
        logits, labels = predict(model, parts['test'], device=model_device(model), batch_size=64)
        aucs.append(float(roc_auc_score(labels.numpy(), fake_probability(logits).numpy())))
        print(f'  {dataset} epoch {epoch + 1}: test AUC {aucs[-1]:.3f}', flush=True)
    return aucs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', default='small', choices=list(SCALES))
    parser.add_argument('--root', default=None,
                        help='existing or target folder (default: demo_datasets for small, '
                             'else out/demo_<scale>)')
    parser.add_argument('--epochs', type=int, default=5, help='SimpleNet epochs (0 skips training)')
    parser.add_argument('--datasets', nargs='+', default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=None, help='generator processes')
    parser.add_argument('--threads', type=int, default=os.cpu_count(), help='torch threads')
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, args.threads))
    root = Path(args.root or ('demo_datasets' if args.scale == 'small' else f'out/demo_{args.scale}'))
    start = time.perf_counter()
    generate_demo_datasets(root, args.scale, args.seed, args.workers)
    print(f'data ready in {time.perf_counter() - start:.1f}s: {root}')
    for dataset in args.datasets:
        print(f'{dataset}: logistic regression on colour stats, test AUC '
              f'{logistic_auc(root, dataset):.3f} (bar <= 0.65); checkerboard spectral peak '
              f'alone, test AUC {spectral_peak_auc(root, dataset):.3f}', flush=True)
    for dataset in args.datasets if args.epochs > 0 else []:
        start = time.perf_counter()
        aucs = simplenet_auc(root, dataset, args.epochs, args.seed)
        bar = ' (bar >= 0.80)' if dataset == 'fakes_dataset' else ''
        print(f'{dataset}: SimpleNet {args.epochs} epochs, test AUC {aucs[-1]:.3f}{bar} '
              f'[{time.perf_counter() - start:.0f}s]', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
