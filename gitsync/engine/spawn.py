"""Starting task processes for the runner's slot threads.

Each run has its own working directory, which ``os.posix_spawn`` cannot set in Python 3.11, and
``subprocess.Popen`` costs more per process (80-100 us of CPU here, against about 55 for
``posix_spawn`` given a plain dict as the environment). On Linux each slot thread therefore
takes a working directory of its own (``unshare(CLONE_FS)``: other threads keep the process's)
and changes it before each spawn; elsewhere, or if that fails, it uses Popen.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Protocol

CLONE_FS = 0x200
# Python ignores these itself; the task must get the default back (as Popen's restore_signals)
_RESTORED = tuple(s for s in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None)) if s)


class Child(Protocol):
    pid: int

    def wait(self) -> int: ...


class _Spawned:
    __slots__ = ("code", "pid")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None

    def wait(self) -> int:
        if self.code is None:
            _, status = os.waitpid(self.pid, 0)
            self.code = os.waitstatus_to_exitcode(status)
        return self.code


def own_working_directory() -> bool:
    """Give the calling thread a working directory of its own; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.unshare(CLONE_FS) == 0)
    except (OSError, AttributeError):
        return False


class Launcher:
    """Starts processes in their own session with stdout and stderr to a file. Create it on the
    thread that will use it: that thread may get its own working directory."""

    def __init__(self, use_spawn: bool | None = None) -> None:
        self.spawns = own_working_directory() if use_spawn is None else use_spawn
        # os.environ converts every variable on every spawn (half of posix_spawn's cost):
        # tasks get the environment the engine started with
        self._environment = dict(os.environ)  # noqa: TID251 -- handed on to tasks, not read

    def start(self, argv: tuple[str, ...], cwd: str, output: int, stdin: int) -> Child:
        if not self.spawns:
            return subprocess.Popen(
                argv,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=stdin,
                cwd=cwd,
                env=self._environment,
                start_new_session=True,
            )
        os.chdir(cwd)  # every time: a directory removed and made again has the same name
        pid = os.posix_spawn(
            argv[0],
            argv,
            self._environment,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin, 0),
                (os.POSIX_SPAWN_DUP2, output, 1),
                (os.POSIX_SPAWN_DUP2, output, 2),
            ],
            setsid=True,
            setsigmask=(),
            setsigdef=_RESTORED,
        )
        return _Spawned(pid)
