"""The console entry point: take over the stop signals first, then import the command line.

SIGINT, SIGTERM and SIGHUP all raise ``Interrupted`` in the main thread, so ``finally``
blocks run (the apply lock is released) and the exit code says which signal it was (130, 143,
129). Two moments are unsafe for raising: while a module is being imported (Python's import
machinery swallows or rewraps an exception raised there, and the Ctrl-C would be lost), and
before the command line is loaded. A signal then is held and raised as soon as it is safe. A
second signal while the clean-up runs is ignored, so it can finish; a third one ends the
process at once. This module imports nothing of gitsync at its top, so that the handlers are
in place a few milliseconds after the interpreter starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
RETRY = 0.05  # seconds before a signal held during an import is delivered again


def _importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


class _StopHandler:
    def __init__(self) -> None:
        self.received = 0
        self.held: int | None = None  # a signal that came before it was safe to raise
        self.ready = False  # the command line is loaded
        self.done = False  # the command has ended: the interpreter is shutting down

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.done:
            _exit_quietly(signum)
        if not self.ready:
            self.held = self.held or signum
            return
        if self.received == 0 and _importing(frame):
            import threading  # imported here: the module's own import stays as short as can be

            threading.Timer(RETRY, os.kill, (os.getpid(), signum)).start()
            return
        self.received += 1
        if self.received == 1:
            self.raise_for(signum)
        if self.received >= 3:  # asked three times: stop now, clean-up or not
            os._exit(128 + signum)

    def raise_for(self, signum: int) -> None:
        from gitsync.errors import Interrupted

        raise Interrupted(signum, signal.Signals(signum).name)

    def finished(self) -> None:
        """The command has ended and said what it did; a signal while the interpreter shuts
        down (joining threads, flushing) ends the process quietly with the signal's code,
        instead of an exception Python can only report as "ignored", with a traceback."""
        self.done = True

    def start(self) -> None:
        """From now on a signal is raised; one that came before is raised now."""
        self.ready = True
        if self.held is not None:
            self.received = 1
            self.raise_for(self.held)


def install() -> _StopHandler:
    """Route the stop signals to ``Interrupted`` (main thread only, as Python requires)."""
    handler = _StopHandler()
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            signal.signal(sig, handler)
    return handler


def main() -> None:
    handler = install()
    try:
        from gitsync.cli import main as run
        from gitsync.errors import Interrupted

        handler.start()
    except KeyboardInterrupt as e:  # before the command line could take it
        sys.stderr.write("Interrupted.\n")
        sys.exit(getattr(e, "exit_code", 130))
    try:
        try:
            run()
        finally:
            handler.finished()
    except Interrupted as e:  # past the command line's own handling (its last instant)
        sys.stderr.write("Interrupted.\n")
        sys.exit(e.exit_code)


def _exit_quietly(signum: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(2, b"Interrupted.\n")
    os._exit(128 + signum)
