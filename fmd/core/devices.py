"""Which device to compute on: CUDA, then Apple MPS, then CPU; chosen once and passed explicitly.

torch and NumPy are imported by the functions that use them, so a script's --help (cli imports
default_workers) does not wait for torch.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING

from fmd.core.cli import default_workers, usable_cores  # noqa: F401 (default_workers: owned by fmd.core.cli, kept importable here)

if TYPE_CHECKING:
    import torch
    from torch import nn


def pick_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device('cuda')
    mps = getattr(torch.backends, 'mps', None)
    if mps is not None and mps.is_available():
        return torch.device('mps')
    return torch.device('cpu')


def model_device(model: nn.Module) -> torch.device:
    """The device the model's parameters live on (CPU for a parameter-free model)."""
    import torch

    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device('cpu')


def default_threads() -> int:
    """torch intra-op threads for the compute: torch's default (one per physical core, or
    $OMP_NUM_THREADS), but no more than the cores this process may run on (taskset, cpusets)."""
    import torch

    return max(1, min(torch.get_num_threads(), usable_cores()))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for reproducible runs."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
