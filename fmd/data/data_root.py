"""Where the datasets are: --data-root, else $FACES_DATA_ROOT, else the first default folder found.

`python data_root.py` exits 0 when course data (or $FACES_DATA_ROOT) is found, 1 otherwise (run_me.sh).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from fmd.core.options import (  # the search order, light for --help
    COURSE_DATA_DIRS,
    DATA_ROOT_ENV,
    DATA_SEARCH_ORDER,
    DATASET_NAMES,
    DEMO_DATA_DIR,
    SPLIT_NAMES,
)

DATASET_PARTS = SPLIT_NAMES
README_DATA_SECTION = 'docs/data.md'


class DataRootNotFoundError(FileNotFoundError):
    """No dataset root could be found; the message says where we looked and how to get data."""


def holds_course_datasets(folder: Path) -> bool:
    """True when `folder` has both fakes_dataset/ and synthetic_dataset/ in it."""
    return all((folder / name).is_dir() for name in DATASET_NAMES)


def data_root_candidates(cwd: Path | None = None) -> list[Path]:
    """Default folders, in search order: ./Assignment4_datasets, ../Assignment4_datasets, the
    parent folder when it holds both datasets (the assignment puts the solution folder inside
    Assignment4_datasets/), then ./demo_datasets."""
    cwd = Path.cwd() if cwd is None else cwd
    candidates = [Path(p) for p in COURSE_DATA_DIRS]
    if holds_course_datasets(cwd.resolve().parent):
        candidates.append(Path('..'))
    return [*candidates, Path(DEMO_DATA_DIR)]


def course_data_found() -> bool:
    """True when $FACES_DATA_ROOT is set or a default folder other than the demo data exists."""
    return bool(os.environ.get(DATA_ROOT_ENV)) or any(
        p.is_dir() for p in data_root_candidates() if p != Path(DEMO_DATA_DIR))


def search_order_text() -> str:
    """The default search order in words, for --help and error messages."""
    return DATA_SEARCH_ORDER


def is_demo_root(root: Path) -> bool:
    """True for a generated stand-in (it carries the generator's MANIFEST.json)."""
    return (root / 'MANIFEST.json').is_file() or root.name == DEMO_DATA_DIR


def resolve_data_root(data_root: str | os.PathLike | None = None, announce: bool = True) -> Path:
    """Find the datasets: explicit argument, else $FACES_DATA_ROOT, else the first existing default."""
    if data_root is not None:
        root, source = Path(data_root), '--data-root'
    elif os.environ.get(DATA_ROOT_ENV):
        root, source = Path(os.environ[DATA_ROOT_ENV]), f'${DATA_ROOT_ENV}'
    else:
        root = next((p for p in data_root_candidates() if p.is_dir()), None)
        source = 'default search'
        if root is None:
            raise DataRootNotFoundError(
                f'No dataset folder found (searched --data-root, ${DATA_ROOT_ENV}, '
                f'{search_order_text()}). Put the course data in ./Assignment4_datasets, point '
                f'--data-root or ${DATA_ROOT_ENV} at it, or generate demo data with '
                '`python -m fmd.demo_data --out demo_datasets`.')
    if not root.is_dir():
        raise DataRootNotFoundError(f'Dataset root {root} (from {source}) is not a folder.')
    if announce:
        if is_demo_root(root):
            print(f'*** Using DEMO data from {root} (a generated stand-in, not the course data) ***',
                  file=sys.stderr)
        else:
            print(f'Using data from {root} ({source})', file=sys.stderr)
    return root


def available_datasets(root: Path) -> list[str]:
    """Dataset folders under `root`: those with a train/, val/ or test/ split folder."""
    if not root.is_dir():
        return []
    return sorted(child.name for child in root.iterdir()
                  if child.is_dir() and any((child / part).is_dir() for part in DATASET_PARTS))


def split_dir(root: Path, dataset_name: str, dataset_part: str) -> Path:
    """<root>/<dataset>/<part>, checked: a missing dataset or split names what exists instead."""
    if dataset_part not in DATASET_PARTS:
        raise ValueError(f'Unknown dataset part {dataset_part!r}; choose one of {list(DATASET_PARTS)}.')
    if not dataset_name or Path(dataset_name).name != dataset_name:
        raise ValueError(f'Dataset name {dataset_name!r} must be a folder name under the data root.')
    dataset_dir = root / dataset_name
    if not dataset_dir.is_dir():
        found = available_datasets(root)
        raise FileNotFoundError(
            f'Dataset folder {dataset_dir} not found; datasets under {root}: '
            f'{", ".join(found) if found else "none"} (see {README_DATA_SECTION}).')
    folder = dataset_dir / dataset_part
    if not folder.is_dir():
        raise FileNotFoundError(f'Split folder {folder} not found: {dataset_dir} must hold '
                                f'{"/, ".join(DATASET_PARTS)}/ (see {README_DATA_SECTION}).')
    return folder


if __name__ == '__main__':
    sys.exit(0 if course_data_found() else 1)
