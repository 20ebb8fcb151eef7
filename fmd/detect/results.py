"""What fmd.detect says about one input (DetectResult, one FaceScore per face), its rows in faces.csv and
summary.csv, and the way back from those rows to the result (how `--resume` keeps what a run scored).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class FaceScore:
    """One scored face: its frame (None for an image), square crop box in source pixels, P(fake)."""

    frame: int | None
    x: int
    y: int
    w: int
    h: int
    p_fake: float
    parts: dict[str, float | None] | None = None  # --mask: mean predicted mask per part (detect.masks)


@dataclass
class DetectResult:
    """The verdict on one input: 'fake' (p_fake >= threshold), 'real', 'no face' or 'error' (message).

    `file_size` and `file_mtime_ns` are the input file's when it was scored (None when it is not a
    file): `--resume` keeps a row only while they still match."""

    input: str
    kind: str
    faces: list[FaceScore]
    p_fake: float | None
    verdict: str
    message: str
    checkpoint: str
    threshold: float
    threshold_source: str  # a key of detect.cli.THRESHOLD_SOURCES
    model: str
    detector: str
    annotated: str = ''
    file_size: int | None = None
    file_mtime_ns: int | None = None

    def summary_row(self) -> dict[str, Any]:
        """The summary.csv / summary.json row: faces counted, p_fake rounded."""
        row = {k: v for k, v in _shallow(self).items() if k != 'faces'}
        return {**row, 'faces': len(self.faces), 'p_fake': rounded(self.p_fake)}

    def face_rows(self) -> list[dict[str, Any]]:
        """The faces.csv rows of this input (with the threshold its verdict used, and its source)."""
        return [{'input': self.input, **{k: v for k, v in _shallow(face).items() if k != 'parts'},
                 'p_fake': rounded(face.p_fake), **rounded_parts(face.parts),
                 'threshold': self.threshold, 'threshold_source': self.threshold_source}
                for face in self.faces]


def _shallow(instance: object) -> dict[str, Any]:
    """A dataclass's fields as a dict, without dataclasses.asdict's deep copy (a row is written once)."""
    return {field.name: getattr(instance, field.name) for field in fields(instance)}


def rounded(p: float | None) -> float | None:
    """A probability as the tables store it: 6 decimals (None stays None)."""
    return None if p is None else round(p, 6)


def rounded_parts(parts: Mapping[str, float | None] | None) -> dict[str, float | None]:
    """--mask's faces.csv columns (blank without landmarks); {} for a run without --mask."""
    if parts is None:
        return {}
    return {part: rounded(score) for part, score in parts.items()}


def verdict_of(p_fake: float | None, threshold: float) -> str:
    """'fake' when p_fake >= threshold, 'real' below it, 'no face' when there is no score."""
    if p_fake is None:
        return 'no face'
    return 'fake' if p_fake >= threshold else 'real'


def file_stamp(path: str) -> tuple[int | None, int | None]:
    """(size in bytes, mtime in ns) of a file, (None, None) when it is not one: how --resume tells an
    input it scored before from one changed since."""
    try:
        stat = os.stat(path)
    except OSError:
        return None, None
    return stat.st_size, stat.st_mtime_ns


# ----------------------------------------------------------------------------- rows back to results

def _number(text: str, kind: type) -> Any:
    return None if text == '' else kind(text)


def result_from_rows(summary: Mapping[str, str], faces: Sequence[Mapping[str, str]],
                     part_columns: Sequence[str] = ()) -> DetectResult:
    """The DetectResult whose summary_row() and face_rows() are these CSV rows (all strings; blank is
    None): the rows of a run interrupted earlier, written again unchanged at the end of a resumed one.
    A malformed row raises ValueError or KeyError."""
    scores = [FaceScore(_number(row['frame'], int), int(row['x']), int(row['y']), int(row['w']),
                        int(row['h']), float(row['p_fake']),
                        {part: _number(row[part], float) for part in part_columns} if part_columns else None)
              for row in faces]
    if len(scores) != int(summary['faces']):
        raise ValueError(f'{summary["input"]}: {summary["faces"]} faces in summary.csv, {len(scores)} in '
                         'faces.csv')
    return DetectResult(summary['input'], summary['kind'], scores, _number(summary['p_fake'], float),
                        summary['verdict'], summary['message'], summary['checkpoint'],
                        float(summary['threshold']), summary['threshold_source'], summary['model'],
                        summary['detector'], summary['annotated'], _number(summary['file_size'], int),
                        _number(summary['file_mtime_ns'], int))
