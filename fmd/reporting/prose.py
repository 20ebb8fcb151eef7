"""The report's fixed prose, read from prose.md beside this file: one `## key` section a paragraph.

Explanations that do not depend on the run live there as prose, so the answer modules hold only
what is computed; a section's lines are joined by single spaces.
"""
from __future__ import annotations

import functools
from pathlib import Path

PROSE_FILE = Path(__file__).with_name('prose.md')


@functools.cache
def sections() -> dict[str, str]:
    """Every `## key` section of prose.md as one line of text (the title and preamble are skipped)."""
    found: dict[str, list[str]] = {}
    key = None
    for line in PROSE_FILE.read_text(encoding='utf-8').splitlines():
        if line.startswith('## '):
            key = line[3:].strip()
            found[key] = []
        elif key is not None and line.strip():
            found[key].append(line.strip())
    return {name: ' '.join(lines) for name, lines in found.items()}


def prose(key: str) -> str:
    """The paragraph filed under `## key` in prose.md; a KeyError names a key that is not there."""
    return sections()[key]
