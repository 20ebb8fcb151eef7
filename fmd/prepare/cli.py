"""Turn folders of real and fake photos or videos into the course layout: face crops, leak-free splits.

`python -m fmd.prepare SRC --out OUT --name NAME` (or the older `SRC OUT --name NAME`) reads
SRC/real/** and SRC/fake/** (images and videos), crops the largest face of every image and of evenly
spaced video frames (face_crop.py), splits by source group so that no group is in two splits, and
writes OUT/NAME/{train,val,test}/{real,fake}/*.png with OUT/NAME/MANIFEST.csv and OUT/NAME/skipped.csv.
The folder is built aside and renamed into place.
"""
from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fmd.core.cli import (
    EXIT_ERROR,
    EXIT_USAGE,
    add_out_dir_arg,
    add_progress_arg,
    add_seed_arg,
    add_workers_arg,
    error_line,
    resolve_workers,
)
from fmd.core.parallel import WorkerDiedError, signals_deferred, worker_map
from fmd.data import face_crop
from fmd.data.face_crop import (
    DEFAULT_DETECTOR,
    DEFAULT_MARGIN,
    DEFAULT_SIZE,
    DETECTORS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    InputReadError,
)
from fmd.data.landmarks import LANDMARKS_FILE, add_landmarks
from fmd.data.landmarks import summary as landmarks_summary

VERSION = '1.0.0'
SPLITS = ('train', 'val', 'test')
CLASSES = ('real', 'fake')  # label 0, label 1
MANIFEST_NAME = 'MANIFEST.csv'
SKIPPED_NAME = 'skipped.csv'
SETTINGS_NAME = 'PREPARE.json'  # written last: its presence means the dataset is complete
MANIFEST_COLUMNS = ('path', 'label', 'split', 'group', 'source', 'frame', 'x', 'y', 'w', 'h', 'detector',
                    'faces', 'sha256')
SKIPPED_COLUMNS = ('source', 'reason')
OWN_ENTRIES = {*SPLITS, MANIFEST_NAME, SKIPPED_NAME, SETTINGS_NAME, LANDMARKS_FILE}
CROP_KEYS = ('detector', 'margin', 'size', 'frames_per_video')  # what a crop depends on
NAME_PATTERN = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')


class PrepareError(ValueError):
    """Bad input or arguments; main prints it as one line."""


@dataclass(frozen=True)
class Source:
    """One input file: path relative to SRC ('/'-separated), label, kind, group, output file stem."""

    rel: str
    label: int
    kind: str  # 'image' or 'video'
    group: str
    stem: str
    size: int
    mtime_ns: int

    @property
    def class_name(self) -> str:
        return CLASSES[self.label]


# ----------------------------------------------------------------------------- scanning and grouping

