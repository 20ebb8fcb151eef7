"""dlib's 68 face landmarks of every face crop of a course-layout dataset, kept in one file beside it.

`python -m fmd.data.landmarks DATASET` (a folder holding train/val/test/real|fake/*.png, e.g. one made
by fmd.prepare, the course data or the demo data) writes DATASET/landmarks.npz: the 68 (x, y)
points of each crop in that crop's own pixel coordinates, keyed by its path relative to DATASET
(MANIFEST.csv's `path`), with the SHA-256 of the file they were found on. A crop where dlib's HOG
detector finds no face is listed in `missing`, never a crash. A rerun reuses every unchanged crop's
points; Ctrl-C or SIGTERM keeps what was found so far (the file is replaced atomically).

The points follow dlib's (iBUG 300-W) numbering: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
mouth 48-67 (the subject's right eye, on the image's left, is 36-41).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmd.core.cli import EXIT_OK, EXIT_PARTIAL
from fmd.core.options import CLASS_NAMES, SPLIT_NAMES

LANDMARKS_FILE = 'landmarks.npz'
PREDICTOR_FILE = 'shape_predictor_68_face_landmarks.dat'
SPLITS = SPLIT_NAMES
CLASSES = CLASS_NAMES
SAVE_EVERY_SECONDS = 30.0  # how much finished work an interrupted run can lose at most


@dataclass
class Landmarks:
    """The landmarks of one dataset: points[path] is a 68x2 float32 array of (x, y) pixels."""

    points: dict[str, np.ndarray] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # path -> sha256 of crops with no face

    def __len__(self) -> int:
        return len(self.points)


def read_landmarks(path: str | Path) -> Landmarks:
    """Load a landmarks.npz (no pickles); a missing or corrupt file is a ValueError naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            paths, points, digests = data['paths'], data['points'], data['sha256']
            missing, missing_digests = data['missing'], data['missing_sha256']
    except FileNotFoundError:
        raise FileNotFoundError(f'{path} does not exist: run `python -m fmd.data.landmarks '
                                f'{path.parent}` first') from None
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f'{path} is not a landmarks file ({error}); delete it and run '
                         f'`python -m fmd.data.landmarks {path.parent}` again') from error
    if points.shape != (len(paths), 68, 2) or len(digests) != len(paths):
        raise ValueError(f'{path}: points of shape {points.shape} for {len(paths)} paths; delete it and '
                         'run `python -m fmd.data.landmarks` again')
    return Landmarks(points={str(p): points[i].astype(np.float32) for i, p in enumerate(paths)},
                     sha256=dict(zip(map(str, paths), map(str, digests), strict=True)),
                     missing=dict(zip(map(str, missing), map(str, missing_digests), strict=True)))


def write_landmarks(landmarks: Landmarks, path: str | Path) -> Path:
    """Write atomically (a reader sees the old file or the new one, never half of one)."""
    from fmd.core.atomic_io import atomic_write

    names = sorted(landmarks.points)
    missing = sorted(landmarks.missing)
    arrays = {'paths': np.array(names, dtype=str),
              'points': np.stack([landmarks.points[n] for n in names]).astype(np.float32)
              if names else np.zeros((0, 68, 2), np.float32),
              'sha256': np.array([landmarks.sha256[n] for n in names], dtype=str),
              'missing': np.array(missing, dtype=str),
              'missing_sha256': np.array([landmarks.missing[n] for n in missing], dtype=str)}
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


# ----------------------------------------------------------------------------- finding the points

def predictor_path() -> Path:
    """dlib's 68-point shape predictor, shipped in the face-recognition-models package."""
    from fmd.data.face_crop import model_file

    return model_file(PREDICTOR_FILE)


@functools.cache
def _predictor():
    import dlib

    return dlib.shape_predictor(str(predictor_path()))


