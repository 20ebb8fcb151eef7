"""How a run compares with chance: the majority baseline, a binomial test of its accuracy, the AUC band.

Q16 reports these numbers; the saliency answers use them to say whether a model's maps can show
anything it has learnt.
"""
from __future__ import annotations

import math

from fmd.reporting.facts import RunFacts


def chance_figures(run: RunFacts) -> dict | None:
    """Majority baseline, binomial p-value of the test accuracy and the AUC chance band."""
    if not run.metrics or run.best_epoch is None:
        return None
    from scipy.stats import binomtest

    n_real, n_fake = run.metrics['n_real'], run.metrics['n_fake']
    n = n_real + n_fake
    baseline = max(n_real, n_fake) / n
    accuracy = run.at_best('test_acc')
    correct = round(accuracy / 100 * n)
    p_value = binomtest(correct, n, baseline, alternative='greater').pvalue
    sd = math.sqrt((n_real + n_fake + 1) / (12 * n_real * n_fake)) if n_real and n_fake else math.nan
    return {'n': n, 'baseline': 100 * baseline, 'accuracy': accuracy, 'correct': correct,
            'p_value': float(p_value), 'auc': run.fake_auc(),
            'auc_band': (0.5 - 1.96 * sd, 0.5 + 1.96 * sd)}


def near_chance(run: RunFacts) -> bool | None:
    """True when the run's test AUC lies inside the 95% band of a label-blind score."""
    figures = chance_figures(run)
    if figures is None or figures['auc'] is None:
        return None
    low, high = figures['auc_band']
    return low <= figures['auc'] <= high
