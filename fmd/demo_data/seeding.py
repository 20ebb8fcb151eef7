"""Random streams keyed by what they are for, so every image is independent of the order of work."""
from __future__ import annotations

import hashlib

import numpy as np

IdentityKey = tuple[str, str, int]  # (dataset, split, number drawn from that split's private pool)
IDENTITY_POOL_SIZE = 1 << 40  # large enough that two images rarely share a face by chance


def keyed_rng(seed: int, *key: object) -> np.random.Generator:
    """A generator that depends only on (seed, key), never on which worker asks or when."""
    digest = hashlib.sha256('/'.join(map(str, (seed, *key))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], 'little'))


def identity_keys(seed: int, dataset: str, split: str, class_name: str,
                  index: int) -> tuple[IdentityKey, IdentityKey | None]:
    """Keys of the face(s) in one image: (target, the face-swap source or None).

    Keys are drawn from a pool private to (dataset, split), so no identity appears in two splits.
    """
    rng = keyed_rng(seed, dataset, split, class_name, index, 'identity')
    target = (dataset, split, int(rng.integers(IDENTITY_POOL_SIZE)))
    source = None
    if dataset == 'fakes_dataset' and class_name == 'fake':
        source = (dataset, split, int(rng.integers(IDENTITY_POOL_SIZE)))
    return target, source
