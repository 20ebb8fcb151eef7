"""The atomic build of OUT/NAME: reuse it when complete, else build it aside and rename it into place.

A run builds into the hidden folder OUT/.NAME.tmp-PID and swaps it in at the end, so an interrupted
or killed run never leaves a half-written dataset; remove_stale_builds clears what killed runs left.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from fmd.core.parallel import signals_deferred
from fmd.prepare.crops import make_tasks, run_tasks
from fmd.prepare.layout import CLASSES, MANIFEST_NAME, OWN_ENTRIES, SKIPPED_NAME, SPLITS, PrepareError
from fmd.prepare.manifest import (
    differences,
    fingerprints_of,
    is_complete,
    read_csv,
    settings_of,
    write_results,
)
from fmd.prepare.sources import build_sources, parse_group_by, scan_sources
from fmd.prepare.splits import assign_splits


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
    """Whether process pid still runs (a build folder of a live run must not be removed)."""
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


def prepare(src: Path, out_root: Path, name: str, args: argparse.Namespace,
            progress: bool = True) -> tuple[Path, list[dict], list[tuple[str, str]]]:
    """Build (or reuse) OUT/NAME; returns its path, the manifest rows and the skipped rows."""
    out = out_root / name
    found, skipped_scan = scan_sources(src)
    sources, skipped_groups = build_sources(found, parse_group_by(args.group_by))
    skipped_scan += skipped_groups
    settings, fingerprints = settings_of(args), fingerprints_of(sources)
    if out.exists() or out.is_symlink():
        if is_complete(out, settings, fingerprints):
            print(f'prepare_faces: reusing complete {out} (same arguments and source files)',
                  file=sys.stderr)
            skipped = [(r['source'], r['reason']) for r in read_csv(out / SKIPPED_NAME)]
            return out, read_csv(out / MANIFEST_NAME), skipped
        if not args.overwrite:
            raise PrepareError(f'{out} already exists and {differences(out, settings, fingerprints)}; '
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
        write_results(tmp, rows, skipped, settings, fingerprints)
        with signals_deferred():
            if out.exists() or out.is_symlink():
                out.rename(old)
            tmp.rename(out)
    finally:
        with signals_deferred():
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return out, rows, skipped
