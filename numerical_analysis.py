"""ROC and DET curves of a trained detector on a test set, plus a metrics JSON (AUC, AP, EER, accuracy).

    python numerical_analysis.py -m SimpleNet -d fakes_dataset
        --checkpoint checkpoints/fakes_dataset_SimpleNet_Adam.pt
"""
from __future__ import annotations

import argparse
import sys

from fmd.core.analysis_cli import analysis_parser
from fmd.core.cli import bootstrap_int
from fmd.core.metrics import DEFAULT_BOOTSTRAP


def add_bootstrap_arg(parser: argparse.ArgumentParser) -> None:
    """--bootstrap: resamples of the AUC interval."""
    parser.add_argument('--bootstrap', type=bootstrap_int, default=DEFAULT_BOOTSTRAP,
                        help='bootstrap resamples for the AUC intervals, drawn from --seed '
                             '(default: %(default)s)')


def build_parser() -> argparse.ArgumentParser:
    """-m/--checkpoint/-d, --batch-size, --bootstrap and the common flags, from light modules."""
    return analysis_parser(__doc__, add_bootstrap_arg, batch_size=True)


if __name__ == '__main__':
    build_parser().parse_args()  # --help and usage errors answer here, before the imports below load torch

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import DetCurveDisplay, RocCurveDisplay, average_precision_score, roc_auc_score
from torch import nn
from torch.utils.data import Dataset

from fmd.analysis.inputs import start_analysis
from fmd.core.analysis_cli import save_figure, use_agg_backend
from fmd.core.atomic_io import atomic_write_json
from fmd.core.cli import parse_api_args, run_cli
from fmd.core.devices import model_device
from fmd.core.inference import predict
from fmd.core.metrics import (
    CI_LEVEL,
    balanced_accuracy_percent,
    bootstrap_auc_ci,
    equal_error_rate,
)
from fmd.core.runs import figure_path, metrics_path
from utils import get_nof_params

FIRST_SCORE_NAME = 'first (real) score'
SECOND_SCORE_NAME = 'second (fake) score'


def get_soft_scores_and_true_labels(dataset: Dataset, model: nn.Module, batch_size: int = 32,
                                    num_workers: int = 0, show_progress: bool = False,
                                    ) -> tuple[list[float], list[float], list[int]]:
    """Logit 0 (real score), logit 1 (fake score) and the label of every sample, in dataset order.

    The model runs in eval mode under no_grad; its previous train/eval mode is restored afterwards.
    """
    logits, labels = predict(model, dataset, device=model_device(model), batch_size=batch_size,
                             workers=num_workers, show_progress=show_progress)
    return logits[:, 0].tolist(), logits[:, 1].tolist(), labels.tolist()


def plot_roc_curve(roc_curve_figure: plt.Figure, all_first_soft_scores: Sequence[float],
                   all_second_soft_scores: Sequence[float], gt_labels: Sequence[int]) -> plt.Figure:
    """ROC curves of both scores (positive label 1 = fake); the title gives each score's AUC."""
    ax = roc_curve_figure.gca()
    aucs = []
    for name, scores in ((FIRST_SCORE_NAME, all_first_soft_scores),
                         (SECOND_SCORE_NAME, all_second_soft_scores)):
        RocCurveDisplay.from_predictions(gt_labels, scores, pos_label=1, name=name, ax=ax)
        aucs.append(roc_auc_score(gt_labels, scores))
    ax.plot([0, 1], [0, 1], 'k--', linewidth=0.8, label='chance')
    ax.set_title(f'ROC (positive = fake): {FIRST_SCORE_NAME} AUC {aucs[0]:.3f}, '
                 f'{SECOND_SCORE_NAME} AUC {aucs[1]:.3f}', fontsize=9)
    ax.legend(loc='lower right', title='positive = fake: the real score is expected below the diagonal',
              title_fontsize=7, fontsize=8)
    return roc_curve_figure


def plot_det_curve(det_curve_figure: plt.Figure, all_first_soft_scores: Sequence[float],
                   all_second_soft_scores: Sequence[float], gt_labels: Sequence[int]) -> plt.Figure:
    """DET curves (normal-deviate axes, percentage ticks) of both scores, positive label 1."""
    ax = det_curve_figure.gca()
    for name, scores in ((FIRST_SCORE_NAME, all_first_soft_scores),
                         (SECOND_SCORE_NAME, all_second_soft_scores)):
        DetCurveDisplay.from_predictions(gt_labels, scores, pos_label=1, name=name, ax=ax)
    ax.set_title('DET curve (positive = fake)')
    ax.legend(loc='upper right', fontsize=8)
    return det_curve_figure


