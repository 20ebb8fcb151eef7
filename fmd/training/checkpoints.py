"""Trained models from their checkpoints: load one into a model, or rebuild the model a checkpoint
was saved from. Reading the files is fmd.core.checkpoint_files."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmd.core.checkpoint_files import (  # noqa: F401 (their owner is fmd.core.checkpoint_files)
    VAL_THRESHOLD_KEY,
    CheckpointError,
    CheckpointMismatchError,
    read_checkpoint,
    state_dict_problems,
    stored_val_threshold,
)
from fmd.core.registry import build_model, canonical_model_name
from fmd.training.performance import prepare_model


def load_checkpoint(model: nn.Module, checkpoint_path: str | os.PathLike, model_name: str) -> dict:
    """Load checkpoint['model'] into model (weights_only); a wrong architecture is a named error."""
    path = Path(checkpoint_path)
    checkpoint = read_checkpoint(path)
    saved_name = checkpoint.get('model_name')
    problems = [f'it was saved from {saved_name}'] if saved_name not in (None, model_name) else []
    found = state_dict_problems(model.state_dict(), checkpoint['model'])
    if found:
        problems.append(f'{len(found)} problems with its weights (first: {found[0]})')
    if problems:
        raise CheckpointMismatchError(
            f'{path} is not a {model_name} checkpoint: {"; ".join(problems)}. '
            f'Pass a checkpoint that train_main.py wrote for {model_name}.')
    model.load_state_dict(checkpoint['model'])
    return checkpoint


RESUMABLE_KEYS = ('epoch', 'model', 'optimizer', 'scaler', 'record', 'best', 'stale_epochs', 'rng')


def check_resumable(state: Mapping, path: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer, run: Any) -> None:
    """Before `train_main.py --resume` loads anything: CheckpointMismatchError, naming the file and what
    to do, when the interrupted state at `path` belongs to another run: another model, dataset or
    optimizer in its record (`run` has model_name, dataset_name, optimizer_name: trainer's
    LoggingParameters), weights that do not fit `model`, or an optimizer state of another shape."""
    advice = ('resume with the flags that run was started with, or start this run without --resume '
              '(the file is then replaced after its first epoch).')
    missing = [key for key in RESUMABLE_KEYS if key not in state]
    if missing:
        raise CheckpointMismatchError(f'--resume: {path} is not the resumable state of an interrupted '
                                      f'run (no {", ".join(missing)}); start without --resume.')
    expected = {'model': run.model_name, 'dataset': run.dataset_name, 'optimizer': run.optimizer_name}
    record = state['record'] if isinstance(state['record'], Mapping) else {}
    saved_optimizer = record.get('optimizer')
    found = {'model': record.get('model'), 'dataset': record.get('dataset'),
             'optimizer': saved_optimizer.get('name') if isinstance(saved_optimizer, Mapping) else None}
    differ = [f'{key} {found[key]}' for key, value in expected.items() if found[key] not in (None, value)]
    if differ:
        this_run = ', '.join(f'{key} {value}' for key, value in expected.items())
        raise CheckpointMismatchError(f'--resume: {path} was left by a run of {", ".join(differ)}, not by '
                                      f'this run ({this_run}); {advice}')
    problems = state_dict_problems(model.state_dict(), state['model'])
    if problems:
        raise CheckpointMismatchError(f'--resume: {path} does not fit {run.model_name}: {len(problems)} '
                                      f'problems with its weights (first: {problems[0]}); {advice}')
    saved = state['optimizer'] if isinstance(state['optimizer'], Mapping) else {}
    groups = [len(group.get('params', ())) for group in saved.get('param_groups', ())
              if isinstance(group, Mapping)]
    if groups != [len(group['params']) for group in optimizer.param_groups]:
        raise CheckpointMismatchError(f'--resume: the optimizer state in {path} does not fit this run\'s '
                                      f'{run.optimizer_name} ({groups} tensors per group); {advice}')


def load_trained_model(path: str | os.PathLike, device: torch.device,
                       model_name: str | None = None, *, compile: bool = False) -> nn.Module:
    """Build the model a checkpoint was saved from (its `model_name`), load it, eval mode on
    `device` in its memory format (performance.prepare_model), compiled when `compile`.

    `model_name`, when given, must match the checkpoint (an -m flag that disagrees is an error).
    """
    checkpoint = read_checkpoint(path)
    saved_name = checkpoint.get('model_name')
    if model_name is None:
        if saved_name is None:
            raise CheckpointError(f'{path} does not record which model it holds (no model_name key), so '
                                  'the model cannot be built from it; pass a checkpoint that train_main.py '
                                  'wrote (it records model_name).')
        model_name = saved_name
    model_name = canonical_model_name(model_name)
    model = build_model(model_name, pretrained=False)
    load_checkpoint(model, path, model_name)
    model, _, _ = prepare_model(model, model_name, device, compile=compile)
    return model.eval()
