"""Load what an analysis script works on: the trained model of -m/--checkpoint and the test split of -d.

The scripts' command line is fmd.core.analysis_cli (light, for --help); this module loads torch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from fmd.core.analysis_cli import default_run_file
from fmd.core.cli import resolve_workers
from fmd.core.devices import pick_device, seed_everything
from fmd.core.registry import canonical_model_name
from fmd.data.data_root import resolve_data_root
from fmd.training.checkpoints import load_trained_model
from utils import load_dataset


def load_analysis_inputs(args: argparse.Namespace, device: torch.device | None = None,
                         uint8: bool = False) -> tuple[str, Path, nn.Module, Dataset]:
    """Model name, data root, trained model (eval mode, on `device`, in its memory format, compiled
    with --compile: performance.prepare_model) and the test split.

    Bad input (unknown model, missing data or checkpoint, wrong architecture) raises an error whose
    message names the file; scripts run under cli.run_cli turn it into one line. uint8=True: the
    split's items are uint8 images for inference.predict, which normalises them per batch.
    """
    device = pick_device() if device is None else device
    model_name = canonical_model_name(args.model)
    data_root = resolve_data_root(args.data_root)
    test_dataset = load_dataset(args.dataset, 'test', data_root, uint8=uint8)
    model = load_trained_model(args.checkpoint_path, device, model_name,
                               compile=getattr(args, 'compile', False))
    return model_name, data_root, model, test_dataset


def start_analysis(args: argparse.Namespace, device: torch.device | None = None, uint8: bool = False,
                   compile_allowed: bool = True) -> tuple[argparse.Namespace, str, Path, nn.Module, Dataset]:
    """Take a script's parsed -m/--checkpoint/-d and common flags (analysis_parser), seed, and load
    (model name, data root, model, test split); --workers auto becomes its number (resolve_workers).

    uint8: the test split yields uint8 images (for inference.predict); compile_allowed=False
    ignores --compile with a note (scripts that look at a few images through hooks).
    """
    if args.checkpoint_path is None:
        args.checkpoint_path = str(default_run_file('checkpoint', args.dataset,
                                                    canonical_model_name(args.model)))
    args.workers = resolve_workers(args.workers)
    seed_everything(args.seed)
    if args.compile and not compile_allowed:
        print('Note: --compile is ignored here (a few images, layer hooks).')
        args.compile = False
    return (args, *load_analysis_inputs(args, device, uint8=uint8))
