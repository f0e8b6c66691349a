"""`gitsync run` after the apply: trigger, print each task's progress, and on Ctrl-C or
SIGTERM say what becomes of the run and how to follow or cancel it."""

from __future__ import annotations

import shlex

from gitsync import config
from gitsync.cli.app import echo
from gitsync.client import Client
from gitsync.embedded import LocalEngine
from gitsync.errors import GitsyncError
from gitsync.running import RunEnd, follow, trigger

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
                f"{instance} is cancelled: the engine embedded in this command stops with it "
                "(once other commands using it end). For runs that outlive a command, start "
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
