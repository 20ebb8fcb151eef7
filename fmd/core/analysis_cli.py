"""What the analysis scripts share: -m/--checkpoint/-d, loading their inputs, and saving figures.

The flags take the course template's spellings (-m/--model, -cpp/--checkpoint_path, -d/--dataset)
and, like the template, have defaults: SimpleNet on fakes_dataset with the checkpoint train_main.py
writes for that model and dataset. The parser is built from light modules (no torch): a script's
--help answers at once.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fmd.core.cli import (  # noqa: F401 (scripts import use_agg_backend here)
    MODEL_HELP,
    add_batch_size_arg,
    add_common_args,
    add_compile_arg,
    add_progress_arg,
    model_name,
    use_agg_backend,
)
from fmd.core.devices import pick_device
from fmd.core.runs import checkpoint_path, log_path
from fmd.data.data_root import resolve_data_root

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset


DEFAULT_MODEL = 'SimpleNet'
DEFAULT_DATASET = 'fakes_dataset'


def add_analysis_args(parser: argparse.ArgumentParser, batch_size: bool = False) -> argparse.ArgumentParser:
    """-m/--checkpoint/-d for the analysis scripts (the template's spellings and defaults), plus
    --no-progress and the common arguments (--data-root, --seed, --workers); `batch_size`: also
    --batch-size."""
    parser.add_argument('-m', '--model', default=DEFAULT_MODEL, type=model_name, metavar='MODEL',
                        help=f'model name: {MODEL_HELP} (default: %(default)s)')
    parser.add_argument('-d', '--dataset', default=DEFAULT_DATASET,
                        help='dataset folder under the data root whose test split is analysed '
                             '(default: %(default)s)')
    parser.add_argument('--checkpoint', '-cpp', '--checkpoint_path', dest='checkpoint_path', default=None,
                        metavar='PATH', help='checkpoint written by train_main.py '
                                             f'(default: {default_run_file_help("checkpoint")})')
    if batch_size:
        add_batch_size_arg(parser, help='test images per model batch')
    add_progress_arg(parser)
    add_compile_arg(parser)
    return add_common_args(parser)


def analysis_parser(description: str | None,
                    add_args: Callable[[argparse.ArgumentParser], None] | None = None,
                    batch_size: bool = False) -> argparse.ArgumentParser:
    """The parser every analysis script starts from, plus a script's own flags (`add_args`)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_analysis_args(parser, batch_size=batch_size)
    if add_args is not None:
        add_args(parser)
    return parser


def load_analysis_inputs(args: argparse.Namespace, device: torch.device | None = None,
                         uint8: bool = False) -> tuple[str, Path, nn.Module, Dataset]:
    """Model name, data root, trained model (eval mode, on `device`, in its memory format, compiled
    with --compile: performance.prepare_model) and the test split.

    Bad input (unknown model, missing data or checkpoint, wrong architecture) raises an error whose
    message names the file; scripts run under cli.run_cli turn it into one line. uint8=True: the
    split's items are uint8 images for inference.predict, which normalises them per batch.
    """
    from fmd.core.registry import canonical_model_name
    from fmd.training.checkpoints import load_trained_model
    from utils import load_dataset

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
    from fmd.core.cli import resolve_workers
    from fmd.core.devices import seed_everything
    from fmd.core.registry import canonical_model_name

    if args.checkpoint_path is None:
        args.checkpoint_path = str(default_run_file('checkpoint', args.dataset,
                                                    canonical_model_name(args.model)))
    args.workers = resolve_workers(args.workers)
    seed_everything(args.seed)
    if args.compile and not compile_allowed:
        print('Note: --compile is ignored here (a few images, layer hooks).')
        args.compile = False
    return (args, *load_analysis_inputs(args, device, uint8=uint8))


def default_run_file(kind: str, dataset: str, model: str) -> Path:
    """The `kind` ('checkpoint' or 'log') train_main.py writes for `model` (a registered name: give
    an alias through registry.canonical_model_name first) on `dataset` with the default optimizer:
    the default of -cpp, and of plot_accuracy_and_loss.py's -j."""
    return (checkpoint_path if kind == 'checkpoint' else log_path)(dataset, model)


def default_run_file_help(kind: str) -> str:
    """How --help names that default: the pattern, then the file of the default -m and -d."""
    return (f'{default_run_file(kind, "<dataset>", "<model>")}, the file train_main.py writes for -m '
            f'on -d: {default_run_file(kind, DEFAULT_DATASET, DEFAULT_MODEL)} with the defaults')


def save_figure(figure: object, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure (tight box) atomically, close it, print and return its path."""
    import matplotlib.pyplot as plt

    from fmd.core.atomic_io import atomic_write

    path = Path(path)
    atomic_write(path, lambda handle: figure.savefig(handle, dpi=dpi, bbox_inches='tight',
                                                     format=path.suffix.lstrip('.') or 'png'))
    plt.close(figure)
    print(f'wrote {path}')
    return path
