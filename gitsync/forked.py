"""One call run in a forked child while this process does other work.

Plan checks the files while it reads the service. Both want the CPU, and in one process they
would take turns at the GIL; a forked child has its own. The child starts from this process's
memory, so nothing is imported twice and no arguments are copied; only the result comes back,
pickled through a pipe (from our own child, never from outside).

Forking is only safe while this process has a single thread (a lock another thread holds would
stay locked in the child), so ``Forked.possible()`` says no when threads are running, or where
fork is not the usual way to start a process (anything but Linux). Callers then run the call
here instead, as they do when ``fork`` itself fails (OSError). When the child fails in any way
(an exception, a signal, a result that cannot be pickled), ``result()`` says so with
``ChildFailed`` and the caller runs the call here to get the real outcome.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from gitsync.collecting import collecting_rarely

T = TypeVar("T")

_OK, _FAILED = b"+", b"-"
_CHILD_GC_THRESHOLD = 50_000  # allocations between collections (Python's default is 700)
_UNPICKLE_THRESHOLD = 500_000


class ChildFailed(Exception):
    """The child did not return a result; the message says why."""


class Forked(Generic[T]):
    def __init__(self, call: Callable[[], T]) -> None:
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to be had (EAGAIN, ENOMEM): the caller runs the call here
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the child: run, send, and leave without running the parent's exit code
            code = 1
            try:
                os.close(read_end)
                # What it inherited is never garbage: not traversed, so its pages are not
                # copied either. It lives for one call, so it collects rarely: validating
                # 1,000 files (objects that mostly live until the end) 0.65 s -> 0.48 s.
                gc.freeze()
                gc.set_threshold(_CHILD_GC_THRESHOLD, 20, 20)
                _send(write_end, call)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self._pid: int | None = pid
        self._pipe = read_end
        self._outcome: tuple[bool, object] | None = None

    @staticmethod
    def possible() -> bool:
        return sys.platform.startswith("linux") and threading.active_count() == 1

    def ready(self) -> bool:
        """Whether the child has finished: result() will not wait."""
        if self._outcome is not None:
            return True
        readable, _, _ = select.select([self._pipe], [], [], 0)
        return bool(readable)

    def result(self) -> T:
        """The call's return value; waits for the child. ChildFailed if it gave none."""
        if self._outcome is None:
            self._outcome = self._receive()
        ok, value = self._outcome
        if not ok:
            raise ChildFailed(str(value))
        return cast(T, value)

    def close(self) -> None:
        """Stop the child if it still runs, and reap it."""
        if self._pid is not None:
            if self._outcome is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = None
        if self._pipe >= 0:
            os.close(self._pipe)
            self._pipe = -1

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self) -> tuple[bool, object]:
        chunks = []
        while chunk := os.read(self._pipe, 1 << 20):
            chunks.append(chunk)
        data = b"".join(chunks)
        if data[:1] == _OK:
            try:
                # everything unpickled lives on: 1,000 workflows took 35 ms without
                # collections, 40-110 ms at the default thresholds
                with collecting_rarely(_UNPICKLE_THRESHOLD):
                    return True, pickle.loads(data[1:])
            except Exception as e:  # a truncated result: the child died while sending
                return False, f"its result could not be read ({e})"
        if data[:1] == _FAILED:
            return False, data[1:].decode("utf-8", "replace")
        return False, "it ended without a result"


def _send(fd: int, call: Callable[[], object]) -> None:
    try:
        data = _OK + pickle.dumps(call(), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        data = _FAILED + traceback.format_exc().encode("utf-8", "replace")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)
