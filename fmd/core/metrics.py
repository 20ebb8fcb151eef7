"""Detection metrics of a fake score (positive label 1 = fake): AUC with a bootstrap interval, EER and
its threshold, accuracy and balanced accuracy, and AUC over groups (videos, sources).

Shared by numerical_analysis.py and fmd.evaluate so both report the same numbers the same way.
scikit-learn (about 1.5 s to import) is imported by the functions that use it, not by `import metrics`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_BOOTSTRAP = 1000
CI_LEVEL = 0.95
BOOTSTRAP_CHUNK_VALUES = 2_000_000  # resamples x images held in memory at once


class OneClassError(ValueError):
    """Scores of one class only: AUC, EER and balanced accuracy are undefined (not NaN)."""


def require_both_classes(labels: Sequence[int], what: str = 'the scored set') -> np.ndarray:
    """Labels as an int array; OneClassError naming `what` unless both 0 (real) and 1 (fake) occur."""
    labels = np.asarray(labels, dtype=np.int64)
    n_fake = int((labels == 1).sum())
    n_real = int((labels == 0).sum())
    if n_real == 0 or n_fake == 0 or n_real + n_fake != len(labels):
        raise OneClassError(f'{what} holds {n_real} real and {n_fake} fake images; AUC, EER and '
                            'balanced accuracy need both classes (labels 0 and 1 only).')
    return labels


def equal_error_rate(gt_labels: Sequence[int], scores: Sequence[float]) -> float:
    """Error rate where false-positive and false-negative rates meet, interpolated on the ROC curve."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(gt_labels, scores, pos_label=1, drop_intermediate=False)
    gap = fpr - (1.0 - tpr)  # rises from -1 (threshold +inf) to +1 (threshold -inf)
    cross = int(np.argmax(gap >= 0))
    if cross == 0 or gap[cross] == 0:
        return float(fpr[cross])
    t = gap[cross - 1] / (gap[cross - 1] - gap[cross])
    return float(fpr[cross - 1] + t * (fpr[cross] - fpr[cross - 1]))


def eer_threshold(gt_labels: Sequence[int], scores: Sequence[float]) -> float:
    """The score threshold (fake when score >= it) whose false-positive and false-negative rates are
    closest: the operating point the EER describes, usable on other data."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(gt_labels, scores, pos_label=1, drop_intermediate=False)
    finite = np.isfinite(thresholds)
    gaps = np.abs(fpr - (1.0 - tpr))[finite]
    return float(thresholds[finite][int(np.argmin(gaps))])


def auc_and_threshold(gt_labels: Sequence[int], scores: Sequence[float]) -> tuple[float | None, float | None]:
    """(ROC AUC, eer_threshold) of one validation pass; (None, None) unless both classes occur."""
    gt_labels, scores = np.asarray(gt_labels), np.asarray(scores)
    if len(np.unique(gt_labels)) != 2:
        return None, None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(gt_labels, scores)), eer_threshold(gt_labels, scores)


def accuracy_percent(gt_labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> float:
    """Accuracy in percent of the decision `score >= threshold` = fake."""
    from sklearn.metrics import accuracy_score

    return 100.0 * float(accuracy_score(gt_labels, np.asarray(scores) >= threshold))


def balanced_accuracy_percent(gt_labels: Sequence[int], scores: Sequence[float],
                              threshold: float = 0.5) -> float:
    """Mean of the real and fake recalls in percent (scikit-learn) at `score >= threshold` = fake:
    unlike accuracy it does not reward predicting the majority class."""
    from sklearn.metrics import balanced_accuracy_score

    return 100.0 * float(balanced_accuracy_score(gt_labels, np.asarray(scores) >= threshold))


def bootstrap_auc_ci(gt_labels: Sequence[int], scores: Sequence[float], n_resamples: int = DEFAULT_BOOTSTRAP,
                     seed: int = 0, level: float = CI_LEVEL) -> list[float]:
    """[low, high] percentile interval of the ROC AUC over stratified bootstrap resamples.

    Reals and fakes are resampled separately (each resample keeps both classes and their counts);
    the same seed gives the same interval. Each resample's AUC is the Mann-Whitney statistic with
    ties counted one half, computed from resample counts, so 1000 resamples take milliseconds.
    """
    labels = require_both_classes(gt_labels)
    scores = np.asarray(scores, dtype=np.float64)
    negatives, positives = np.sort(scores[labels == 0]), scores[labels == 1]
    below = np.searchsorted(negatives, positives, side='left')  # negatives strictly below each positive
    up_to = np.searchsorted(negatives, positives, side='right')  # ... below or tied
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_CHUNK_VALUES // len(labels))  # bounds memory on large sets
    aucs = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        neg_counts = count_resample(rng, len(negatives), size)
        pos_counts = count_resample(rng, len(positives), size)
        cumulative = np.concatenate([np.zeros((size, 1)), np.cumsum(neg_counts, axis=1)], axis=1)
        wins = cumulative[:, below] + 0.5 * (cumulative[:, up_to] - cumulative[:, below])
        aucs.append((pos_counts * wins).sum(axis=1) / (len(positives) * len(negatives)))
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(np.concatenate(aucs), [tail, 100.0 - tail])
    return [float(low), float(high)]


def count_resample(rng: np.random.Generator, n: int, n_resamples: int) -> np.ndarray:
    """How often each of n items is drawn in each of n_resamples draws of n with replacement."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    offsets = np.arange(n_resamples)[:, None] * n
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n).reshape(n_resamples, n)


def group_scores(gt_labels: Sequence[int], scores: Sequence[float],
                 groups: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Label and mean score of each group (sorted by name, then label) and the number of groups.

    A group holding both real and fake images (an identity with a real and a fake video) counts as
    one unit per class, so every unit has one label.
    """
    labels = np.asarray(gt_labels, dtype=np.int64)
    keys = np.asarray([f'{group}\x00{label}' for group, label in zip(groups, labels, strict=True)])
    units, first, index = np.unique(keys, return_index=True, return_inverse=True)
    sums = np.bincount(index, weights=np.asarray(scores, dtype=np.float64), minlength=len(units))
    return labels[first], sums / np.bincount(index, minlength=len(units)), len(units)


def group_auc(gt_labels: Sequence[int], scores: Sequence[float], groups: Sequence[str],
              what: str = 'the groups') -> tuple[float, int]:
    """(ROC AUC over groups, number of groups): each group scored by the mean score of its images."""
    from sklearn.metrics import roc_auc_score

    group_labels, means, n_groups = group_scores(gt_labels, scores, groups)
    require_both_classes(group_labels, what)
    return float(roc_auc_score(group_labels, means)), n_groups


def detection_summary(gt_labels: Sequence[int], scores: Sequence[float], *,
                      n_resamples: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                      what: str = 'the scored set') -> dict:
    """AUC with its bootstrap CI, AP, EER and its threshold, accuracy and balanced accuracy (percent,
    at score >= 0.5) of P(fake) scores; a one-class set is a OneClassError naming `what`."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = require_both_classes(gt_labels, what)
    return {'n_real': int((labels == 0).sum()), 'n_fake': int((labels == 1).sum()),
            'auc': float(roc_auc_score(labels, scores)),
            'auc_ci': bootstrap_auc_ci(labels, scores, n_resamples, seed),
            'ap': float(average_precision_score(labels, scores, pos_label=1)),
            'eer': equal_error_rate(labels, scores),
            'eer_threshold': eer_threshold(labels, scores),
            'accuracy': accuracy_percent(labels, scores),
            'balanced_accuracy': balanced_accuracy_percent(labels, scores)}