def _walk_files(folder: Path) -> Iterator[Path]:
    """Every non-hidden file below folder, in sorted order (hidden files and folders are ignored)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        for name in sorted(filenames):
            if not name.startswith('.'):
                yield Path(dirpath, name)


def scan_sources(src: Path) -> tuple[list[tuple[str, int, str, int, int]], list[tuple[str, str]]]:
    """(rel path, label, kind, size, mtime_ns) of every image and video; other files as skipped rows."""
    missing = [f'{c}/' for c in CLASSES if not (src / c).is_dir()]
    if missing:
        raise PrepareError(f'SRC {src} must hold real/ and fake/ folders of images or videos '
                           f'(missing: {", ".join(missing)})')
    found, skipped = [], []
    for label, class_name in enumerate(CLASSES):
        count = 0
        for path in _walk_files(src / class_name):
            rel = path.relative_to(src).as_posix()
            suffix = path.suffix.lower()
            if suffix not in IMAGE_EXTENSIONS and suffix not in VIDEO_EXTENSIONS:
                skipped.append((rel, 'unsupported file type'))
                continue
            try:
                stat = path.stat()
            except OSError as error:
                skipped.append((rel, f'unreadable: {error.strerror or error}'))
                continue
            found.append((rel, label, 'image' if suffix in IMAGE_EXTENSIONS else 'video',
                          stat.st_size, stat.st_mtime_ns))
            count += 1
        if count == 0:
            raise PrepareError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) or videos '
                               f'({", ".join(VIDEO_EXTENSIONS)}) found under {src / class_name}')
    return found, skipped


def parse_group_by(group_by: str) -> re.Pattern | str:
    """'file', 'video' or a compiled regex with at least one capture group (from 'regex:PATTERN')."""
    if group_by in ('file', 'video'):
        return group_by
    if not group_by.startswith('regex:'):
        raise PrepareError(f'--group-by must be file, video or regex:PATTERN, not {group_by!r}')
    try:
        pattern = re.compile(group_by[len('regex:'):])
    except re.error as error:
        raise PrepareError(f'--group-by {group_by!r} is not a valid regular expression: {error}') from None
    if pattern.groups < 1:
        raise PrepareError(f'--group-by {group_by!r} needs a capture group, e.g. regex:(\\d+)_')
    return pattern


def group_of(rel: str, kind: str, group_by: re.Pattern | str) -> str | None:
    """Group of one input: its path ('file'); for 'video', a video's path or an image's folder (a folder
    of frames; an image right in real/ or fake/ is its own group); else the regex's first capture group
    searched in the path, None when it does not match."""
    if group_by == 'file' or (group_by == 'video' and kind == 'video'):
        return rel
    if group_by == 'video':
        folder = rel.rpartition('/')[0]
        return folder if '/' in folder else rel
    match = group_by.search(rel)
    return match.group(1) if match and match.group(1) is not None else None


def _stems(entries: Sequence[tuple[str, int, str]]) -> list[str]:
    """Output file stems, unique per class folder: the path below real/ or fake/, '/' -> '__'."""
    def plain(rel: str) -> str:
        below = rel.split('/', 1)[1]
        stem = below.rsplit('.', 1)[0] if '.' in below.rsplit('/', 1)[-1] else below
        return re.sub(r'[^A-Za-z0-9._-]+', '_', stem.replace('/', '__'))

    stems = [plain(rel) for rel, _, _ in entries]
    counts = Counter((label, stem) for stem, (_, label, _) in zip(stems, entries, strict=True))
    videos = {(label, stem) for stem, (_, label, kind) in zip(stems, entries, strict=True)
              if kind == 'video'}
    unique = []
    for stem, (rel, label, kind) in zip(stems, entries, strict=True):
        frame_like = re.fullmatch(r'(.+)_frame\d{6}', stem)
        clash = counts[label, stem] > 1 or (kind == 'image' and frame_like is not None
                                            and (label, frame_like.group(1)) in videos)
        unique.append(f'{stem}_{hashlib.sha1(rel.encode()).hexdigest()[:8]}' if clash else stem)
    return unique


def build_sources(found: Sequence[tuple[str, int, str, int, int]],
                  group_by: re.Pattern | str) -> tuple[list[Source], list[tuple[str, str]]]:
    """Sources with groups and output stems, and skipped rows for paths where the regex finds no group.

    A regex that finds a group in no path at all is a PrepareError.
    """
    groups = [group_of(rel, kind, group_by) for rel, _, kind, _, _ in found]
    if groups and all(group is None for group in groups):
        raise PrepareError(f'--group-by regex matches no group in any of the {len(found)} paths '
                           f'(first: {found[0][0]!r}); paths are relative to SRC, e.g. real/a/b.jpg')
    skipped = [(rel, 'no group: the --group-by regex does not match the path')
               for (rel, *_), group in zip(found, groups, strict=True) if group is None]
    kept = [(entry, group) for entry, group in zip(found, groups, strict=True) if group is not None]
    stems = _stems([(rel, label, kind) for (rel, label, kind, _, _), _ in kept])
    sources = [Source(rel, label, kind, group, stem, size, mtime)
               for ((rel, label, kind, size, mtime), group), stem in zip(kept, stems, strict=True)]
    return sources, skipped


def split_groups(weights: Mapping[str, float], strata: Mapping[str, str], fractions: Sequence[float],
                 seed: int) -> dict[str, str]:
    """Assign every group to one split, per stratum, so each split gets about its fraction of weight.

    Groups are ordered by a hash of (seed, group), which is deterministic and keeps a group's place
    when others are added; each takes the split where the middle of its weight falls.
    """
    bounds = np.cumsum(fractions) / sum(fractions)
    result = {}
    for stratum in sorted(set(strata.values())):
        groups = sorted((g for g in weights if strata[g] == stratum),
                        key=lambda g: (hashlib.sha256(f'{seed}/{g}'.encode()).digest(), g))
        total = sum(weights[g] for g in groups)
        done = 0.0
        for group in groups:
            middle = (done + weights[group] / 2) / total
            result[group] = next((s for s, b in zip(SPLITS, bounds, strict=True) if middle < b), SPLITS[-1])
            done += weights[group]
    return result


def assign_splits(sources: Sequence[Source], fractions: Sequence[float], seed: int,
                  frames_per_video: int) -> dict[str, str]:
    """group -> split, stratified by the classes a group holds (real, fake or both)."""
    weights: Counter = Counter()
    labels: dict[str, set[int]] = {}
    for source in sources:
        weights[source.group] += frames_per_video if source.kind == 'video' else 1
        labels.setdefault(source.group, set()).add(source.label)
    strata = {g: '+'.join(CLASSES[label] for label in sorted(ls)) for g, ls in labels.items()}
    return split_groups(weights, strata, fractions, seed)


# ----------------------------------------------------------------------------- processing (workers)

def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='PNG', compress_level=1)
    return buffer.getvalue()


def _write(tmp: Path, rel_out: str, data: bytes) -> str:
    path = tmp / rel_out
    with open(path, 'xb') as handle:  # never silently overwrite another output
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def _row(source: Source, split: str, rel_out: str, frame: int | None, box: face_crop.FaceBox,
         detector: str, faces: int, digest: str) -> dict[str, Any]:
    return {'path': rel_out, 'label': source.label, 'split': split, 'group': source.group,
            'source': source.rel, 'frame': '' if frame is None else frame, 'x': box.x, 'y': box.y,
            'w': box.w, 'h': box.h, 'detector': detector, 'faces': faces, 'sha256': digest}


def _crop_and_write(task: dict[str, Any]) -> tuple[list[dict], list[tuple[str, str]]]:
    """Detect, crop and write the outputs of one source; returns (manifest rows, skipped rows)."""
    source: Source = task['source']
    settings = task['settings']
    detector, path = settings['detector'], Path(task['src'], source.rel)
    folder = f'{task["split"]}/{source.class_name}'
    try:
        if source.kind == 'image':
            frames = [(None, face_crop.read_image_rgb(path))]
        else:
            frames = face_crop.read_video_frames(path, settings['frames_per_video'])
    except InputReadError as error:
        return [], [(source.rel, f'unreadable: {error.reason}')]
    rows, skipped = [], []
    for frame, image in frames:
        box, faces = face_crop.face_box(image, detector, settings['margin'])
        if box is None:
            skipped.append((source.rel, 'no face' if frame is None else f'no face in frame {frame}'))
            continue
        name = source.stem if frame is None else f'{source.stem}_frame{frame:06d}'
        rel_out = f'{folder}/{name}.png'
        digest = _write(Path(task['tmp']), rel_out,
                        _png_bytes(face_crop.crop_square(image, box, settings['size'])))
        rows.append(_row(source, task['split'], rel_out, frame, box, detector, faces, digest))
    return rows, skipped


def _reuse(task: dict[str, Any]) -> tuple[list[dict], list[tuple[str, str]]] | None:
    """Copy this source's crops from the previous build; None when any of them is missing or changed."""
    source: Source = task['source']
    copies = []
    for old in task['old_rows']:
        try:
            data = (Path(task['old_root']) / old['path']).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != old['sha256']:
            return None
        name = source.stem if old['frame'] == '' else f'{source.stem}_frame{int(old["frame"]):06d}'
        rel_out = f'{task["split"]}/{source.class_name}/{name}.png'
        copies.append(({**old, 'path': rel_out, 'split': task['split'], 'group': source.group}, data))
    for row, data in copies:
        _write(Path(task['tmp']), row['path'], data)
    return [row for row, _ in copies], list(task['old_skipped'])


