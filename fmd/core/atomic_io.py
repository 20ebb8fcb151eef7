"""Files that are never half-written and never clobbered: atomic writes, locked appends, run locks."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are then not protected against each other
    fcntl = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = 'wb',
                 fsync: bool = True) -> Path:
    """Write through `write(handle)` into a temp file beside `path`, fsync, then rename into place.

    The file gets the usual 0666 & ~umask permissions; the temp file is removed on any failure,
    Ctrl-C included, so neither a half-written file nor a stray *.tmp is ever left behind.
    fsync=False skips the flush to disk (a picture that can be drawn again): still never half-written
    for a crash of the program, only a power cut may lose it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        os.chmod(tmp_name, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as error:
        Path(tmp_name).unlink(missing_ok=True)
        refused = _refused_write(error)
        if refused is not None:
            raise DiskWriteError(_refusal_message(path, refused)) from error
        raise
    return path


class DiskWriteError(OSError):
    """The disk refused a write (full, over quota, over the file-size limit); the message says
    which file and what to do."""


_REFUSALS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def refused_write_line(error: BaseException, writing: str | os.PathLike | None = None) -> str | None:
    """One line for an error behind which the disk refused a write (None for any other error);
    `writing` names what was being written where the error itself does not say."""
    if isinstance(error, DiskWriteError):
        return str(error)
    refused = _refused_write(error)
    if refused is None:
        return None
    target = refused.filename or writing
    where = f' while writing {target}' if target else ''
    if refused.errno == errno.EFBIG:
        return (f'a file grew larger than this process may write{where} (ulimit -f); raise that limit '
                'and run again')
    return f'no space left on the disk{where}; free some space and run again'


def _refused_write(error: BaseException) -> OSError | None:
    """The OSError of a refused write behind `error`, if any: torch.save reports a full disk as
    "unexpected pos ..." and keeps the OSError only as the exception's context."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in _REFUSALS:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _refusal_message(path: Path, refused: OSError) -> str:
    """One line: which file could not be written, why, and what to do."""
    if refused.errno == errno.EFBIG:
        return (f'could not write {path}: it is larger than this process may write (ulimit -f); '
                'raise that limit and run again')
    free_mib = shutil.disk_usage(path.parent).free / 2**20
    return (f'could not write {path}: no space left on its disk ({free_mib:.0f} MiB free in '
            f'{path.parent}); free some space and run again (an earlier {path.name} is kept as it was)')


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, then rename: never a half-written file."""
    import torch

    return atomic_write(path, lambda handle: torch.save(obj, handle), 'wb')


def atomic_write_json(obj: Any, path: str | os.PathLike) -> Path:
    """json.dump to a temp file in the same folder, then rename."""
    return atomic_write(path, lambda handle: json.dump(obj, handle, indent=2), 'w')


class CorruptLogError(ValueError):
    """A JSON log exists but is not a JSON list."""


def check_json_list(path: str | os.PathLike) -> list:
    """The JSON list in `path` ([] when absent); CorruptLogError when it is not a JSON list."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptLogError(f'{path} is not valid JSON ({error})') from error
    if not isinstance(data, list):
        raise CorruptLogError(f'{path} holds a {type(data).__name__}, not a list')
    return data


def read_json_list(path: str | os.PathLike) -> list:
    """Read a JSON list log; a corrupt or non-list file is moved aside (never lost) and [] returned."""
    path = Path(path)
    try:
        return check_json_list(path)
    except CorruptLogError as error:
        backup = path.with_name(f'{path.name}.corrupt-{time.strftime("%Y%m%d-%H%M%S")}')
        os.replace(path, backup)
        print(f'WARNING: {error}; moved it to {backup} and started a new log.', file=sys.stderr)
        return []


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if needed), waiting for other holders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a') as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def append_json_record(path: str | os.PathLike, record: Any) -> Path:
    """Append `record` to the JSON list in `path`: read, append, atomic rewrite, under a file lock."""
    path = Path(path)
    with file_lock(path.with_name(f'.{path.name}.lock')):
        records = read_json_list(path)
        records.append(record)
        atomic_write_json(records, path)
    return path


class RunLockedError(RuntimeError):
    """Another live process holds the run's lock."""


class RunLock:
    """An exclusive lock on a run name, held for the process's lifetime or until release().

    The lock file holds the owner's PID. The OS drops the lock when its process dies, so the lock
    of a dead process is simply taken over.
    """

    def __init__(self, path: str | os.PathLike, what: str):
        self.path = Path(path)
        self.what = what
        self._handle = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, 'a+')  # noqa: SIM115 (held open while the lock is held)
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or 'unknown'
                handle.close()
                raise RunLockedError(
                    f'{self.what} is already running in process {owner} (lock {self.path}); '
                    'wait for it to finish or stop it first.') from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        """Clear the owner PID and drop the lock (the empty file stays: unlinking it would race)."""
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
