"""What every script's command line shares: one convention for its flags, checked number types,
one-line errors and the exit codes.

The convention (tests/test_cli_convention.py checks every command against it):

- `--batch-size N` wherever a batch size is taken (aliases `--batch_size`, `-b`; dest `batch_size`);
- `--checkpoint PATH` for a checkpoint (the analysis scripts keep `-cpp`/`--checkpoint_path`);
- `--out DIR` is always a folder; the files written inside it have fixed names;
- `--workers N` defaults to auto everywhere: resolve_workers, one rule (AUTO_WORKERS_RULE);
- `--no-progress` and `--seed` wherever there is a progress bar or randomness;
- an assignment script's main(argv=None) parses `argv`, None meaning every default, never
  sys.argv (parse_api_args): only its `if __name__ == '__main__'` path hands it sys.argv[1:];
- exit codes: 0 done, 1 error (one line), 2 usage error (one line), 3 partial failure (some inputs
  failed, the others were done), 130/143 interrupted (Ctrl-C/SIGTERM).

This module imports neither torch nor NumPy: the parsers built from it answer --help at once.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fmd.core.atomic_io import refused_write_line
from fmd.core.interrupts import exit_code, sigterm_raises
from fmd.core.options import MODEL_NAMES

T = TypeVar('T')

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # what argparse exits with on a bad command line
EXIT_PARTIAL = 3  # some inputs failed, the others were done (detect, landmarks)

MAX_AUTO_WORKERS = 4
WORKERS_PER_CORE = 4  # --workers above this many per usable core is clamped: more only oversubscribes
MAX_BATCH_SIZE = 65536
MAX_FRAMES_PER_VIDEO = 256  # frames of one video held (as crops and previews) at once
MAX_BOOTSTRAP = 100_000
MAX_CROP_SIZE = 1024  # --size of the face crops (the models train at 256)
AUTO_WORKERS_RULE = (f'auto: min({MAX_AUTO_WORKERS}, usable cores); 0 for a training loader on CPU '
                     'whose images are all decoded in memory (train_main.py)')


class UsageError(ValueError):
    """A bad argument that only the script (not argparse) can see: run_cli exits 2 with one line."""


def usable_cores() -> int:
    """The cores this process may run on (taskset, cpusets), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """THE automatic number of worker processes of every command: min(4, usable cores)
    (bench/bench_train.py: 2 beat 1 on 2 cores; more than 4 only compete with the compute)."""
    return min(MAX_AUTO_WORKERS, usable_cores())


def resolve_workers(workers: int | None, in_memory: bool = False) -> int:
    """--workers as given, or for auto (None) the one rule: 0 when the data is already decoded in
    memory on CPU (`in_memory`: a worker would only copy it), else default_workers()."""
    if workers is not None:
        return workers
    return 0 if in_memory else default_workers()


def max_workers() -> int:
    """The most worker processes any command starts: WORKERS_PER_CORE per usable core."""
    return WORKERS_PER_CORE * usable_cores()


def workers_arg(text: str) -> int | None:
    """argparse type of --workers: an integer >= 0, or 'auto' (None: resolve_workers decides). More
    than max_workers() is clamped to it, with a one-line note on stderr."""
    if text == 'auto':
        return None
    workers = non_negative_int(text)
    if workers > max_workers():
        print(f'note: --workers {workers} is more than {WORKERS_PER_CORE} per usable core; using '
              f'{max_workers()} ({usable_cores()} usable cores)', file=sys.stderr)
        return max_workers()
    return workers


def add_workers_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                    what: str = 'DataLoader worker processes') -> None:
    """--workers N|auto, default auto (None) on every command; resolve_workers turns it into N."""
    parser.add_argument('--workers', type=workers_arg, default=None, metavar='N|auto',
                        help=f'{what} (default: {AUTO_WORKERS_RULE}; {default_workers()} here; more than '
                             f'{WORKERS_PER_CORE} per usable core is clamped to that)')


def add_batch_size_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: int = 32,
                       help: str = 'batch size') -> None:
    """--batch-size N (aliases --batch_size, -b; dest batch_size), an integer in 1..MAX_BATCH_SIZE."""
    parser.add_argument('--batch-size', '--batch_size', '-b', dest='batch_size', type=batch_size_int,
                        default=default, metavar='N',
                        help=f'{help}, 1..{MAX_BATCH_SIZE} (default: %(default)s)')


def add_seed_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                 what: str = 'random seed') -> None:
    """--seed N (default 0)."""
    parser.add_argument('--seed', type=int, default=0, help=f'{what} (default: %(default)s)')


