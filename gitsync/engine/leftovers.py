"""What a killed engine's tasks left running, found and killed when an engine restarts.

A task's attempt runs in a session of its own, so its leader's pid is also the id of its
process group and session. With the pid the runner records the leader's *birth*: the boot id
and the window, in clock ticks since boot, in which it was started (``birth``; the ticks
``/proc/<pid>/stat`` field 22 counts in). pid and birth name one process for good: a pid
alone is recycled once the process is gone (pid_max is 32768 on many systems).

On restart, for each task the engine marks ended (``kill``):

1. The leader is there (alive, or a zombie nobody reaps) and was born in the window: the
   group is the task's, since a group lives no longer than its id's process or members.
   Every live member is killed (SIGKILL to the group).
2. The leader is there but was born outside the window, or on another boot: the pid was
   recycled and names some other process. Nothing is killed.
3. The leader is gone. Its group may live on (``sleep 300 & exit``), but the id may also
   have been freed and reused for another session leader whose own members are left. So a
   member must prove it is the task's: in group *and* session ``pid``, started no earlier than
   the leader, and carrying the task's marks in its environment (``spawn.ENGINE_VARIABLE``
   naming this data dir and ``spawn.TASK_VARIABLE`` naming the task instance). Once one
   member proves it, the group is the task's (its id cannot be reused while that member
   lives) and the whole group is killed.

Out of reach, as for time-outs and cancel: processes that left the group (``setsid``,
``setpgid``). A member that cleared its environment is killed with its group in case 1 and in
case 3 when another member proves the group; alone in case 3 it is left. Tasks whose birth
was never stored (started by an older gitsync, or in the journal's last moments before the
crash) are left, as a pid alone proves nothing.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass

from gitsync.engine.spawn import ENGINE_VARIABLE, TASK_VARIABLE

log = logging.getLogger("gitsync.engine")

SETTLE_LIMIT = 2.0  # seconds to wait for killed processes to be gone
_POLL = 0.02
_GONE = frozenset("ZXx")  # zombie, dead: nothing left to kill


@functools.cache
def _boot() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


@functools.cache
def _tick() -> int:
    """Nanoseconds per clock tick of /proc/<pid>/stat."""
    return 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def clock() -> int:
    """Now on the clock process start times are kept in (boot time, ns); 0 without one."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime_ns(boottime) if boottime is not None else 0


def birth(before: int) -> str:
    """The record of a process started between ``before`` (``clock()``) and now: the boot
    and the window in ticks. Cheaper than reading /proc/<pid>/stat after each start."""
    if not before or not _boot():
        return ""
    return f"{_boot()} {before // _tick()} {clock() // _tick()}"


@dataclass(frozen=True, slots=True)
class _Proc:
    pid: int
    state: str
    group: int
    session: int
    start: int  # clock ticks since boot

    @property
    def live(self) -> bool:
        return self.state not in _GONE


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _proc(pid: int) -> _Proc | None:
    data = _read(f"/proc/{pid}/stat")
    if data is None:
        return None
    try:  # the command name, in parentheses, may hold spaces and parentheses itself
        fields = data[data.rindex(b")") + 2 :].split()
        return _Proc(pid, fields[0].decode(), int(fields[2]), int(fields[3]), int(fields[19]))
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def _processes() -> list[_Proc]:
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    return [p for p in map(_proc, pids) if p is not None]


def _marked(pid: int, marks: frozenset[bytes]) -> bool:
    environment = _read(f"/proc/{pid}/environ")
    return environment is not None and marks <= set(environment.split(b"\0"))


def _window(born: str) -> tuple[int, int] | None:
    """The birth window, if ``born`` is a birth of this boot."""
    parts = born.split()
    if len(parts) != 3 or not _boot() or parts[0] != _boot():
        return None
    try:
        low, high = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    return (low, high) if 0 <= low <= high else None


@dataclass(frozen=True)
class Task:
    """A task the engine marks ended, as its store row has it."""

    id: str  # the task instance id
    pid: int  # its last attempt's leader
    born: str  # that leader's birth


def _members(task: Task, processes: list[_Proc], engine_dir: str) -> list[_Proc]:
    """The task's live processes: empty unless its group is proven to be the task's."""
    window = _window(task.born)
    own = {os.getpid(), os.getpgrp(), os.getsid(0)}
    if window is None or task.pid <= 1 or task.pid in own:
        return []
    low, high = window
    group = [p for p in processes if p.group == task.pid]
    leader = next((p for p in processes if p.pid == task.pid), None)
    if leader is not None:  # cases 1 and 2
        return [p for p in group if p.live] if low <= leader.start <= high else []
    marks = frozenset(
        os.fsencode(f"{name}={value}")
        for name, value in ((ENGINE_VARIABLE, engine_dir), (TASK_VARIABLE, task.id))
    )
    proven = any(
        p.live and p.session == task.pid and p.start >= low and _marked(p.pid, marks) for p in group
    )
    return [p for p in group if p.live] if proven else []


def kill(tasks: Iterable[Task], engine_dir: str, limit: float = SETTLE_LIMIT) -> dict[str, int]:
    """SIGKILL what each task left running, wait (up to ``limit`` s) until it is gone, and
    log it; the number of processes killed per task id, for those that had any."""
    tasks = [t for t in tasks if t.born]
    if not tasks:
        return {}
    processes = _processes()
    killed: dict[str, int] = {}
    victims: list[_Proc] = []
    for task in tasks:
        members = _members(task, processes, engine_dir)
        if not members:
            continue
        try:
            os.killpg(task.pid, signal.SIGKILL)
        except ProcessLookupError:  # gone since the scan
            continue
        except PermissionError:
            log.warning("cannot kill the leftovers of task %s: %s", task.id, _pids(members))
            continue
        killed[task.id] = len(members)
        victims += members
        log.warning(
            "killed %d leftover process(es) of task %s on restart (process group %d: %s)",
            len(members), task.id, task.pid, _pids(members),
        )  # fmt: skip
    _settle(victims, limit)
    return killed


def note(killed: int) -> str:
    """The task log's line about what ``kill`` killed of it."""
    if not killed:
        return ""
    processes = f"{killed} leftover process{'es' * (killed != 1)}"
    return f"[gitsync] killed {processes} of this task on restart\n"


def _settle(victims: list[_Proc], limit: float) -> None:
    """Wait until the killed processes are gone; the kernel lets no member of a group fork
    past a SIGKILL to the group, so checking the ones seen is enough."""
    deadline = time.monotonic() + limit
    while True:
        left = [p for p in victims if (now := _proc(p.pid)) and now.start == p.start and now.live]
        if not left:
            return
        if time.monotonic() >= deadline:
            log.warning("still there after SIGKILL: %s", _pids(left))
            return
        time.sleep(_POLL)


def _pids(processes: list[_Proc]) -> str:
    return " ".join(str(p.pid) for p in processes)
