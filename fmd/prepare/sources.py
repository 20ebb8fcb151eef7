"""The inputs: every image and video under SRC/real and SRC/fake, its group and its output file stem.

scan_sources lists SRC; build_sources gives each input the group that must stay in one split
(--group-by, parse_group_by and group_of) and a file stem that is unique in its class folder.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fmd.data.face_crop import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from fmd.prepare.layout import CLASSES, PrepareError


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
        """'real' or 'fake': the class folder its crops go to."""
        return CLASSES[self.label]


def _walk_files(folder: Path) -> Iterator[Path]:
    """Every non-hidden file below folder, in sorted order (hidden files and folders are ignored)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        for name in sorted(filenames):
            if not name.startswith('.'):
                yield Path(dirpath, name)


def scan_sources(src: Path) -> tuple[list[tuple[str, int, str, int, int]], list[tuple[str, str]]]:
    """(rel path, label, kind, size, mtime_ns) of every image and video; other files as skipped rows.
    SRC may hold real/ alone: a dataset of real faces for `train_main.py --fakes self-blend`."""
    if not (src / CLASSES[0]).is_dir():
        raise PrepareError(f'SRC {src} must hold a real/ folder (and a fake/ one, unless the dataset is '
                           'for --fakes self-blend) of images or videos')
    found, skipped = [], []
    for label, class_name in enumerate(CLASSES):
        if label and not (src / class_name).is_dir():
            continue
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
        """The stem before making it unique: the path below the class folder, safe characters only."""
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