def add_progress_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--no-progress: hide the progress bars (dest no_progress)."""
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bars')


def add_out_dir_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: str | None,
                    writes: str, *aliases: str, dest: str = 'out', required: bool = False) -> None:
    """--out DIR (plus old spellings as `aliases`): always a folder; `writes` names the files."""
    shown = '' if default is None else ' (default: %(default)s)'
    parser.add_argument('--out', *aliases, dest=dest, default=default, metavar='DIR', required=required,
                        help=f'output folder{shown}; writes {writes} inside it')


def check_out_dir(path: str, names: str = 'fixed file names') -> str:
    """UsageError when --out looks like a file (an image or table suffix): --out is a folder now."""
    suffix = os.path.splitext(path.rstrip('/\\'))[1].lower()
    if suffix in ('.json', '.md', '.png', '.pdf', '.csv', '.jpg', '.svg'):
        raise UsageError(f'--out {path}: --out is a folder (it writes {names} inside it), not a '
                         f'{suffix} file')
    return path


def model_name(text: str) -> str:
    """argparse type of -m/--model: a registered model name or alias. The shipped ones are checked
    against fmd.core.options.MODEL_NAMES (no torch import); any other name asks fmd.core.registry,
    which imports the models."""
    if text in MODEL_NAMES or any(text in aliases for aliases in MODEL_NAMES.values()):
        return text
    from fmd.core.registry import model_names

    names = model_names()
    if text not in names:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(names)})")
    return text


MODEL_HELP = 'one of the registered models: ' + ', '.join(
    name + (f' (alias {", ".join(aliases)})' if aliases else '') for name, aliases in MODEL_NAMES.items()
) + ' (fmd.core.registry)'


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


def int_in(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer in low..high (a too-big number is a usage error naming the flag, not
    a crash or a fork bomb later)."""
    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f'must be an integer in {low}..{high}, got {text}')
        return value

    parse.__name__ = f'integer in {low}..{high}'  # what argparse calls the type in its messages
    return parse


batch_size_int = int_in(1, MAX_BATCH_SIZE)
frames_per_video_int = int_in(1, MAX_FRAMES_PER_VIDEO)
bootstrap_int = int_in(1, MAX_BOOTSTRAP)
crop_size_int = int_in(8, MAX_CROP_SIZE)


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a finite number, got {text}')
    return value


def unit_interval(text: str) -> float:
    """argparse type: a number in [0, 1] (a probability threshold)."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f'must be in [0, 1], got {text}')
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not an integer: {text!r}') from None


def parse_api_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `argv`; None means no arguments (every default), never sys.argv. A grader's pytest calls
    an assignment module's main() with its own command line in sys.argv; the script's
    `if __name__ == '__main__'` path passes sys.argv[1:] itself."""
    return parser.parse_args([] if argv is None else list(argv))


def use_agg_backend() -> None:
    """Draw off-screen; scripts call this in their __main__ path, never on import. Before matplotlib
    is imported this only sets $MPLBACKEND, which it reads at import: a run that draws nothing never
    pays its import (0.3 s)."""
    if 'matplotlib' in sys.modules:
        sys.modules['matplotlib'].use('Agg')
    else:
        os.environ['MPLBACKEND'] = 'Agg'


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--data-root, --seed and --workers (auto), shared by the scripts that read a dataset."""
    from fmd.core.options import DATA_ROOT_ENV, DATA_SEARCH_ORDER

    parser.add_argument('--data-root', default=None,
                        help=f'folder holding the dataset folders (default: ${DATA_ROOT_ENV}, else '
                             f'{DATA_SEARCH_ORDER})')
    add_seed_arg(parser)
    add_workers_arg(parser)
    return parser


def add_compile_arg(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--compile: torch.compile the model (performance.compile_model; eager with a warning where
    no compiler works)."""
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the model: faster steps after a one-off compile of '
                             'about half a minute per graph on CPU (train, eval); falls back to '
                             'eager with a warning where no compiler works')
    return parser


def error_line(error: BaseException, writing: str | os.PathLike | None = None) -> str:
    """The last non-empty line of an error's message: DataLoader workers wrap the original error
    (the one that names the file) in a traceback dump, and its last line is what the user needs.
    A full disk (which torch.save reports as "unexpected pos") says so, naming `writing` if given."""
    refused = refused_write_line(error, writing)
    if refused is not None:
        return refused
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
    """Run a script's main(): a UsageError exits 2 and other bad input 1, each with one line on
    stderr; Ctrl-C exits 130, SIGTERM 143.

    Set $FACES_DEBUG=1 to get the full traceback instead of the one line.
    """
    try:
        with sigterm_raises():
            return main(*args)
    except KeyboardInterrupt as interrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(exit_code(interrupt))
    except UsageError as error:
        if os.environ.get(DEBUG_ENV):
            raise
        print(f'error: {error_line(error)}', file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except USER_ERRORS as error:
        if os.environ.get(DEBUG_ENV):
            raise
        sys.exit(f'error: {error_line(error)}')
