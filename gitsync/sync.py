"""The main job's steps, each a function the CLI calls: connect, desired tree, plan, apply."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gitsync import plan as planner
from gitsync import protocol, remote
from gitsync.client import Client, Credentials
from gitsync.config import Settings, Target
from gitsync.errors import GitsyncError, InvalidFilesError, RemoteError
from gitsync.model import Tree, Workflow
from gitsync.validate import validate_paths


@contextmanager
def connect(settings: Settings, target: Target) -> Iterator[Client]:
    """A client for ``target``; the embedded engine is started for as long as it is used."""
    if target.embedded:
        from gitsync.engine.server import EngineOptions, RunningEngine

        with (
            RunningEngine(EngineOptions(settings.engine_dir)) as engine,
            Client(engine.url, target.org_id, target.user_id) as client,
        ):
            yield client
        return
    pair = settings.credentials(target)
    credentials = Credentials(*pair) if pair else None
    with Client(
        target.url, target.org_id, target.user_id, credentials, timeout=target.timeout
    ) as client:
        yield client


def desired_tree(settings: Settings) -> Tree:
    """The validated files, or InvalidFilesError carrying every problem (nothing is sent)."""
    if not settings.flows.is_dir():
        raise InvalidFilesError(
            f"no flows folder at {settings.flows} (set 'flows' in "
            "gitsync.yaml, or run `gitsync init`)",
            [],
        )
    result = validate_paths(
        [settings.flows], base=settings.flows, cache=settings.validation_cache()
    )
    if not result.ok:
        raise InvalidFilesError(
            f"{len(result.problems)} problems in the workflow files; nothing was sent",
            result.problems,
        )
    return result.tree()


@dataclass(frozen=True)
class Planned:
    plan: planner.Plan
    state: planner.RemoteState


def make_plan(
    client: Client,
    target: Target,
    tree: Tree,
    prune: bool = False,
    allow_mass_delete: bool = False,
    progress: remote.Progress = remote._noop,
) -> Planned:
    state = remote.read_state(client, target.root, progress)
    return Planned(planner.compute(tree, state, prune, allow_mass_delete), state)


@contextmanager
def locked(
    client: Client,
    target: Target,
    owner: str,
    force_unlock: bool = False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Iterator[None]:
    """Hold the target's apply lock for the duration; released even on failure."""
    if force_unlock:
        remote.force_unlock(client, target.root)
    lock_id = remote.acquire_lock(client, target.root, owner, now())
    try:
        yield
    finally:
        remote.release_lock(client, lock_id)


# -- running one workflow ---------------------------------------------------------------------

STATUS = protocol.STATUS_NAMES
DONE = {"FAIL", "SUCCESS", "INTERNAL_ERROR", "TIMEOUT", "CANCEL", "SKIP"}


@dataclass(frozen=True)
class TaskEvent:
    task: str
    status: str
    seconds: float | None = None  # set when the task has finished
    within: float | None = None  # it started and ended between two polls: under this long


@dataclass(frozen=True)
class RunEnd:
    instance_id: str
    status: str
    logs: tuple[tuple[str, str], ...]  # (task, log) of every task that failed


def apply_one(
    client: Client, target: Target, workflow: Workflow, owner: str, force_unlock: bool = False
) -> remote.ApplyResult:
    """Make the target hold exactly this one workflow as its file says; nothing else changes."""
    with locked(client, target, owner, force_unlock):
        state = remote.read_state(client, target.root)
        plan = planner.compute(Tree.of([workflow]), state)
        return remote.apply(client, plan, state)


def trigger(
    client: Client, name: str, params: dict[str, str], from_task: str | None, now_ms: int
) -> str:
    flow_id = client.find_flow_id(name)
    if flow_id is None:
        raise GitsyncError(f"workflow '{name}' is not on the target")
    if from_task is not None:
        graph = client.load_flow_for_edit(flow_id)
        from gitsync import codec

        nodes = codec.graph_from_detail(graph).tasks
        if from_task not in nodes:
            raise GitsyncError(
                f"workflow '{name}' has no task '{from_task}' (it has: {', '.join(nodes)})"
            )
        return client.trigger_flow_from_task(flow_id, int(nodes[from_task]["taskId"]), now_ms)
    if params:
        return client.update_and_trigger_flow(
            flow_id, now_ms, [{"key": k, "value": v} for k, v in params.items()]
        )
    return client.trigger_flow(flow_id, now_ms)


def follow(
    client: Client,
    instance_id: str,
    interval: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[TaskEvent | RunEnd]:
    """Poll an instance until it ends: an event for each task state change (with the
    task's duration as seen from here when it ends), then the end with failed tasks' logs."""
    seen: dict[str, str] = {}
    started: dict[str, float] = {}
    while True:
        instance = client.get_flow_instance(instance_id)
        nodes = json.loads(instance.get("graph") or "{}").get("tasks", [])
        for node in nodes:
            name = str(node.get("taskName") or node.get("task_name"))
            status = str(node.get("status", "INIT"))
            if seen.get(name) == status:
                continue
            seen[name] = status
            if status == "RUNNING":
                started.setdefault(name, clock())
            finished = status in DONE
            seconds = clock() - started[name] if finished and name in started else None
            within = interval if finished and seconds is None and status != "SKIP" else None
            yield TaskEvent(name, status, seconds, within)
        status = STATUS.get(int(instance["status"]), str(instance["status"]))
        if status in DONE:
            logs = []
            for node in nodes:
                if node.get("status") in ("FAIL", "TIMEOUT", "INTERNAL_ERROR"):
                    logs.append(
                        (
                            str(node["taskName"]),
                            client.get_task_instance_log(str(node["taskInstId"])),
                        )
                    )
            yield RunEnd(instance_id, status, tuple(logs))
            return
        sleep(interval)


def instances_of(client: Client, name: str, now_ms: int) -> list[dict[str, Any]]:
    """Every instance of the workflow ``name``, newest first."""
    found: list[dict[str, Any]] = []
    for flow_type in (0, 1, 2):
        page = 1
        while True:
            data = client.list_flow_instances(
                {
                    "type": flow_type,
                    "expression": name,
                    "owner": "",
                    "fromTriggerTime": 0,
                    "toTriggerTime": now_ms + 366 * 86_400_000,
                    "status": ",".join(str(s) for s in STATUS),
                    "pagination": {
                        "pageNo": page,
                        "pageSize": 50,
                        "sorters": [{"field": "trigger_time", "order": "DESC"}],
                    },
                }
            )
            batch = [i for i in data.get("flowInsts", []) if i.get("flowName") == name]
            found.extend(batch)
            if len(data.get("flowInsts", [])) < 50:
                break
            page += 1
    return sorted(found, key=lambda i: (i.get("triggerTime", ""), i["instanceId"]), reverse=True)


def logs_of(
    client: Client, instance_id: str, task: str | None = None
) -> list[tuple[str, str, str]]:
    """(task, status, log) for each task of the instance that has a log, or the one named."""
    instance = client.get_flow_instance(instance_id)
    nodes = json.loads(instance.get("graph") or "{}").get("tasks", [])
    names = [str(n.get("taskName")) for n in nodes]
    if task is not None and task not in names:
        raise GitsyncError(
            f"instance {instance_id} has no task '{task}' (it has: {', '.join(names)})"
        )
    out = []
    for node in nodes:
        if task is not None and node.get("taskName") != task:
            continue
        try:
            text = client.get_task_instance_log(str(node["taskInstId"]))
        except RemoteError:
            if task is not None:
                raise
            continue  # a task that never started has no log
        out.append((str(node["taskName"]), str(node.get("status", "")), text))
    return out
