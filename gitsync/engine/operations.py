"""The table from each of the 22 operations (``protocol.OPERATIONS``) to the method that
serves it, built in one place: each is served by the flow operations (``Service``) or the
run operations (``Runs``), whichever has a method of the operation's name, never both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitsync.engine.access import Caller
from gitsync.engine.answers import ServiceError
from gitsync.engine.runs import Runs
from gitsync.engine.service import Service
from gitsync.protocol import BY_NAME, OPERATIONS, Code

Handler = Callable[..., Any]


def table(service: Service, runs: Runs | None) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for op in OPERATIONS:
        owners = [o for o in (service, runs) if o is not None and hasattr(o, op.name)]
        if len(owners) > 1:
            raise TypeError(f"{op.name} is served twice")
        if owners:
            handlers[op.name] = getattr(owners[0], op.name)
        elif not hasattr(Runs, op.name):
            raise TypeError(f"nothing serves {op.name}")
    return handlers


class Operations:
    """Calls the method that serves an operation; with no runs (an engine that runs
    nothing), the run operations answer that they cannot."""

    def __init__(self, service: Service, runs: Runs | None) -> None:
        self.access = service.access
        self._handlers = table(service, runs)

    def call(self, operation: str, caller: Caller | None, params: dict[str, Any]) -> Any:
        handler = self._handlers.get(operation)
        if handler is None:
            title = BY_NAME[operation].title
            raise ServiceError(Code.INTERNAL, f"{title}: this engine runs no workflows")
        return handler(params) if caller is None else handler(caller, params)
