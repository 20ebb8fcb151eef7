"""What the analysis scripts share: -m/--checkpoint/-d, and saving figures (fmd.analysis.inputs
loads what the flags name).

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

from fmd.core.cli import (  # noqa: F401 (scripts import use_agg_backend here)
    MODEL_HELP,
    add_batch_size_arg,
    add_common_args,
    add_compile_arg,
    add_progress_arg,
    model_name,
    use_agg_backend,
)
from fmd.core.runs import checkpoint_path, log_path

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
