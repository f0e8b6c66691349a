"""Starting task processes for the runner's slot threads.

``os.posix_spawn`` holds the GIL for the whole spawn: the vfork and the child's work up to its
exec, 150-250 us here. With two slots, one slot's start stopped every other thread of the
engine, including the other slot's bookkeeping. It also cannot set a working directory in
Python 3.11, nor close the descriptors the engine inherited, and converts the environment on
every call. So on glibc (2.34 or later, for ``posix_spawn_file_actions_addchdir_np`` and
``addclosefrom_np``) the launcher calls libc's ``posix_spawn`` through ctypes, which releases
the GIL for the call, with the environment converted once. Elsewhere it uses
``subprocess.Popen``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import Any, Protocol

# Python ignores these itself; the task must get the default back (as Popen's restore_signals)
_RESTORED = tuple(s for s in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None)) if s)
# glibc's posix_spawnattr flags (spawn.h)
_SETSIGDEF, _SETSIGMASK, _SETSID = 0x04, 0x08, 0x80
# room for posix_spawn_file_actions_t (80 bytes on x86-64), posix_spawnattr_t (336) and
# sigset_t (128), whatever the architecture
_OPAQUE = 1024
# what marks a task's processes as its own (leftovers.py finds them by it after a crash)
ENGINE_VARIABLE = "GITSYNC_ENGINE_DIR"  # the engine's data dir, the same for every task
TASK_VARIABLE = "GITSYNC_TASK_INSTANCE"  # the task instance id, set per start


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


class _Libc:
    """The libc functions the launcher needs (AttributeError where one is missing)."""

    def __init__(self) -> None:
        released = ctypes.CDLL(None)  # calls release the GIL
        held = ctypes.PyDLL(None)  # calls that only fill in memory: no GIL hand-off
        self.spawn = released.posix_spawn
        pointer = ctypes.c_void_p  # file actions, attributes, argv, envp
        self.spawn.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, *[pointer] * 4]
        self.spawn.restype = ctypes.c_int
        self.actions_init = held.posix_spawn_file_actions_init
        self.actions_destroy = held.posix_spawn_file_actions_destroy
        self.dup2 = held.posix_spawn_file_actions_adddup2
        self.dup2.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self.chdir = held.posix_spawn_file_actions_addchdir_np
        self.chdir.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.close_from = held.posix_spawn_file_actions_addclosefrom_np
        self.close_from.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.attr_init = held.posix_spawnattr_init
        self.set_flags = held.posix_spawnattr_setflags
        self.set_flags.argtypes = [ctypes.c_void_p, ctypes.c_short]
        self.set_mask = held.posix_spawnattr_setsigmask
        self.set_default = held.posix_spawnattr_setsigdefault
        self.sigemptyset = held.sigemptyset
        self.sigaddset = held.sigaddset
        self.sigaddset.argtypes = [ctypes.c_void_p, ctypes.c_int]


def _load_libc() -> _Libc | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
        major, minor = (int(n) for n in version.split()[1].split(".")[:2])
        if (major, minor) < (2, 34):  # addchdir_np: 2.29, addclosefrom_np: 2.34
            return None
        return _Libc()
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_LIBC = _load_libc()


def libc_spawn_available() -> bool:
    return _LIBC is not None


class _LibcSpawner:
    """posix_spawn with everything that does not change between tasks prepared once: the
    attributes (own session, empty signal mask, SIGPIPE and SIGXFSZ at their defaults) and the
    environment."""

    def __init__(self, libc: _Libc, environment: dict[str, str]) -> None:
        self._libc = libc
        self._keep = [os.fsencode(f"{k}={v}") for k, v in environment.items()]  # envp -> these
        # a spare entry before the end for the task's own variable, filled in per start
        self._own = len(self._keep)
        self._environment = (ctypes.c_char_p * (self._own + 2))(*self._keep, None, None)
        self._attributes = ctypes.create_string_buffer(_OPAQUE)
        empty, restored = ctypes.create_string_buffer(_OPAQUE), ctypes.create_string_buffer(_OPAQUE)
        libc.sigemptyset(empty)
        libc.sigemptyset(restored)
        for signum in _RESTORED:
            libc.sigaddset(restored, signum)
        libc.attr_init(self._attributes)
        libc.set_mask(self._attributes, empty)
        libc.set_default(self._attributes, restored)
        libc.set_flags(self._attributes, _SETSIGDEF | _SETSIGMASK | _SETSID)
        self._actions = ctypes.create_string_buffer(_OPAQUE)
        self._pid = ctypes.c_int()

    def start(
        self, argv: tuple[str, ...], cwd: str, output: int, stdin: int, own: bytes | None
    ) -> _Spawned:
        libc, actions = self._libc, self._actions
        args = [os.fsencode(a) for a in argv]
        arguments: Any = (ctypes.c_char_p * (len(args) + 1))(*args, None)
        self._environment[self._own] = own  # None ends the list there
        libc.actions_init(actions)
        try:
            libc.dup2(actions, stdin, 0)
            libc.dup2(actions, output, 1)
            libc.dup2(actions, output, 2)
            libc.chdir(actions, os.fsencode(cwd))
            libc.close_from(actions, 3)  # as Popen's close_fds: nothing the engine inherited
            error = libc.spawn(
                ctypes.byref(self._pid), args[0], actions, self._attributes, arguments,
                self._environment,
            )  # fmt: skip
        finally:
            libc.actions_destroy(actions)
        if error:
            raise OSError(error, os.strerror(error), argv[0])
        return _Spawned(self._pid.value)


class Launcher:
    """Starts processes in their own session, in a given working directory, with stdout and
    stderr to a file. One per slot thread: it is not thread-safe.

    Tasks get the environment the engine started with, plus ``marks`` (the same for every
    task), plus ``TASK_VARIABLE`` when ``start`` is given a task: never one inherited from an
    engine that runs this one as a task."""

    def __init__(self, marks: Mapping[str, str] | None = None) -> None:
        # os.environ converts every variable on every start: copied once
        self._environment = dict(os.environ)  # noqa: TID251 -- handed on to tasks, not read
        self._environment.pop(TASK_VARIABLE, None)
        self._environment.update(marks or {})
        self._spawner = (
            _LibcSpawner(_LIBC, self._environment) if _LIBC and libc_spawn_available() else None
        )

    @property
    def spawns(self) -> bool:
        return self._spawner is not None

    def start(
        self, argv: tuple[str, ...], cwd: str, output: int, stdin: int, task: str = ""
    ) -> Child:
        if any("\0" in a for a in (*argv, task)):  # C would cut the command short there
            raise OSError(errno.EINVAL, "the command contains a NUL character")
        if self._spawner is not None:
            own = os.fsencode(f"{TASK_VARIABLE}={task}") if task else None
            return self._spawner.start(argv, cwd, output, stdin, own)
        return subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=stdin,
            cwd=cwd,
            env={**self._environment, TASK_VARIABLE: task} if task else self._environment,
            start_new_session=True,
        )