def score_metrics(gt_labels: Sequence[int], scores: Sequence[float], accuracy: float, *,
                  n_resamples: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict:
    """ROC AUC with its 95% bootstrap interval, average precision and EER of one score (positive
    label 1), plus argmax accuracy."""
    return {'roc_auc': float(roc_auc_score(gt_labels, scores)),
            'roc_auc_ci': bootstrap_auc_ci(gt_labels, scores, n_resamples, seed),
            'average_precision': float(average_precision_score(gt_labels, scores, pos_label=1)),
            'eer': equal_error_rate(gt_labels, scores),
            'accuracy_at_argmax_percent': accuracy}


def compute_metrics(all_first_soft_scores: Sequence[float], all_second_soft_scores: Sequence[float],
                    gt_labels: Sequence[int], *, n_resamples: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict:
    """Metrics of the fake logit and of softmax P(fake), and the test set's class counts.

    AUC intervals: `n_resamples` stratified bootstrap resamples drawn from `seed` (metrics.py).
    """
    logits = torch.tensor([list(all_first_soft_scores), list(all_second_soft_scores)]).T
    labels = np.asarray(gt_labels)
    prob_fake = torch.softmax(logits.double(), dim=1)[:, 1].tolist()
    predicted = logits.argmax(dim=1).numpy()
    accuracy = 100.0 * float((predicted == labels).mean())
    n_real, n_fake = int((labels == 0).sum()), int((labels == 1).sum())
    bootstrap = {'n_resamples': n_resamples, 'seed': seed}
    return {'n_real': n_real, 'n_fake': n_fake,
            'fake_to_real_ratio': n_fake / n_real if n_real else None,
            'accuracy_at_argmax_percent': accuracy,
            # the argmax class (0 real, 1 fake) as a score, thresholded at 1
            'balanced_accuracy_at_argmax_percent': balanced_accuracy_percent(labels, predicted, 1),
            'roc_auc_ci_level': CI_LEVEL, 'bootstrap': bootstrap,
            'first_score': {'roc_auc': float(roc_auc_score(labels, all_first_soft_scores))},
            'second_score': score_metrics(labels, all_second_soft_scores, accuracy, **bootstrap),
            'softmax_fake_probability': score_metrics(labels, prob_fake, accuracy, **bootstrap)}


def main(argv: Sequence[str] | None = None) -> dict:
    """Score the test split, save ROC/DET figures and the metrics JSON; returns the metrics.
    `argv` None: every default (-m SimpleNet -d fakes_dataset and its checkpoint), never sys.argv."""
    args, model_name, data_root, model, test_dataset = start_analysis(
        parse_api_args(build_parser(), argv), uint8=True)

    first, second, labels = get_soft_scores_and_true_labels(
        test_dataset, model, batch_size=args.batch_size, num_workers=args.workers,
        show_progress=not args.no_progress)
    if len(set(labels)) < 2:
        raise ValueError(f'the {args.dataset} test split under {data_root} holds only one class; '
                         'ROC/DET curves need real and fake images.')

    written = []
    for kind, plot in (('roc_curve', plot_roc_curve), ('det_curve', plot_det_curve)):
        figure = plot(plt.figure(figsize=(7, 6)), first, second, labels)
        written.append(save_figure(figure, figure_path(args.dataset, model_name, kind)))

    metrics = {'model': model_name, 'dataset': args.dataset,
               'checkpoint_path': str(args.checkpoint_path), 'n_params': get_nof_params(model),
               **compute_metrics(first, second, labels, n_resamples=args.bootstrap, seed=args.seed)}
    path = atomic_write_json(metrics, metrics_path(args.dataset, model_name))
    print(f'wrote {path}')

    fake_metrics = metrics['second_score']
    low, high = fake_metrics['roc_auc_ci']
    print(f'{model_name} on {args.dataset} test ({metrics["n_real"]} real, {metrics["n_fake"]} fake): '
          f'AUC {fake_metrics["roc_auc"]:.3f} [{low:.3f}, {high:.3f}] | '
          f'AP {fake_metrics["average_precision"]:.3f} | EER {100 * fake_metrics["eer"]:.2f}% | '
          f'accuracy {metrics["accuracy_at_argmax_percent"]:.2f}%')
    return metrics


if __name__ == '__main__':
    use_agg_backend()
    run_cli(main, sys.argv[1:])
