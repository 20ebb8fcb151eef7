"""The work on one source: crop its faces into PNGs, or copy them from the previous build when unchanged.

make_tasks plans one task per source; run_tasks runs process_source on each, in a pool of workers.
"""
from __future__ import annotations

import glob
import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fmd.core.parallel import WorkerDiedError, worker_map
from fmd.data import face_crop
from fmd.data.face_crop import InputReadError
from fmd.prepare.layout import CROP_KEYS, MANIFEST_NAME, SKIPPED_NAME, VERSION
from fmd.prepare.manifest import read_csv, read_settings
from fmd.prepare.sources import Source


def _png_bytes(pixels: np.ndarray) -> bytes:
    """A crop as PNG bytes (compress level 1: quick to write, a little larger)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='PNG', compress_level=1)
    return buffer.getvalue()


def _write(tmp: Path, rel_out: str, data: bytes) -> str:
    """Write one output file below tmp and return its sha256 for the manifest."""
    path = tmp / rel_out
    with open(path, 'xb') as handle:  # never silently overwrite another output
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def _row(source: Source, split: str, rel_out: str, frame: int | None, box: face_crop.FaceBox,
         detector: str, faces: int, digest: str) -> dict[str, Any]:
    """One MANIFEST.csv row: where a crop came from and where its face box lies."""
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
        if source.kind == 'image':  # found and cut as fmd.detect does (a large JPEG read reduced)
            image_face = face_crop.image_face(path, detector, settings['margin'], settings['size'])
            crops = [(None, image_face.box, image_face.faces, image_face.crop)]
        else:
            crops = [(frame, *_frame_face(image, detector, settings))
                     for frame, image in face_crop.read_video_frames(path, settings['frames_per_video'])]
    except InputReadError as error:
        return [], [(source.rel, f'unreadable: {error.reason}')]
    rows, skipped = [], []
    for frame, box, faces, crop in crops:
        if box is None:
            skipped.append((source.rel, 'no face' if frame is None else f'no face in frame {frame}'))
            continue
        name = source.stem if frame is None else f'{source.stem}_frame{frame:06d}'
        rel_out = f'{folder}/{name}.png'
        digest = _write(Path(task['tmp']), rel_out, _png_bytes(crop))
        rows.append(_row(source, task['split'], rel_out, frame, box, detector, faces, digest))
    return rows, skipped


def _frame_face(image: np.ndarray, detector: str, settings: dict[str, Any],
                ) -> tuple[face_crop.FaceBox | None, int, np.ndarray | None]:
    """(box, faces found, crop) of the largest face of a video frame; (None, 0, None) without one."""
    box, faces = face_crop.face_box(image, detector, settings['margin'])
    if box is None:
        return None, 0, None
    return box, faces, face_crop.crop_square(image, box, settings['size'])


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

