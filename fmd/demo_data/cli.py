"""Deterministic offline stand-in for the course datasets: procedural faces, face swaps, GAN fakes.

Writes <out>/{fakes_dataset,synthetic_dataset}/{train,val,test}/{real,fake}/NNNNN.png (256x256 RGB)
and <out>/MANIFEST.json. Every image is a pure function of (seed, dataset, split, class, index), so
the output is byte-identical whatever the number of workers. This is demo data, not the course data.
The work is done by the demo_data package; this file is its command line.

    python -m fmd.demo_data --out demo_datasets --scale starter --seed 0
"""

from __future__ import annotations

import signal
import sys
from argparse import ArgumentParser
from pathlib import Path

from PIL import Image

from fmd.core.cli import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    add_out_dir_arg,
    add_progress_arg,
    add_seed_arg,
    add_workers_arg,
    error_line,
    resolve_workers,
)
from fmd.demo_data.build import generate_demo_datasets
from fmd.demo_data.images import sample_grid
from fmd.demo_data.layout import CLASSES, DATASETS, DEFAULT_SCALE, SCALES  # noqa: F401 (CLASSES: the package's face)
from fmd.demo_data.manifest import MANIFEST_NAME, manifest_digest, read_manifest  # noqa: F401 (likewise)


def _scale_sizes() -> str:
    """One line per scale for --help: total images of each dataset."""
    return '; '.join(f'{name}: ' + ', '.join(
        f'{dataset.removesuffix("_dataset")} {sum(sum(classes.values()) for classes in splits.values())}'
        for dataset, splits in counts.items()) for name, counts in SCALES.items())


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so the build folder is removed on the way out."""
    raise SystemExit(128 + signum)


def build_parser() -> ArgumentParser:
    """The command line of faces-demo-data (light modules only: --help answers at once)."""
    parser = ArgumentParser(prog='faces-demo-data', description=__doc__.splitlines()[0],
                            epilog='Exit code 0 done, 2 usage error (a bad --scale or --out).')
    add_out_dir_arg(parser, 'demo_datasets', f'{" and ".join(DATASETS)} and {MANIFEST_NAME}')
    parser.add_argument('--scale', default=DEFAULT_SCALE, choices=list(SCALES),
                        help=f'dataset size (default: %(default)s): {_scale_sizes()}')
    add_seed_arg(parser)
    add_workers_arg(parser, 'worker processes, at least 1 (the images are the same for any number)')
    add_progress_arg(parser)
    parser.add_argument('--sample-grid', metavar='PNG', default=None,
                        help='only write a small labelled grid of samples (docs figure) to PNG')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, then write the datasets (or only the docs' sample grid)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.workers = resolve_workers(args.workers)
    if args.workers < 1:
        parser.error('--workers must be at least 1')
    if args.sample_grid:
        Path(args.sample_grid).parent.mkdir(parents=True, exist_ok=True)
        grid = sample_grid(args.seed)  # a dithered 256-colour palette keeps the docs figure small
        grid = grid.quantize(palette=grid.quantize(256), dither=Image.Dither.FLOYDSTEINBERG)
        grid.save(args.sample_grid, optimize=True)
        print(args.sample_grid)
        return EXIT_OK
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        root = generate_demo_datasets(args.out, args.scale, args.seed, args.workers,
                                      progress=not args.no_progress)
    except ValueError as err:  # a --scale or --out that cannot be used
        print(f'error: {err}', file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # a full disk, a folder it may not write: the build folder is gone
        print(f'error: {error_line(err, writing=args.out)}', file=sys.stderr)
        return EXIT_ERROR
    print(root)
    return EXIT_OK


def entry() -> None:
    """The console script and `python -m fmd.demo_data`."""
    sys.exit(main())


if __name__ == '__main__':
    entry()