def process_source(task: dict[str, Any]) -> tuple[list[dict], list[tuple[str, str]]]:
    """One source end to end; any failure becomes a skipped row, never a crash of the whole run."""
    try:
        if 'old_root' in task:
            reused = _reuse(task)
            if reused is not None:
                return reused
        return _crop_and_write(task)
    except Exception as error:  # one bad input must not stop thousands of others
        source: Source = task['source']
        folder = Path(task['tmp'], task['split'], source.class_name)
        frames = folder.glob(f'{glob.escape(source.stem)}_frame??????.png')
        for path in [folder / f'{source.stem}.png', *frames]:
            path.unlink(missing_ok=True)  # a video that failed half-way leaves no stray frames
        return [], [(source.rel, f'error: {type(error).__name__}: {error}')]


def run_tasks(tasks: list[dict[str, Any]], workers: int, detector: str,
              progress: bool) -> tuple[list[dict], list[tuple[str, str]]]:
    """Process every task (in a pool when workers > 1) with a progress bar; rows in a fixed order."""
    from tqdm import tqdm

    rows, skipped = [], []
    face_crop.get_detector(detector)  # built once here: forked workers inherit it (dlib's HOG takes ~1 s)
    try:
        results = worker_map(process_source, tasks, workers, face_crop.get_detector, (detector,),
                             chunksize=2)
        with tqdm(total=len(tasks), desc=f'faces ({detector})', unit='file',
                  disable=None if progress else True) as bar:
            for task_rows, task_skipped in results:
                rows.extend(task_rows)
                skipped.extend(task_skipped)
                bar.update()
                bar.set_postfix(crops=len(rows), skipped=len(skipped), refresh=False)
    except WorkerDiedError as error:
        raise RuntimeError(f'{error}; nothing was written') from error  # not the arguments: exit 1
    return sorted(rows, key=lambda r: r['path']), skipped


