"""Trained models from their checkpoints: load one into a model, or rebuild the model a checkpoint
was saved from. Reading the files is fmd.core.checkpoint_files."""
from __future__ import annotations

import os
from pathlib import Path

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
            f'Pass the checkpoint that train_main.py wrote for -m {model_name}.')
    model.load_state_dict(checkpoint['model'])
    return checkpoint


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
            raise CheckpointError(f'{path} does not record its model_name; pass the model with -m.')
        model_name = saved_name
    model_name = canonical_model_name(model_name)
    model = build_model(model_name, pretrained=False)
    load_checkpoint(model, path, model_name)
    model, _, _ = prepare_model(model, model_name, device, compile=compile)
    return model.eval()
