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
    """A whole number with thousands separators: '16,901,762'."""
    return 'n/a' if value is None else f'{value:,}'


def duration(seconds: float) -> str:
    """Seconds as '1 h 2 min 3 s', '2 min 3 s' or '3 s'."""
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f'{hours} h {minutes} min {rest} s'
    return f'{minutes} min {rest} s' if minutes else f'{rest} s'
