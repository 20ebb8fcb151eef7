"""MANIFEST.json: what was generated (version, seed, scale, counts) and the SHA-256 of every file.

The manifest is written last, so its presence marks a complete build; its own SHA-256 is a short
fingerprint of the whole dataset (fmd.reporting prints it).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .layout import IMAGE_SIZE, Counts

GENERATOR_VERSION = '2.0.0'  # 2.0.0: torch conv_transpose2d changed some synthetic-fake bytes
MANIFEST_NAME = 'MANIFEST.json'
MATCHING_FIELDS = ('version', 'seed', 'scale', 'counts', 'image_size')  # equal means reusable


def build_manifest(seed: int, scale_name: str, counts: Counts, files: dict[str, str]) -> dict:
    """The manifest of one build; `files` maps relative path to SHA-256 (empty for a template)."""
    return {
        'generator': 'make_demo_datasets.py', 'version': GENERATOR_VERSION, 'seed': seed,
        'scale': scale_name, 'image_size': IMAGE_SIZE,
        'note': 'Procedural demo data, a stand-in for the course datasets (not real faces).',
        'counts': {f'{dataset}/{split}/{class_name}': number for dataset, splits in counts.items()
                   for split, classes in splits.items() for class_name, number in classes.items()},
        'files': dict(sorted(files.items())),
    }


def manifest_text(manifest: dict) -> str:
    """The manifest as written to disk; fixed formatting keeps its digest stable."""
    return json.dumps(manifest, indent=1) + '\n'


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of one file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(root: str | Path) -> dict | None:
    """The parsed <root>/MANIFEST.json, or None when it is absent or not valid JSON."""
    try:
        manifest = json.loads((Path(root) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_digest(root: str | Path) -> str | None:
    """SHA-256 of the manifest file's bytes: one short fingerprint of the whole dataset."""
    path = Path(root) / MANIFEST_NAME
    return sha256_of(path) if path.is_file() else None


def is_complete(root: Path, expected: dict) -> bool:
    """True when `root` holds a manifest matching `expected` and every listed file, unchanged."""
    found = read_manifest(root)
    if not found or any(found.get(field) != expected[field] for field in MATCHING_FIELDS):
        return False
    files = found.get('files', {})
    if len(files) != sum(expected['counts'].values()):
        return False
    return all((root / relative).is_file() and sha256_of(root / relative) == digest
               for relative, digest in files.items())
