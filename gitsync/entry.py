"""The console entry point: take over the stop signals first, then import the command line.

Importing the command line takes a few hundred milliseconds; a Ctrl-C (or a CI runner's
SIGTERM) in that time must end the process as quietly as one later on. SIGINT, SIGTERM and
SIGHUP all raise ``Interrupted`` in the main thread, so ``finally`` blocks run (the apply lock
is released) and the exit code says which signal it was (130, 143, 129). A second signal while
that clean-up runs is ignored, so it can finish; a third one ends the process at once.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from gitsync.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopHandler:
    def __init__(self) -> None:
        self.received = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if self.received == 1:
            raise Interrupted(signum, signal.Signals(signum).name)
        if self.received >= 3:  # asked three times: stop now, clean-up or not
            os._exit(128 + signum)


def install() -> None:
    """Route the stop signals to ``Interrupted`` (main thread only, as Python requires)."""
    handler = _StopHandler()
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            signal.signal(sig, handler)


def main() -> None:
    try:
        install()
        from gitsync.cli import main as run

        run()
    except KeyboardInterrupt as e:  # before the command line could take it
        sys.stderr.write("Interrupted.\n")
        sys.exit(e.exit_code if isinstance(e, Interrupted) else 130)
