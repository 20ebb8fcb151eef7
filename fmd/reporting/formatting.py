"""Number formatting shared by every answer: percentages, scores, counts and durations."""
from __future__ import annotations

import math


def pct(value: float | None) -> str:
    """Accuracy in percent, two decimals: '86.33%'."""
    return 'n/a' if value is None else f'{value:.2f}%'


def auc(value: float | None) -> str:
    """AUC, AP and other [0, 1] scores, three decimals."""
    return 'n/a' if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f'{value:.3f}'


def count(value: int | None) -> str:
    return 'n/a' if value is None else f'{value:,}'


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f'{hours} h {minutes} min {rest} s'
    return f'{minutes} min {rest} s' if minutes else f'{rest} s'
