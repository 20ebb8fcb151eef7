"""fmd.detect's tables: faces.csv (one row per scored face), summary.csv and summary.json (one row per
input), the names of the annotated pictures, and the short table printed on stdout."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fmd.core.atomic_io import atomic_write

FACE_COLUMNS = ('input', 'frame', 'x', 'y', 'w', 'h', 'p_fake', 'threshold', 'threshold_source')
SUMMARY_COLUMNS = ('input', 'kind', 'faces', 'p_fake', 'verdict', 'message', 'checkpoint', 'threshold',
                   'threshold_source', 'model', 'detector', 'annotated', 'file_size', 'file_mtime_ns')
VERDICTS = ('fake', 'real', 'no face', 'error')
DECIMALS = 6  # of p_fake in the files
FACES_CSV, SUMMARY_CSV, SUMMARY_JSON = 'faces.csv', 'summary.csv', 'summary.json'
PICTURE_SUFFIX = '.jpg'  # annotated pictures are JPEG: photos, written in ~3 ms (a PNG of 640 px took ~45 ms)


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], header: bool = True) -> str:
    """CSV text of rows (None written blank), with the header line unless header=False."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow(['' if row[c] is None else row[c] for c in columns])
    return buffer.getvalue()


def write_tables(out: Path, face_rows: Sequence[Mapping[str, Any]],
                 summary_rows: Sequence[Mapping[str, Any]],
                 extra_face_columns: Sequence[str] = ()) -> list[Path]:
    """faces.csv (FACE_COLUMNS, then `extra_face_columns`: --mask's part scores), summary.csv and
    summary.json in out, each written atomically; returns their paths."""
    files = {FACES_CSV: csv_text((*FACE_COLUMNS, *extra_face_columns), face_rows),
             SUMMARY_CSV: csv_text(SUMMARY_COLUMNS, summary_rows),
             SUMMARY_JSON: json.dumps([{c: row[c] for c in SUMMARY_COLUMNS} for row in summary_rows],
                                        indent=1) + '\n'}
    return [atomic_write(out / name, lambda handle, text=text: handle.write(text), 'w')
            for name, text in files.items()]


def annotated_names(paths: Sequence[str]) -> dict[str, str]:
    """A unique picture file name per input path: its file name, '.' -> '_', plus a short hash on a clash,
    then PICTURE_SUFFIX."""
    plain = {path: re.sub(r'[^A-Za-z0-9_-]+', '_', Path(path).name) or 'input' for path in paths}
    counts = Counter(plain.values())
    return {path: (f'{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}' if counts[stem] > 1 else stem)
            + PICTURE_SUFFIX for path, stem in plain.items()}


def stdout_table(summary_rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per input: verdict, p_fake, faces, input, and the reason of an error."""
    lines = [f'{"verdict":8} {"p_fake":>7} {"faces":>5}  input']
    for row in summary_rows:
        p_fake = '-' if row['p_fake'] is None else f'{row["p_fake"]:.3f}'
        reason = f'  ({row["message"]})' if row['message'] else ''
        lines.append(f'{row["verdict"]:8} {p_fake:>7} {row["faces"]:>5}  {row["input"]}{reason}')
    return lines


def verdict_counts(summary_rows: Sequence[Mapping[str, Any]]) -> str:
    """'3 fake, 2 real, 1 no face, 0 error' style counts over the rows."""
    counts = Counter(row['verdict'] for row in summary_rows)
    return ', '.join(f'{counts[v]} {v}' for v in VERDICTS)
