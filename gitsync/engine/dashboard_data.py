"""What the dashboard's pages show, read from the store: the workflow tree, a workflow with
its runs, a run with its tasks, a task's log. Plain data; the templates turn it into HTML.

The dashboard is the engine's own window, not an API caller: it sees every organization.
Flow, instance and task instance ids are unique across organizations, so a page needs only
its id.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitsync.engine.runner import Runner
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow
from gitsync.statuses import Status

LOG_LIMIT = 2**20  # the tail shown, as Get Task Instance Log's default
LIVE = frozenset(int(s) for s in Status if s.live)  # codes; an unknown stored code is not live


@dataclass
class FlowItem:
    id: int
    name: str
    status: str  # of its latest run; "" when it never ran


@dataclass
class DirItem:
    id: str
    name: str
    dirs: list[DirItem] = field(default_factory=list)
    flows: list[FlowItem] = field(default_factory=list)


@dataclass(frozen=True)
class RunItem:
    id: str
    flow_id: int
    flow_name: str
    status: str
    live: bool
    trigger_time: str
    start_time: str
    end_time: str
    duration: str


@dataclass(frozen=True)
class TaskItem:
    id: str
    name: str
    status: str
    attempts: int
    start_time: str
    end_time: str
    duration: str
    has_log: bool


def css(status: str) -> str:
    """The CSS class of a status name: ``st-success``; ``st-none`` for no run."""
    return f"st-{status.lower() or 'none'}"


def _moment(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def duration(start: str, end: str, now: dt.datetime) -> str:
    """``1 h 02 m``, ``3 m 05 s``, ``7 s``; to now while it has no end; "" before it starts."""
    begun = _moment(start)
    if begun is None:
        return ""
    seconds = max(0, int(((_moment(end) or now) - begun).total_seconds()))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} m"
    if seconds >= 60:
        return f"{seconds // 60} m {seconds % 60:02d} s"
    return f"{seconds} s"


def run_item(row: dict[str, Any], now: dt.datetime) -> RunItem:
    status = Status.named(row["status"])
    live = row["status"] in LIVE
    return RunItem(
        id=row["id"],
        flow_id=row["flow_id"],
        flow_name=row["flow_name"],
        status=status,
        live=live,
        trigger_time=row["trigger_time"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        duration=duration(row["start_time"], row["end_time"] if not live else "", now),
    )


class Pages:
    """Reads for the dashboard's pages."""

    def __init__(self, store: Store, runner: Runner) -> None:
        self.store = store
        self.runner = runner

    def orgs(self) -> list[str]:
        return sorted(str(o["id"]) for o in self.store.orgs())

    def tree(self, org_id: str) -> DirItem | None:
        """The org's directories and workflows from its root, names sorted; each workflow
        with the status of its latest run."""
        rows = self.store.directories(org_id)
        root = next((r for r in rows if r["parent_id"] is None), None)
        if root is None:
            return None
        items = {str(r["id"]): DirItem(str(r["id"]), str(r["name"])) for r in rows}
        for r in rows:
            parent = items.get(str(r["parent_id"]))
            if parent is not None and r["parent_id"] is not None and r["id"] != root["id"]:
                parent.dirs.append(items[str(r["id"])])
        latest: dict[int, int] = {}
        for run in self.store.instances(org_id):  # oldest first: the last one stays
            latest[run["flow_id"]] = run["status"]
        for flow in self.store.flows(org_id):
            status = Status.named(latest[flow.id]) if flow.id in latest else ""
            holder = items.get(flow.dir_id) or items[str(root["id"])]
            holder.flows.append(FlowItem(flow.id, flow.name, status))
        for item in items.values():
            item.dirs.sort(key=lambda d: d.name)
            item.flows.sort(key=lambda f: f.name)
        return items[str(root["id"])]

    def flow(self, flow_id: int) -> FlowRow | None:
        if not 0 <= flow_id < 2**63:  # what SQLite's INTEGER holds (a URL may say more)
            return None
        for org in self.orgs():
            row = self.store.flow(org, flow_id)
            if row is not None:
                return row
        return None

    def runs_of(self, row: FlowRow, now: dt.datetime) -> list[RunItem]:
        """The flow's runs, newest first."""
        rows = [r for r in self.store.instances(row.org_id) if r["flow_id"] == row.id]
        return [run_item(r, now) for r in reversed(rows)]

    def task_states(self, instance_id: str) -> dict[str, str]:
        return {n: Status.named(s) for n, s in self.store.task_statuses(instance_id).items()}

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        for org in self.orgs():
            row = self.store.instance(org, instance_id)
            if row is not None:
                return row
        return None

    def tasks_of(self, instance_id: str, now: dt.datetime) -> list[TaskItem]:
        items = []
        for t in self.store.task_instances(instance_id):
            live = t["status"] in LIVE
            items.append(
                TaskItem(
                    id=t["id"],
                    name=t["task_name"],
                    status=Status.named(t["status"]),
                    attempts=t["run_num"],
                    start_time=t["start_time"],
                    end_time=t["end_time"],
                    duration=duration(t["start_time"], "" if live else t["end_time"], now),
                    has_log=self.log_path(instance_id, t["id"]).exists(),
                )
            )
        return items

    def task(self, task_instance_id: str) -> dict[str, Any] | None:
        return self.store.task_instance(task_instance_id)

    def log_path(self, instance_id: str, task_instance_id: str) -> Path:
        return self.runner.log_path(instance_id, task_instance_id)

    def log(self, instance_id: str, task_instance_id: str) -> tuple[str, bool]:
        """The log's text (its last ``LOG_LIMIT`` characters) and whether it was cut."""
        try:
            text = self.log_path(instance_id, task_instance_id).read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return "", False
        return text[-LOG_LIMIT:], len(text) > LOG_LIMIT


def parameters(row: dict[str, Any]) -> list[tuple[str, str]]:
    """An instance's parameters as (key, value) pairs, whatever their stored shape."""
    try:
        items = json.loads(row.get("parameters") or "[]")
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [(str(i.get("key", "")), str(i.get("value", ""))) for i in items if isinstance(i, dict)]
