"""One process pool for CPU-bound work over many files (face crops, landmarks): ordered results, a
killed worker reported instead of a hang, and every worker stopped before the caller goes on."""
from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar('T')
R = TypeVar('R')


class WorkerDiedError(RuntimeError):
    """A worker process was killed (out of memory, SIGKILL): the work it held is lost."""


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done (renames and clean-up run to the end)."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_worker(initializer: Callable[..., None] | None, initargs: Sequence[Any]) -> None:
    """Workers leave Ctrl-C to the main process and die on SIGTERM, then run the caller's set-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, initializer: Callable[..., None] | None = None,
                 initargs: Sequence[Any] = ()) -> ProcessPoolExecutor:
    """`workers` forked processes that ignore Ctrl-C and die on SIGTERM. OpenCV is set to one
    thread in this process first: a forked child of a process whose OpenCV thread pool has run
    hangs in its first OpenCV call (tested), so this process stays single-threaded in OpenCV."""
    import cv2

    cv2.setNumThreads(1)
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(),
                               initializer=_start_worker, initargs=(initializer, tuple(initargs)))


def worker_map(function: Callable[[T], R], items: Iterable[T], workers: int,
               initializer: Callable[..., None] | None = None, initargs: Sequence[Any] = (),
               chunksize: int = 1) -> Iterator[R]:
    """function(item) for every item, in order: in this process when workers <= 1, else in
    `workers` processes of process_pool. Raises WorkerDiedError when a worker is killed."""
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(function, items)
        return
    pool = process_pool(workers, initializer, initargs)
    try:
        yield from pool.map(function, items, chunksize=chunksize)
    except BrokenProcessPool as error:
        raise WorkerDiedError('a worker process died (killed, or out of memory?); '
                              'try fewer --workers') from error
    finally:
        with signals_deferred():  # every worker is gone before the caller cleans up
            for process in list((getattr(pool, '_processes', None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
