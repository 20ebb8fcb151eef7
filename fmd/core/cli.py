"""What every script's command line shares: common flags, checked number types, one-line errors."""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from fmd.core.devices import default_workers
from fmd.core.interrupts import exit_code, sigterm_raises

T = TypeVar('T')


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (rejects nan and inf)."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be a finite number > 0, got {text}')
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f'must be a finite number >= 0, got {text}')
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be an integer >= 0, got {text}')
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be an integer >= 1, got {text}')
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a finite number, got {text}')
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not an integer: {text!r}') from None


def use_agg_backend() -> None:
    """Draw off-screen; scripts call this in their __main__ path, never on import."""
    import matplotlib

    matplotlib.use('Agg')


def add_common_args(parser: argparse.ArgumentParser,
                    automatic_workers: str | None = None) -> argparse.ArgumentParser:
    """--data-root, --seed and --workers, shared by every script. `automatic_workers`: --workers
    defaults to None (the script picks) and this text says how."""
    from fmd.data.data_root import DATA_ROOT_ENV, search_order_text

    parser.add_argument('--data-root', default=None,
                        help=f'folder holding the dataset folders (default: ${DATA_ROOT_ENV}, else '
                             f'{search_order_text()})')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--workers', type=non_negative_int,
                        default=None if automatic_workers else default_workers(),
                        help=f'DataLoader worker processes (default: {automatic_workers})'
                        if automatic_workers else 'DataLoader worker processes (default: %(default)s)')
    return parser


def add_compile_arg(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--compile: torch.compile the model (performance.compile_model; eager with a warning where
    no compiler works)."""
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the model: faster steps after a one-off compile of '
                             'about half a minute per graph on CPU (train, eval); falls back to '
                             'eager with a warning where no compiler works')
    return parser


def error_line(error: BaseException) -> str:
    """The last non-empty line of an error's message: DataLoader workers wrap the original error
    (the one that names the file) in a traceback dump, and its last line is what the user needs."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) == 1:
        return lines[0]
    return re.sub(r'^[\w.]+(Error|Exception): ', '', lines[-1])  # drop the worker's "module.Error: "


# Errors that bad input produces: each becomes one line on stderr instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, LookupError, RuntimeError)


DEBUG_ENV = 'FACES_DEBUG'  # set to 1 to see the full traceback of an error


def run_cli(main: Callable[..., T], *args: Any) -> T:
    """Run a script's main(): bad input exits 1 with one line, Ctrl-C exits 130, SIGTERM 143.

    Set $FACES_DEBUG=1 to get the full traceback instead of the one line.
    """
    try:
        with sigterm_raises():
            return main(*args)
    except KeyboardInterrupt as interrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(exit_code(interrupt))
    except USER_ERRORS as error:
        if os.environ.get(DEBUG_ENV):
            raise
        sys.exit(f'error: {error_line(error)}')
