"""Checkpoint files: read them safely (weights_only), tell why a state does not fit a model, copy
state dicts for saving. The model files, the Trainer and every tool read checkpoints through here;
fmd.training.checkpoints rebuilds the models they hold."""
from __future__ import annotations

import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from fmd.core.runs import VAL_THRESHOLD_KEY


def stored_val_threshold(checkpoint: Mapping) -> float | None:
    """The checkpoint's validation EER threshold (P(fake) >= it is fake), None when it stores none."""
    stored = checkpoint.get(VAL_THRESHOLD_KEY)
    if isinstance(stored, (int, float)) and math.isfinite(stored):
        return float(stored)
    return None


class CheckpointError(ValueError):
    """A file that is not a readable training checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint does not belong to the model it is being loaded into."""


def read_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load(weights_only=True) of a training checkpoint; every failure is one named error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint {path} not found; train the model first '
                                '(see docs/training.md: train_main.py).')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError,
            ImportError, KeyError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f'{path} is not a readable checkpoint ({first_line[:160]}); it may be '
                              'truncated or from another program: train again or pass the file '
                              'train_main.py wrote.') from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('model'), Mapping):
        raise CheckpointError(f'{path} is not a training checkpoint (no "model" state dict); pass '
                              'the file train_main.py wrote.')
    return checkpoint


def state_dict_problems(expected: Mapping[str, torch.Tensor],
                        state: Mapping[str, object]) -> list[str]:
    """Why `state` cannot load strictly into a model whose state_dict is `expected` ([] if it can)."""
    problems = []
    for key, tensor in expected.items():
        if key not in state:
            problems.append(f'missing key {key!r}')
        elif not torch.is_tensor(state[key]) or state[key].shape != tensor.shape:
            found = tuple(state[key].shape) if torch.is_tensor(state[key]) else type(state[key]).__name__
            problems.append(f'key {key!r} has shape {found}, the model expects {tuple(tensor.shape)}')
    problems += [f'unexpected key {key!r}' for key in state if key not in expected]
    return problems


def cpu_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict's tensors copied to the CPU in contiguous memory, as a checkpoint stores them."""
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in state.items()}