# ----------------------------------------------------------------------------- the dataset folder

def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {'detector': args.detector, 'margin': args.margin, 'size': args.size,
            'frames_per_video': args.frames_per_video, 'split': list(args.split), 'seed': args.seed,
            'group_by': args.group_by}


def _fingerprints(sources: Sequence[Source]) -> dict[str, list[int]]:
    return {s.rel: [s.size, s.mtime_ns] for s in sources}


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts ([] when it is missing or unreadable)."""
    try:
        with open(path, newline='') as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping | Sequence]) -> None:
    with open(path, 'w', newline='') as handle:
        writer = csv.writer(handle, lineterminator='\n')
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[c] for c in columns] if isinstance(row, Mapping) else row)


def read_settings(root: Path) -> dict | None:
    """The parsed PREPARE.json of a prepared dataset, or None."""
    try:
        data = json.loads((root / SETTINGS_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(root: Path, settings: dict, fingerprints: dict) -> bool:
    """True when root was prepared with these settings from these sources and every file is intact."""
    found = read_settings(root)
    if not found or found.get('settings') != settings or found.get('sources') != fingerprints:
        return False
    manifest = root / MANIFEST_NAME
    if not manifest.is_file() or \
            hashlib.sha256(manifest.read_bytes()).hexdigest() != found.get('manifest_sha256'):
        return False
    for row in read_csv(manifest):
        path = root / row['path']
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != row['sha256']:
            return False
    return True


def _differences(root: Path, settings: dict, fingerprints: dict) -> str:
    found = read_settings(root)
    if found is None:
        return 'it is not a complete fmd.prepare dataset'
    changed = [k for k in settings if found.get('settings', {}).get(k) != settings[k]]
    if found.get('sources') != fingerprints:
        changed.append('the source files')
    return 'it was prepared with other ' + ', '.join(changed) if changed else 'some of its files changed'


def _check_replaceable(out: Path) -> None:
    """Refuse to delete a folder that holds anything besides a prepared dataset's own files."""
    if not out.is_dir():
        raise PrepareError(f'{out} exists and is not a folder; pick another --name')
    extra = sorted(p.name for p in out.iterdir() if p.name not in OWN_ENTRIES)
    if extra:
        raise PrepareError(f'{out} holds files that fmd.prepare did not write ({", ".join(extra[:3])}); '
                           'refusing to replace it even with --overwrite: pick another --name or '
                           'remove it yourself')


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_builds(out: Path) -> None:
    """Delete hidden build folders next to `out` left by runs that were killed (SIGKILL, power loss)."""
    for path in sorted(out.parent.glob(f'.{out.name}.*-*')):
        kind, _, pid = path.name.rpartition('-')
        if kind.endswith(('.tmp', '.old')) and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _old_results(out: Path, settings: dict) -> tuple[dict[str, list], dict[str, list], dict]:
    """Rows and skipped reasons per source of a previous build with the same crop settings."""
    found = read_settings(out)
    if not found or found.get('version') != VERSION or \
            any(found.get('settings', {}).get(k) != settings[k] for k in CROP_KEYS):
        return {}, {}, {}
    rows: dict[str, list] = {}
    for row in read_csv(out / MANIFEST_NAME):
        rows.setdefault(row['source'], []).append(row)
    skipped: dict[str, list] = {}
    for row in read_csv(out / SKIPPED_NAME):
        skipped.setdefault(row['source'], []).append((row['source'], row['reason']))
    return rows, skipped, found.get('sources', {})


