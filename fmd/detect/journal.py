"""fmd.detect's --out folder while a run writes it: one run at a time (a lock), each finished input's rows
appended to faces.csv and summary.csv at once (so Ctrl-C or a crash keeps what was scored), and
`--resume`, which keeps the rows of inputs that have not changed since and scores only the rest.

The tables are rewritten whole and in input order at the start (the rows kept) and at the end (every
row, with summary.json), so a resumed run ends with the same files as an uninterrupted one.
settings.json holds what the scores depend on; --resume refuses a folder written with other settings.
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fmd.core.atomic_io import RunLock, atomic_write, atomic_write_json
from fmd.core.interrupts import deferred_interrupts
from fmd.detect.outputs import FACE_COLUMNS, FACES_CSV, SUMMARY_COLUMNS, SUMMARY_CSV, csv_text, write_tables
from fmd.detect.results import DetectResult, file_stamp, result_from_rows

SETTINGS_JSON = 'settings.json'
LOCK_FILE = '.detect.lock'
ANNOTATED_DIR = 'annotated'


class ResumeError(ValueError):
    """--resume on a folder it cannot continue (other settings, tables of another program)."""


def _append(path: Path, text: str) -> None:
    """Append text with O_APPEND writes: a row is never interleaved with another process's."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def whole_rows(path: Path, columns: Sequence[str]) -> list[dict[str, str]] | None:
    """The rows of a table this module wrote, without a last line cut short by a crash; None when the
    file is missing; ResumeError when its header is not `columns`."""
    try:
        with open(path, encoding='utf-8', newline='') as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ResumeError(f'--resume: cannot read {path} ({error}); start without --resume') from error
    text = text[:text.rfind('\n') + 1]  # a row is whole only with its line end
    try:
        reader = csv.DictReader(io.StringIO(text, newline=''))
        rows = [row for row in reader if None not in row and None not in row.values()]
    except csv.Error as error:
        raise ResumeError(f'--resume: {path} is not a table fmd.detect wrote ({error}); start without '
                          '--resume') from error
    if tuple(reader.fieldnames or ()) != tuple(columns):
        raise ResumeError(f'--resume: {path} has columns {",".join(reader.fieldnames or ())}, not those this '
                          f'run writes ({",".join(columns)}); start without --resume, or with the same flags')
    return rows


class RunFolder:
    """The --out folder of one fmd.detect run: `acquire` locks it, `start` sets the tables up (and returns
    the results --resume keeps), `append` adds one finished input, `finish` writes the final tables."""

    def __init__(self, out: str | os.PathLike, settings: Mapping[str, Any], part_columns: Sequence[str] = ()):
        self.out = Path(out)
        self.settings = dict(settings)
        self.part_columns = tuple(part_columns)
        self.face_columns = (*FACE_COLUMNS, *self.part_columns)
        self.lock = RunLock(self.out / LOCK_FILE, f'fmd.detect on {self.out}')

    def acquire(self) -> RunFolder:
        """Lock the folder for this run; RunLockedError names the process that holds it."""
        self.lock.acquire()
        return self

    def release(self) -> None:
        self.lock.release()

    def start(self, inputs: Sequence[str], resume: bool) -> dict[str, DetectResult]:
        """With `resume`, the earlier results of `inputs` whose file is unchanged, by input path ({}
        without); the tables then hold those rows only. Call it holding the lock (acquire)."""
        kept = self._kept(inputs) if resume else self._replace_earlier_run()
        order = {path: index for index, path in enumerate(inputs)}
        results = sorted(kept.values(), key=lambda result: order[result.input])
        face_rows = [row for result in results for row in result.face_rows()]
        with deferred_interrupts():
            atomic_write_json(self.settings, self.out / SETTINGS_JSON)
            self._write(FACES_CSV, csv_text(self.face_columns, face_rows))
            self._write(SUMMARY_CSV, csv_text(SUMMARY_COLUMNS, [r.summary_row() for r in results]))
        return kept

    def _write(self, name: str, text: str) -> None:
        atomic_write(self.out / name, lambda handle: handle.write(text), 'w')

    def append(self, result: DetectResult) -> None:
        """One finished input's rows: its faces first, then its summary row, which marks it done."""
        with deferred_interrupts():
            _append(self.out / FACES_CSV, csv_text(self.face_columns, result.face_rows(), header=False))
            _append(self.out / SUMMARY_CSV, csv_text(SUMMARY_COLUMNS, [result.summary_row()], header=False))

    def finish(self, results: Sequence[DetectResult]) -> list[Path]:
        """faces.csv, summary.csv and summary.json of every result, in order, written atomically."""
        return write_tables(self.out, [row for r in results for row in r.face_rows()],
                            [r.summary_row() for r in results], self.part_columns)

    def _kept(self, inputs: Sequence[str]) -> dict[str, DetectResult]:
        summary = whole_rows(self.out / SUMMARY_CSV, SUMMARY_COLUMNS)
        if summary is None:
            print(f'Note: --resume: {self.out} holds no {SUMMARY_CSV} yet; scoring every input.')
            return {}
        self._check_settings()
        faces: dict[str, list[dict[str, str]]] = {}
        for row in whole_rows(self.out / FACES_CSV, self.face_columns) or []:
            faces.setdefault(row['input'], []).append(row)
        wanted = set(inputs)
        kept = {}
        for row in summary:  # a later row of the same input replaces an earlier one
            if row['input'] not in wanted:
                continue
            try:
                result = result_from_rows(row, faces.get(row['input'], []), self.part_columns)
            except (ValueError, KeyError):
                continue  # a row that does not parse is scored again
            if (result.file_size, result.file_mtime_ns) == file_stamp(result.input):
                kept[result.input] = result
            else:
                kept.pop(result.input, None)
        print(f'Resuming: {len(kept)} of {len(inputs)} inputs are already scored in {self.out / SUMMARY_CSV}'
              f'; scoring the other {len(inputs) - len(kept)}.')
        return kept

    def _check_settings(self) -> None:
        """ResumeError when the folder's settings.json differs from this run's settings."""
        path = self.out / SETTINGS_JSON
        try:
            earlier = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ResumeError(f'--resume: cannot read {path} ({error}), so the tables there cannot be '
                              'continued; start without --resume') from error
        changed = [f'{key} {earlier.get(key)!r} -> {value!r}' for key, value in self.settings.items()
                   if earlier.get(key) != value]
        if changed:
            raise ResumeError(f'--resume: {self.out} was scored with other settings ({"; ".join(changed)}); '
                              'rerun with the flags of that run, or without --resume to start anew')

    def _replace_earlier_run(self) -> dict[str, DetectResult]:
        """A run without --resume replaces an earlier run's tables, and removes the pictures they name."""
        try:
            earlier = whole_rows(self.out / SUMMARY_CSV, SUMMARY_COLUMNS) or []
        except ResumeError:
            earlier = []
        if earlier:
            print(f'Note: {self.out} holds the tables of an earlier run ({len(earlier)} inputs); they are '
                  'replaced (pass --resume to continue that run instead).')
        folder = (self.out / ANNOTATED_DIR).resolve()
        for row in earlier:
            picture = Path(row['annotated']).resolve() if row['annotated'] else None
            if picture is not None and picture.parent == folder:
                picture.unlink(missing_ok=True)
                picture.with_name(f'{picture.stem}_mask.png').unlink(missing_ok=True)
        return {}
