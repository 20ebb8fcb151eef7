"""What fmd.evaluate scores: `ROOT/NAME[:SPLIT]` arguments, their datasets and their MANIFEST.csv groups."""
from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from faces_dataset import CLASS_NAMES, FacesDataset
from fmd.data.data_root import DATASET_PARTS, split_dir
from fmd.data.presets import IMAGE_SIZE, TRANSFORM_TEST

MANIFEST_NAME = 'MANIFEST.csv'  # written by fmd.prepare beside the split folders
DEFAULT_SPLIT = 'test'


@dataclass(frozen=True)
class DataSpec:
    """One `--data` argument: the text given, the real/ + fake/ folder it names, and its split."""

    given: str
    folder: Path
    split: str | None

    @property
    def name(self) -> str:
        """The dataset's folder name (NAME of ROOT/NAME), e.g. fakes_dataset."""
        return self.folder.parent.name if self.split and self.folder.name == self.split else self.folder.name

    @property
    def label(self) -> str:
        """Short column label: `NAME:SPLIT`."""
        return f'{self.name}:{self.split}' if self.split else self.name


def has_classes(folder: Path) -> bool:
    """True when `folder` holds real/ and fake/ directly."""
    return all((folder / name).is_dir() for name in CLASS_NAMES)


def parse_data_spec(text: str) -> DataSpec:
    """`ROOT/NAME[:SPLIT]` (course layout, split `test` by default) or a folder holding real/ and fake/."""
    path_text, split = text, None
    head, sep, tail = text.rpartition(':')
    if sep and tail in DATASET_PARTS:
        path_text, split = head, tail
    folder = Path(path_text)
    folder = folder if folder.name else folder.resolve()  # '.' or '..' -> a named folder
    if has_classes(folder):
        if split is not None:
            raise ValueError(f'--data {text}: {folder} holds real/ and fake/ directly, so it has no '
                             f'{split} split; pass {folder} without :{split}.')
        return DataSpec(text, folder, folder.name if folder.name in DATASET_PARTS else None)
    if not folder.is_dir():
        raise FileNotFoundError(f'--data {text}: folder {folder} not found.')
    split = split or DEFAULT_SPLIT
    return DataSpec(text, split_dir(folder.parent, folder.name, split), split)


def load_spec_dataset(spec: DataSpec) -> FacesDataset:
    """The test-transform dataset of a spec, every image header checked (an empty class is an error)."""
    from utils import check_images

    dataset = FacesDataset(str(spec.folder), transform=TRANSFORM_TEST, image_size=IMAGE_SIZE)
    other_size = check_images(dataset)
    if other_size:
        print(f'WARNING: {other_size} of {len(dataset)} images in {spec.folder} are not '
              f'{IMAGE_SIZE}x{IMAGE_SIZE}; they are resized.', file=sys.stderr)
    return dataset


def find_manifest(spec: DataSpec) -> Path | None:
    """MANIFEST.csv in the scored folder or, for a split folder, in the dataset folder above it."""
    for folder in (spec.folder, spec.folder.parent) if spec.split else (spec.folder,):
        if (folder / MANIFEST_NAME).is_file():
            return folder / MANIFEST_NAME
    return None


def manifest_groups(spec: DataSpec, dataset: FacesDataset) -> list[str] | None:
    """The MANIFEST.csv group (video or source) of every image in dataset order; None, with a warning
    when the manifest is unusable, if there is no manifest or it does not cover the images."""
    manifest = find_manifest(spec)
    if manifest is None:
        return None
    try:
        with open(manifest, newline='') as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return warn(f'cannot read {manifest} ({error})')
    if not rows or not {'path', 'label', 'group'} <= set(rows[0]):
        return warn(f'{manifest} has no path, label and group columns')
    by_path = {row['path']: row for row in rows}
    groups = []
    for index in range(len(dataset)):
        path, label = dataset.image_path(index)
        rel = Path(os.path.relpath(path, manifest.parent)).as_posix()
        row = by_path.get(rel)
        if row is None:
            return warn(f'{manifest} does not list {rel}')
        if row['label'] != str(label):
            return warn(f'{manifest} gives {rel} label {row["label"]}, its folder says {label}')
        groups.append(row['group'] or row.get('source') or rel)
    return groups


def warn(message: str) -> None:
    """One warning line on stderr: the video-level AUC is left out, the rest of the row stands."""
    print(f'WARNING: {message}; no video-level AUC for it.', file=sys.stderr)