def make_tasks(sources: Sequence[Source], splits: Mapping[str, str], src: Path, tmp: Path, out: Path,
               settings: dict) -> list[dict[str, Any]]:
    """One task per source; a source unchanged since the previous build of `out` reuses its crops."""
    old_rows, old_skipped, old_fingerprints = _old_results(out, settings)
    crop = {k: settings[k] for k in CROP_KEYS}
    tasks = []
    for source in sources:
        task = {'source': source, 'split': splits[source.group], 'src': str(src), 'tmp': str(tmp),
                'settings': crop}
        if old_fingerprints.get(source.rel) == [source.size, source.mtime_ns] and \
                (source.rel in old_rows or source.rel in old_skipped):
            task.update(old_root=str(out), old_rows=old_rows.get(source.rel, []),
                        old_skipped=old_skipped.get(source.rel, []))
        tasks.append(task)
    # Videos first: they take longest, and a long one at the end would leave the other workers idle.
    tasks.sort(key=lambda t: t['source'].kind != 'video')
    return tasks


def prepare(src: Path, out_root: Path, name: str, args: argparse.Namespace,
            progress: bool = True) -> tuple[Path, list[dict], list[tuple[str, str]]]:
    """Build (or reuse) OUT/NAME; returns its path, the manifest rows and the skipped rows."""
    out = out_root / name
    found, skipped_scan = scan_sources(src)
    sources, skipped_groups = build_sources(found, parse_group_by(args.group_by))
    skipped_scan += skipped_groups
    settings, fingerprints = _settings(args), _fingerprints(sources)
    if out.exists() or out.is_symlink():
        if is_complete(out, settings, fingerprints):
            print(f'prepare_faces: reusing complete {out} (same arguments and source files)',
                  file=sys.stderr)
            skipped = [(r['source'], r['reason']) for r in read_csv(out / SKIPPED_NAME)]
            return out, read_csv(out / MANIFEST_NAME), skipped
        if not args.overwrite:
            raise PrepareError(f'{out} already exists and {_differences(out, settings, fingerprints)}; '
                               'pass --overwrite to replace it, or pick another --name')
        _check_replaceable(out)
    splits = assign_splits(sources, args.split, args.seed, args.frames_per_video)
    out_root.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(out)
    tmp = out_root / f'.{name}.tmp-{os.getpid()}'
    old = out_root / f'.{name}.old-{os.getpid()}'
    try:
        for split in SPLITS:
            for class_name in CLASSES:
                (tmp / split / class_name).mkdir(parents=True)
        tasks = make_tasks(sources, splits, src, tmp, out, settings)
        workers = max(1, min(args.workers, len(tasks)))
        rows, skipped = run_tasks(tasks, workers, args.detector, progress)
        skipped = sorted(skipped + skipped_scan)
        _write_csv(tmp / MANIFEST_NAME, MANIFEST_COLUMNS, rows)
        _write_csv(tmp / SKIPPED_NAME, SKIPPED_COLUMNS, skipped)
        record = {'tool': 'prepare_faces.py', 'version': VERSION, 'settings': settings,
                  'manifest_sha256': hashlib.sha256((tmp / MANIFEST_NAME).read_bytes()).hexdigest(),
                  'sources': fingerprints}
        (tmp / SETTINGS_NAME).write_text(json.dumps(record, indent=1) + '\n')  # last: marks it complete
        with signals_deferred():
            if out.exists() or out.is_symlink():
                out.rename(old)
            tmp.rename(out)
    finally:
        with signals_deferred():
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return out, rows, skipped


