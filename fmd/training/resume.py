"""A run's random state, saved with its resumable state: a resumed run repeats the uninterrupted one."""
from __future__ import annotations

import random

import numpy as np
import torch


def rng_state(generator: torch.Generator) -> dict:
    """Every random state a run draws from: torch's, the shuffle generator's, NumPy's and Python's."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian)
    return {'torch': torch.get_rng_state(), 'shuffle': generator.get_state(),
            'numpy': numpy_state, 'python': random.getstate()}


def restore_rng_state(state: dict, generator: torch.Generator) -> None:
    """Undo rng_state."""
    torch.set_rng_state(state['torch'])
    generator.set_state(state['shuffle'])
    name, keys, position, has_gauss, cached_gaussian = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    random.setstate(state['python'])
