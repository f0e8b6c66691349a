"""One engine per data folder, and how the others find it.

An engine holds ``engine.lock`` exclusively (``flock``) for as long as it runs, so the kernel
says whether one is live: the lock dies with its process, even after ``kill -9``. Once it
listens, it writes ``engine.json`` (URL, pid, a per-start token) beside it, and removes it on a
clean stop; a file left by a killed engine is stale, and the lock being free says so.

Commands that use an engine they did not start hold ``engine.users`` shared for as long as
they use it; the engine a command started takes it exclusively before it stops, so it waits
for them (``Claim.wait_for_users``), and a user that arrives as it stops sees the address gone
(or another token) and starts over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from gitsync.errors import ConfigError, GitsyncError

LOCK_FILE = "engine.lock"
ADDRESS_FILE = "engine.json"
USERS_FILE = "engine.users"
log = logging.getLogger("gitsync.engine.address")
FIND_LIMIT = 30.0  # seconds an engine may take between its lock and its address (recovery)


@dataclass(frozen=True)
class Address:
    """Where the live engine of a data folder answers, and who it is."""

    url: str
    pid: int
    token: str  # new at every start: a stale or replaced file never passes for this one
    kind: str  # "serve" (`gitsync serve`) or "embedded" (inside a command)
    auth: bool = False  # gateway authentication on: unsigned requests are refused

    def describe(self) -> str:
        who = "gitsync serve" if self.kind == "serve" else "a gitsync command's embedded engine"
        return f"{self.url} ({who}, pid {self.pid})"


class EngineBusy(GitsyncError):
    """Another live engine holds the data folder."""

    def __init__(self, data_dir: Path, address: Address | None) -> None:
        where = address.describe() if address else "an engine that has not said where yet"
        super().__init__(f"the data folder {data_dir} is already served: {where}")
        self.address = address


def new_token() -> str:
    return secrets.token_hex(8)


def read(data_dir: Path) -> Address | None:
    """The address file as it is (maybe stale), or None when absent or unreadable."""
    try:
        data = json.loads((data_dir / ADDRESS_FILE).read_text("utf-8"))
        return Address(
            str(data["url"]),
            int(data["pid"]),
            str(data["token"]),
            str(data["kind"]),
            bool(data.get("auth", False)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class CannotWrite(ConfigError):
    """The data folder (or its lock) cannot be written by this user."""

    def __init__(self, data_dir: Path, reason: str) -> None:
        super().__init__(f"cannot write {data_dir}: {reason} (the engine keeps its data there)")


def _open(path: Path) -> int:
    """The lock file for locking: read-only when this user may not write it (a live engine's
    lock can still be tested that way), CannotWrite when it cannot be had at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        reason = e.strerror or str(e)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise CannotWrite(path.parent, reason) from None


def _read_only(fd: int) -> bool:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY


def _try(fd: int, how: int) -> bool:
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Claim:
    """The data folder's exclusive lock: this process's engine is the only one on it."""

    def __init__(self, data_dir: Path, fd: int) -> None:
        self.data_dir = data_dir
        self._fd: int | None = fd
        self._users: int | None = None
        self.address: Address | None = None
        with contextlib.suppress(FileNotFoundError):
            (data_dir / ADDRESS_FILE).unlink()  # a killed engine's: the lock was free

    def publish(self, url: str, kind: str, auth: bool = False, token: str = "") -> Address:
        """Say where this engine answers (written whole: a reader never sees half); ``token``
        is the one the engine already answers with (a new one when not given)."""
        self.address = Address(url, os.getpid(), token or new_token(), kind, auth)
        part = self.data_dir / f".{ADDRESS_FILE}.{os.getpid()}"
        part.write_text(json.dumps(asdict(self.address)) + "\n", "utf-8")
        os.replace(part, self.data_dir / ADDRESS_FILE)
        return self.address

    def wait_for_users(
        self, waiting: Callable[[], None], interrupted: Callable[[], None] | None = None
    ) -> None:
        """Return once no other command uses this engine, and let none start to: call
        ``waiting`` first if some do. The address is withdrawn then. With ``interrupted``,
        one Ctrl-C (or SIGTERM) while waiting does not stop the wait (stopping the engine would
        fail the others' runs): it is called, the wait goes on, and the interrupt is raised
        once the others are done (entry.py lets a third signal end the process at once)."""
        self._users = fd = _open(self.data_dir / USERS_FILE)
        stopped: KeyboardInterrupt | None = None
        if not _try(fd, fcntl.LOCK_EX):
            waiting()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    break
                except KeyboardInterrupt as e:
                    if stopped is not None or interrupted is None:
                        raise
                    stopped = e
                    interrupted()
        self.withdraw()
        if stopped is not None:
            raise stopped

    def withdraw(self) -> None:
        """Remove the address file (if it is still ours): new commands no longer come."""
        if self.address is not None and read(self.data_dir) == self.address:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / ADDRESS_FILE).unlink()
        self.address = None

    def release(self) -> None:
        self.withdraw()
        for fd in (self._users, self._fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._users = None


class Use:
    """A command's use of an engine it did not start: the engine waits for it to end."""

    def __init__(self, data_dir: Path, address: Address, fd: int | None) -> None:
        self.data_dir = data_dir
        self.address = address
        self._fd: int | None = fd

    def still_served(self) -> bool:
        """Whether the engine is still there (its lock held, its address the same)."""
        probe = _open(self.data_dir / LOCK_FILE)
        try:
            free = _try(probe, fcntl.LOCK_EX)
        finally:
            os.close(probe)
        return not free and read(self.data_dir) == self.address

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim(data_dir: Path) -> Claim:
    """This process's claim on ``data_dir``, or EngineBusy when a live engine holds it."""
    fd = _open(data_dir / LOCK_FILE)
    if _try(fd, fcntl.LOCK_EX):
        if _read_only(fd) or not os.access(data_dir, os.W_OK):
            os.close(fd)  # no live engine to use, and none can start here
            raise CannotWrite(data_dir, "permission denied")
        return Claim(data_dir, fd)
    os.close(fd)
    raise EngineBusy(data_dir, read(data_dir))


def claim_or_use(
    data_dir: Path,
    limit: float = FIND_LIMIT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Claim | Use:
    """The folder's claim when no engine is live (the caller starts one), else a use of the
    live one. Of two commands racing here, one claims and the other uses its engine."""
    deadline = clock() + limit
    said = False
    while True:
        try:
            return claim(data_dir)
        except EngineBusy as busy:
            found = busy.address
        if found is not None:
            used = _use(data_dir, found)
            if used is not None:
                return used
        if not said:
            log.debug("waiting for the engine starting on %s to say where it answers", data_dir)
            said = True
        if clock() > deadline:
            raise EngineBusy(data_dir, None)
        sleep(0.02)  # it is starting (or stopping): its address comes (or goes) soon


def _use(data_dir: Path, found: Address) -> Use | None:
    """Hold the users' lock, then check the address again: an engine stopping meanwhile
    (it takes that lock exclusively first, then withdraws its address) is not used."""
    try:
        fd: int | None = _open(data_dir / USERS_FILE)
    except CannotWrite:
        fd = None  # a folder this user only reads: use the engine without holding it
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_SH)  # brief: an engine holds it exclusively only to stop
    if read(data_dir) == found:
        return Use(data_dir, found, fd)
    if fd is not None:
        os.close(fd)
    return None