def summary_lines(rows: Sequence[Mapping], skipped: Sequence[tuple[str, str]], out: Path) -> list[str]:
    """One line per split and class (images, groups, sources), then the skipped inputs by reason."""
    lines = []
    for split in SPLITS:
        for label, class_name in enumerate(CLASSES):
            mine = [r for r in rows if r['split'] == split and int(r['label']) == label]
            lines.append(f'{split:5} {class_name}: {len(mine):6d} images from '
                         f'{len({r["source"] for r in mine}):6d} sources in '
                         f'{len({r["group"] for r in mine}):6d} groups')
    reasons = Counter(re.sub(r' in frame \d+$', ' (video frames)', reason.split(':')[0])
                      for _, reason in skipped)
    listed = ', '.join(f'{reason} {n}' for reason, n in sorted(reasons.items()))
    lines.append(f'skipped: {len(skipped)} ({listed or "none"}), listed in {out / SKIPPED_NAME}')
    return lines


# ----------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    """The command line of faces-prepare (light modules only: --help answers at once)."""
    images, videos = (', '.join(e[1:] for e in kind) for kind in (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS))
    parser = argparse.ArgumentParser(prog='faces-prepare', description=__doc__.splitlines()[0], epilog=(
        f'SRC holds real/ and fake/ (any depth below them) with images ({images}) or videos ({videos}). '
        'Writes OUT/NAME/{train,val,test}/{real,fake}/*.png, MANIFEST.csv and skipped.csv; '
        'then use it with --data-root OUT -d NAME. Exit code 0 done, 1 error, 2 usage error.'))
    parser.add_argument('src', metavar='SRC', help='folder holding real/ and fake/')
    parser.add_argument('out_positional', nargs='?', metavar='OUT',
                        help='the same as --out (the older spelling: SRC OUT --name NAME)')
    add_out_dir_arg(parser, None, 'NAME/ (the dataset), the data root to pass as --data-root')
    parser.add_argument('--name', required=True, help='dataset folder name under OUT (the -d of the scripts)')
    parser.add_argument('--split', type=float, nargs=3, default=[0.6, 0.2, 0.2],
                        metavar=('TRAIN', 'VAL', 'TEST'),
                        help='fractions of the groups for train, val and test (default: 0.6 0.2 0.2)')
    parser.add_argument('--frames-per-video', type=int, default=8,
                        help='evenly spaced frames taken from each video (default: %(default)s)')
    parser.add_argument('--margin', type=float, default=DEFAULT_MARGIN,
                        help='the face box is enlarged this many times (default: %(default)s, as in '
                             'FaceForensics++)')
    parser.add_argument('--size', type=int, default=DEFAULT_SIZE,
                        help='side of the square PNGs (default: %(default)s)')
    parser.add_argument('--detector', default=DEFAULT_DETECTOR, choices=DETECTORS,
                        help='hog: dlib HOG (fast); cnn: dlib CNN (finds more faces, ~70x slower on CPU); '
                             'none: centre square, for inputs already cropped (default: %(default)s)')
    parser.add_argument('--group-by', default='file', metavar='file|video|regex:PATTERN',
                        help='what must stay in one split: each source file (default); the folder of an '
                             "image (a video's frames) or the video file; or the first capture group of "
                             'PATTERN searched in the path relative to SRC. Frames of a video always stay '
                             'together')
    add_seed_arg(parser, 'seed of the split')
    add_workers_arg(parser, 'worker processes, at least 1')
    parser.add_argument('--landmarks', action='store_true',
                        help=f'also find the 68 face landmarks of every crop into OUT/NAME/{LANDMARKS_FILE} '
                             '(for train_main.py --fakes self-blend; python -m fmd.data.landmarks adds them '
                             'to any dataset later)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing OUT/NAME prepared with other arguments or sources')
    add_progress_arg(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; bad values end with a one-line usage error (exit 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is None and args.out_positional is None:
        parser.error('the data root to write into is missing: give --out DIR (or SRC OUT)')
    if args.out is not None and args.out_positional is not None and args.out != args.out_positional:
        parser.error(f'OUT {args.out_positional} and --out {args.out} differ; give one of them')
    args.out = args.out if args.out is not None else args.out_positional
    args.workers = resolve_workers(args.workers)
    problems = []
    fractions = args.split
    if any(not math.isfinite(f) or f < 0 for f in fractions) or \
            not math.isclose(sum(fractions), 1, abs_tol=1e-6):
        problems.append('--split needs three fractions >= 0 that sum to 1, got '
                        + ' '.join(map(str, fractions)))
    elif args.split[0] == 0:
        problems.append('--split needs a train fraction above 0')
    if args.frames_per_video < 1:
        problems.append('--frames-per-video must be at least 1')
    if not math.isfinite(args.margin) or args.margin <= 0:
        problems.append('--margin must be above 0')
    if args.size < 8:
        problems.append('--size must be at least 8')
    if args.workers < 1:
        problems.append('--workers must be at least 1')
    if not NAME_PATTERN.fullmatch(args.name):
        problems.append(f'--name must be a plain folder name (letters, digits, _ . -), not {args.name!r}')
    if problems:
        parser.error('; '.join(problems))
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Prepare the dataset; prints the summary and returns the exit status."""
    args = parse_args(argv)
    src, out_root = Path(args.src), Path(args.out)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so a killed run removes its build folder
    start = time.perf_counter()
    try:
        if not src.is_dir():
            raise PrepareError(f'SRC {src} is not a folder' if src.exists() else f'SRC {src} does not exist')
        if any((out_root / args.name).resolve().is_relative_to((src / c).resolve()) for c in CLASSES):
            raise PrepareError(f'OUT/NAME {out_root / args.name} lies inside SRC/real or SRC/fake; '
                               'write it elsewhere')
        face_crop.get_detector(args.detector)  # a missing package fails here, before any work
        out, rows, skipped = prepare(src, out_root, args.name, args, progress=not args.no_progress)
    except PrepareError as error:  # the arguments or SRC: a usage error
        print(f'error: {error}', file=sys.stderr)
        return EXIT_USAGE
    except (RuntimeError, ImportError, OSError) as error:
        print(f'error: {error_line(error)}', file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print('prepare_faces: interrupted; nothing was written', file=sys.stderr)
        return 130
    for line in summary_lines(rows, skipped, out):
        print(line)
    if args.landmarks:
        try:
            landmarks, errors = add_landmarks(out, args.workers, not args.no_progress,
                                              log=lambda line: print(line, file=sys.stderr))
        except KeyboardInterrupt:
            print(f'prepare_faces: interrupted; the dataset is complete, the landmarks found so far are in '
                  f'{out / LANDMARKS_FILE} (rerun to finish them)', file=sys.stderr)
            return 130
        print(landmarks_summary(landmarks, errors, out / LANDMARKS_FILE)[-1])
    print(f'prepare_faces: {len(rows)} images in {out} ({time.perf_counter() - start:.1f}s); '
          f'use --data-root {out_root} -d {args.name}', file=sys.stderr)
    return 0


def entry() -> None:
    """The console script and `python -m fmd.prepare`."""
    sys.exit(main())


if __name__ == '__main__':
    entry()
