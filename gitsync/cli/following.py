"""`gitsync run` past its checks: apply (waiting briefly for another apply's lock), trigger,
print each task's progress, and on Ctrl-C or SIGTERM say what becomes of the run and how to
follow or cancel it."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

from gitsync import config, sync
from gitsync.applying import ApplyResult
from gitsync.cli.app import echo
from gitsync.client import Client
from gitsync.embedded import LocalEngine
from gitsync.errors import GitsyncError, LockError
from gitsync.model import Workflow
from gitsync.running import RunEnd, follow, trigger

LOCK_WAIT = 30.0  # seconds: another `gitsync run` applies its one file in well under that


def apply_waiting(
    client: Client,
    target: config.Target,
    workflow: Workflow,
    force_unlock: bool,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ApplyResult:
    """``sync.apply_one``; while another apply holds the target's lock (a second `gitsync
    run` started beside this one), try again for up to LOCK_WAIT seconds, then fail as
    apply does."""
    deadline = clock() + LOCK_WAIT
    said = False
    while True:
        try:
            return sync.apply_one(client, target, workflow, config.who(), force_unlock)
        except LockError:
            if clock() > deadline:
                raise
            if not said:
                echo(
                    f"another apply holds the target's lock; waiting up to {LOCK_WAIT:.0f} s",
                    err=True,
                )
                said = True
            sleep(0.25)


_MARK = {
    "SUCCESS": "ok  ",
    "FAIL": "FAIL",
    "TIMEOUT": "TIME",
    "SKIP": "skip",
    "CANCEL": "stop",
    "INTERNAL_ERROR": "ERR ",
    "RUNNING": " .. ",
}


class Run:
    """One run of the workflow ``name`` (its files' name) on ``target``."""

    def __init__(
        self,
        client: Client,
        name: str,
        target: config.Target,
        target_name: str | None,
        engine: LocalEngine | None,
    ) -> None:
        self.client, self.name, self.target = client, name, target
        self.target_name = target_name  # --target as given: repeated in the hints
        self.engine = engine  # the embedded target's engine; None for a remote target
        self.instance_id = ""

    def trigger(self, overrides: dict[str, str], from_task: str | None) -> None:
        client = self.client
        remote = self.target.naming().remote(self.name)
        now = client.get_current_time()
        self.instance_id = trigger(client, remote, overrides, from_task, now)
        where = self.engine.where if self.engine else self.target.describe()
        echo(f"{self.name}: instance {self.instance_id} on {where}")

    def follow(self) -> RunEnd:
        """Print each task's state as it changes; the run's end."""
        for event in follow(self.client, self.instance_id):
            if isinstance(event, RunEnd):
                return event
            if event.status in ("INIT", "WAIT", "READY"):
                continue
            took = f"{event.seconds:6.2f}s" if event.seconds is not None else ""
            if event.within is not None:
                took = f"<{event.within:5.2f}s"
            echo(
                f"  {_MARK.get(event.status, event.status):<4} {event.task:<30} "
                f"{event.status:<8} {took}".rstrip()
            )
        raise GitsyncError(f"{self.instance_id}: the service stopped answering about it")

    def interrupted(self, cancel: bool) -> None:
        """Stopped by a signal: cancel the run when asked, else say what becomes of it."""
        instance = self.instance_id
        if cancel:
            try:
                self.client.cancel_flow_instance(instance)
            except GitsyncError as e:
                echo(f"could not cancel {instance}: {e}", err=True)
                self._hints()
                return
            echo(f"cancelled {instance}", err=True)
            return
        if self.engine is not None and self.engine.owned:
            echo(
                f"{instance} is cancelled when the engine embedded in this command stops, "
                "once other commands using it end (stopped at once instead, its unfinished "
                "tasks fail as after a crash). For runs that outlive a command, start "
                "`gitsync serve` in another shell: commands on this repository then use it.",
                err=True,
            )
            return
        self._hints()

    def _hints(self) -> None:
        instance = self.instance_id
        where = self.engine.where if self.engine else self.target.describe()
        flag = f" --target {shlex.quote(self.target_name)}" if self.target_name else ""
        echo(
            f"The run goes on: {instance} on {where}.\n"
            f"  follow it:  gitsync logs {instance}{flag}\n"
            f"              gitsync instances {shlex.quote(self.name)}{flag}\n"
            f"  cancel it:  gitsync cancel {instance}{flag}",
            err=True,
        )
