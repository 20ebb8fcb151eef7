"""Leak-free splits: every group goes to one split, chosen by a seeded hash, per stratum of classes."""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from fmd.prepare.layout import CLASSES, SPLITS
from fmd.prepare.sources import Source


def split_groups(weights: Mapping[str, float], strata: Mapping[str, str], fractions: Sequence[float],
                 seed: int) -> dict[str, str]:
    """Assign every group to one split, per stratum, so each split gets about its fraction of weight.

    Groups are ordered by a hash of (seed, group), which is deterministic and keeps a group's place
    when others are added; each takes the split where the middle of its weight falls.
    """
    bounds = np.cumsum(fractions) / sum(fractions)
    result = {}
    for stratum in sorted(set(strata.values())):
        groups = sorted((g for g in weights if strata[g] == stratum),
                        key=lambda g: (hashlib.sha256(f'{seed}/{g}'.encode()).digest(), g))
        total = sum(weights[g] for g in groups)
        done = 0.0
        for group in groups:
            middle = (done + weights[group] / 2) / total
            result[group] = next((s for s, b in zip(SPLITS, bounds, strict=True) if middle < b), SPLITS[-1])
            done += weights[group]
    return result


def assign_splits(sources: Sequence[Source], fractions: Sequence[float], seed: int,
                  frames_per_video: int) -> dict[str, str]:
    """group -> split, stratified by the classes a group holds (real, fake or both)."""
    weights: Counter = Counter()
    labels: dict[str, set[int]] = {}
    for source in sources:
        weights[source.group] += frames_per_video if source.kind == 'video' else 1
        labels.setdefault(source.group, set()).add(source.label)
    strata = {g: '+'.join(CLASSES[label] for label in sorted(ls)) for g, ls in labels.items()}
    return split_groups(weights, strata, fractions, seed)

