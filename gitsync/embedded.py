"""The embedded target's engine: the one already live on the data folder (`gitsync serve`, or
another command's), or one started for this command and stopped with it.

An engine this command started waits, before it stops, for the other commands using it
(``address.Claim.wait_for_users``), so a second command never breaks mid-way because the first
one ended. A command using another's engine that vanishes anyway (killed, or a `gitsync serve`
stopped) ends with an error saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gitsync.engine import address
from gitsync.errors import ConfigError, TransportError

log = logging.getLogger("gitsync.embedded")


@dataclass(frozen=True)
class LocalEngine:
    url: str
    owned: bool  # started by this command: it stops (and cancels its runs) when the command ends
    where: str  # for messages: the URL and who serves it


@contextmanager
def local_engine(data_dir: Path, extensions: bool = False) -> Iterator[LocalEngine]:
    """The live engine of ``data_dir`` for as long as the block runs (one started here has
    its extensions on when asked; one found is used as it was started)."""
    found = address.claim_or_use(data_dir)
    if isinstance(found, address.Use):
        with _used(found) as engine:
            yield engine
        return
    from gitsync.engine.server import EngineOptions, RunningEngine

    running = RunningEngine(EngineOptions(data_dir, extensions=extensions), claim=found)
    try:
        running.start()
    except BaseException:
        running.stop()
        raise
    try:
        yield LocalEngine(running.url, True, f"{running.url} (embedded in this command)")
    finally:
        try:
            found.wait_for_users(lambda: _waiting(data_dir), _still_waiting)
        finally:
            running.stop()


def _still_waiting() -> None:
    log.warning(
        "stopping now would fail the runs of the other gitsync commands using this engine: "
        "waiting for them to end (stop twice more to stop at once)"
    )


def _waiting(data_dir: Path) -> None:
    log.warning(
        "other gitsync commands are using the engine this command started (data in %s); "
        "it stops when they end",
        data_dir,
    )


def _verify(use: address.Use) -> None:
    """The engine answering at engine.json's address must be this folder's: it answers with
    the file's start token (engine/guard.py). Another program on a reused port is not."""
    import httpx

    from gitsync import protocol
    from gitsync.engine.guard import TOKEN_HEADER

    found = use.address
    try:
        answer = httpx.get(f"{found.url}{protocol.PREFIX}/time?action=getCurrentTime", timeout=10)
    except httpx.HTTPError as e:
        raise TransportError(f"no answer from {found.describe()} ({e})") from None
    if answer.headers.get(TOKEN_HEADER) != found.token:
        raise ConfigError(
            f"{use.data_dir / address.ADDRESS_FILE} names {found.url}, but what answers there "
            "is not the engine of that folder (its start token differs)"
        )


@contextmanager
def _used(use: address.Use) -> Iterator[LocalEngine]:
    found = use.address
    try:
        if found.auth:
            raise ConfigError(
                f"the engine serving {use.data_dir} at {found.describe()} requires gateway "
                "authentication; choose a target with its URL and credentials to use it"
            )
        _verify(use)
        yield LocalEngine(found.url, False, found.describe())
    except TransportError as e:
        if use.still_served():
            raise
        raise TransportError(
            f"the engine at {found.describe()} stopped while this command used it ({e})",
            operation=e.operation,
        ) from None
    finally:
        use.release()
