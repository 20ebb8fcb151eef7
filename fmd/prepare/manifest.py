"""The files that describe a build: MANIFEST.csv, skipped.csv and PREPARE.json, written and checked.

PREPARE.json records the settings and the size and mtime of every source, so a rerun can tell whether
the dataset on disk is complete and current (is_complete) or what changed (differences).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fmd.prepare.layout import (
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    SETTINGS_NAME,
    SKIPPED_COLUMNS,
    SKIPPED_NAME,
    VERSION,
)
from fmd.prepare.sources import Source


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments a build depends on, as PREPARE.json records them (a rerun compares them)."""
    return {'detector': args.detector, 'margin': args.margin, 'size': args.size,
            'frames_per_video': args.frames_per_video, 'split': list(args.split), 'seed': args.seed,
            'group_by': args.group_by}


def fingerprints_of(sources: Sequence[Source]) -> dict[str, list[int]]:
    """[size, mtime_ns] of every source: a changed file is seen without reading it again."""
    return {s.rel: [s.size, s.mtime_ns] for s in sources}


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts ([] when it is missing or unreadable)."""
    try:
        with open(path, newline='') as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping | Sequence]) -> None:
    """A CSV file with a header: rows are dicts (taken in column order) or plain sequences."""
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


def differences(root: Path, settings: dict, fingerprints: dict) -> str:
    """Why root is not reused, for the error that asks for --overwrite: the settings that changed."""
    found = read_settings(root)
    if found is None:
        return 'it is not a complete fmd.prepare dataset'
    changed = [k for k in settings if found.get('settings', {}).get(k) != settings[k]]
    if found.get('sources') != fingerprints:
        changed.append('the source files')
    return 'it was prepared with other ' + ', '.join(changed) if changed else 'some of its files changed'


def write_results(tmp: Path, rows: Sequence[Mapping], skipped: Sequence[tuple[str, str]],
                  settings: dict[str, Any], fingerprints: dict[str, list[int]]) -> None:
    """MANIFEST.csv and skipped.csv, then PREPARE.json last: its presence marks the build complete."""
    write_csv(tmp / MANIFEST_NAME, MANIFEST_COLUMNS, rows)
    write_csv(tmp / SKIPPED_NAME, SKIPPED_COLUMNS, skipped)
    record = {'tool': 'prepare_faces.py', 'version': VERSION, 'settings': settings,
              'manifest_sha256': hashlib.sha256((tmp / MANIFEST_NAME).read_bytes()).hexdigest(),
              'sources': fingerprints}
    (tmp / SETTINGS_NAME).write_text(json.dumps(record, indent=1) + '\n')
