"""The statuses of flow instances and task instances (SPEC §2.4): their wire codes and what
each one means, defined once for the engine, the client and the CLI."""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """The status of a flow instance or task instance (SPEC §2.4), and what each one means:
    the one definition every module uses."""

    FAIL = -1
    INIT = 0
    SUCCESS = 1
    RUNNING = 2
    SUSPEND = 3
    INTERNAL_ERROR = 4
    WAIT = 5
    READY = 6
    TIMEOUT = 7
    CANCEL = 8
    RERUN = 9
    SKIP = 10

    @property
    def finished(self) -> bool:
        """It will not change again by itself."""
        return self in _FINISHED

    @property
    def failed(self) -> bool:
        return self in (Status.FAIL, Status.TIMEOUT, Status.INTERNAL_ERROR)

    @property
    def live(self) -> bool:
        """Waiting or running: it may still start or run processes, and can be cancelled."""
        return self in _LIVE

    @classmethod
    def named(cls, code: int) -> str:
        """The status's name, or the code itself for one SPEC does not list."""
        try:
            return cls(code).name
        except ValueError:
            return str(code)


_FINISHED = frozenset(
    {Status.FAIL, Status.SUCCESS, Status.INTERNAL_ERROR, Status.TIMEOUT, Status.CANCEL, Status.SKIP}
)
_LIVE = frozenset({Status.INIT, Status.RUNNING, Status.WAIT, Status.READY, Status.RERUN})
LIVE_CODES = ",".join(str(int(s)) for s in sorted(_LIVE))  # for a query's IN (...)