def face_landmarks(image_rgb: np.ndarray) -> np.ndarray | None:
    """68x2 float32 (x, y) points of the largest face dlib's HOG detector finds, or None."""
    import dlib

    from fmd.data.face_crop import get_detector, largest_face

    face = largest_face(get_detector('hog')(image_rgb))
    if face is None:
        return None
    rect = dlib.rectangle(face.x, face.y, face.x + face.w - 1, face.y + face.h - 1)
    shape = _predictor()(np.ascontiguousarray(image_rgb), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _find(task: tuple[str, str]) -> tuple[str, str, np.ndarray | None, str | None]:
    """(rel path, sha256, points or None, error or None) of one crop; never raises."""
    from fmd.data.face_crop import InputReadError, read_image_rgb

    rel, file = task
    try:
        data = Path(file).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        return rel, digest, face_landmarks(read_image_rgb(file)), None
    except (OSError, InputReadError, ValueError) as error:
        return rel, '', None, f'{type(error).__name__}: {error}'


def _start_worker() -> None:
    from fmd.data.face_crop import get_detector

    get_detector('hog')
    _predictor()


# ----------------------------------------------------------------------------- a whole dataset

def dataset_images(dataset: Path) -> list[str]:
    """Every image under dataset/{train,val,test}/{real,fake}/, as sorted paths relative to dataset."""
    from fmd.data.face_crop import IMAGE_EXTENSIONS

    found = [f'{split}/{name}/{p.name}' for split in SPLITS for name in CLASSES
             if (dataset / split / name).is_dir()
             for p in (dataset / split / name).iterdir()
             if p.is_file() and not p.name.startswith('.') and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(found)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reusable(old: Landmarks, dataset: Path, images: Sequence[str]) -> tuple[Landmarks, list[str]]:
    """(what `old` already holds for unchanged images, the images still to do)."""
    kept, todo = Landmarks(), []
    for rel in images:
        known = old.sha256.get(rel) or old.missing.get(rel)
        if known is None or known != _digest(dataset / rel):
            todo.append(rel)
        elif rel in old.points:
            kept.points[rel], kept.sha256[rel] = old.points[rel], known
        else:
            kept.missing[rel] = known
    return kept, todo


def add_landmarks(dataset: str | Path, workers: int = 1, progress: bool = True,
                  log=print) -> tuple[Landmarks, dict[str, str]]:
    """Find the landmarks of every crop of `dataset` and write dataset/landmarks.npz; returns
    (the landmarks, {path: error} of unreadable files). Unchanged crops keep their stored points."""
    from tqdm import tqdm

    dataset = Path(dataset)
    if not dataset.is_dir():
        raise FileNotFoundError(f'dataset folder {dataset} does not exist')
    images = dataset_images(dataset)
    if not images:
        raise ValueError(f'{dataset} holds no images under {{train,val,test}}/{{real,fake}}/: '
                         'point it at one dataset folder (e.g. DATA_ROOT/fakes_dataset)')
    out = dataset / LANDMARKS_FILE
    old = read_landmarks(out) if out.is_file() else Landmarks()
    landmarks, todo = reusable(old, dataset, images)
    errors: dict[str, str] = {}
    if len(landmarks) + len(landmarks.missing):
        log(f'landmarks: reusing {len(landmarks) + len(landmarks.missing)} unchanged crops of {out}')
    saved = time.monotonic()
    try:
        results = _worker_results(todo, dataset, workers)
        with tqdm(total=len(todo), desc='landmarks', unit='face', disable=None if progress else True) as bar:
            for rel, digest, points, error in results:
                if error is not None:
                    errors[rel] = error
                elif points is None:
                    landmarks.missing[rel] = digest
                else:
                    landmarks.points[rel], landmarks.sha256[rel] = points, digest
                bar.update()
                if time.monotonic() - saved > SAVE_EVERY_SECONDS:
                    _save(landmarks, out)
                    saved = time.monotonic()
    finally:  # also on Ctrl-C / SIGTERM: what was found so far is kept for the next run
        _save(landmarks, out)
    return landmarks, errors


def _worker_results(todo: Sequence[str], dataset: Path, workers: int) -> Iterator:
    from fmd.core.parallel import worker_map

    tasks = [(rel, str(dataset / rel)) for rel in todo]
    yield from worker_map(_find, tasks, max(1, min(workers, len(tasks))), _start_worker, chunksize=8)


def _save(landmarks: Landmarks, out: Path) -> None:
    from fmd.core.parallel import signals_deferred

    with signals_deferred():
        write_landmarks(landmarks, out)


def summary(landmarks: Landmarks, errors: Mapping[str, str], out: Path) -> list[str]:
    """One line per split and class (faces with points / crops), then the crops without any."""
    lines = []
    for split in SPLITS:
        for name in CLASSES:
            prefix = f'{split}/{name}/'
            found = sum(p.startswith(prefix) for p in landmarks.points)
            none = sum(p.startswith(prefix) for p in landmarks.missing)
            if found or none:
                lines.append(f'{split:5} {name}: {found:6d} with landmarks, {none:4d} without a face')
    lines += [f'no face found: {p}' for p in sorted(landmarks.missing)]
    lines += [f'unreadable: {p}: {e}' for p, e in sorted(errors.items())]
    lines.append(f'landmarks: {len(landmarks)} faces, {len(landmarks.missing)} without a face, '
                 f'{len(errors)} unreadable -> {out}')
    return lines


def build_parser() -> argparse.ArgumentParser:
    """DATASET..., --workers, --no-progress (light modules only: --help answers at once)."""
    from fmd.core.cli import add_progress_arg, add_workers_arg

    parser = argparse.ArgumentParser(prog='python -m fmd.data.landmarks', description=__doc__.splitlines()[0],
                                     epilog='Used by train_main.py --fakes self-blend (it reads '
                                            f'DATASET/{LANDMARKS_FILE}). Exit code 0 done, 3 when some '
                                            'files could not be read (the others were), 2 usage error.')
    parser.add_argument('datasets', nargs='+', metavar='DATASET',
                        help='dataset folder(s) holding {train,val,test}/{real,fake}/ face crops')
    add_workers_arg(parser, 'worker processes, at least 1')
    add_progress_arg(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --workers auto becomes its number (cli.resolve_workers)."""
    from fmd.core.cli import resolve_workers

    parser = build_parser()
    args = parser.parse_args(argv)
    args.workers = resolve_workers(args.workers)
    if args.workers < 1:
        parser.error('--workers must be at least 1')
    return args


def main(argv: list[str] | None = None) -> int:
    """Add landmarks to each dataset; exit 0, or 3 when some files could not be read."""
    args = parse_args(argv)
    unreadable = 0
    for dataset in args.datasets:
        landmarks, errors = add_landmarks(dataset, args.workers, not args.no_progress,
                                          log=lambda line: print(line, file=sys.stderr))
        for line in summary(landmarks, errors, Path(dataset) / LANDMARKS_FILE):
            print(line)
        unreadable += len(errors)
    return EXIT_PARTIAL if unreadable else EXIT_OK


if __name__ == '__main__':
    from fmd.core.cli import run_cli

    sys.exit(run_cli(main))
