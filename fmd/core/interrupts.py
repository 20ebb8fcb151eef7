"""Ctrl-C and SIGTERM as exceptions, and sections of code they cannot cut in half."""
from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator

_before_start_up: dict[int, object] = {}  # the handlers quiet_start_up replaced


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same cleanup runs; exit code 143."""


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _exit_during_start_up(signum: int, frame: object) -> None:
    print('interrupted while starting; nothing was written', file=sys.stderr)
    sys.exit(128 + signum)


def quiet_start_up() -> None:
    """A script's __main__ path, before its heavy imports: Ctrl-C or SIGTERM during them exits
    130 or 143 with one line, not a traceback from inside the import machinery. end_quiet_start_up()
    puts the previous handlers back before run_cli takes over."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup and the like stay as they are
            _before_start_up[sig] = signal.signal(sig, _exit_during_start_up)


def end_quiet_start_up() -> None:
    """Undo quiet_start_up()."""
    while _before_start_up:
        sig, handler = _before_start_up.popitem()
        signal.signal(sig, handler)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated in the main thread (a no-op outside it); the
    previous handler comes back after it, so a caller in the same process (a test, a forked pool
    worker that must die on SIGTERM) does not inherit ours."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then raise the first one that arrived.

    Used where two files must change together (a run's checkpoint and its log).
    """
    received: list[int] = []
    try:
        previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot arrive here anyway
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise Terminated() if received[0] == signal.SIGTERM else KeyboardInterrupt()


class StopRequest:
    """SIGINT/SIGTERM recorded as a flag instead of an exception thrown into arbitrary code.

    Inside `with StopRequest() as stop:` a signal only sets `stop.signum`; the loop calls
    `stop.check()` at safe points (between batches) and the interrupt is raised there. A second
    signal raises at once, for a user who insists.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            self._raise(signum)
        self.signum = signum

    @staticmethod
    def _raise(signum: int) -> None:
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def check(self) -> None:
        """Raise the interrupt now if a signal arrived."""
        if self.signum is not None:
            self._raise(self.signum)

    def __enter__(self) -> StopRequest:
        with contextlib.suppress(ValueError):  # not the main thread: no signals to catch
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
