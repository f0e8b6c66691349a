"""The main job's steps, each a function the CLI calls: connect, desired tree, plan, apply."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gitsync import plan as planner
from gitsync import protocol, remote, report
from gitsync.client import Client, Credentials
from gitsync.config import Settings, Target
from gitsync.errors import GitsyncError, InvalidFilesError, RemoteError
from gitsync.forked import ChildFailed, Forked
from gitsync.model import Tree, Workflow
from gitsync.validate import ValidationResult, validate_paths

log = logging.getLogger("gitsync.sync")


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
    found = settings.credentials(target)
    credentials = Credentials(*found) if found else None
    with Client(
        target.url, target.org_id, target.user_id, credentials, timeout=target.timeout
    ) as client:
        yield client


def desired_tree(settings: Settings) -> Tree:
    """The validated files, or InvalidFilesError carrying every problem (nothing is sent)."""
    result = _validate_files(settings)
    _stop_if_invalid(result, "nothing was sent")
    return result.tree()


def _require_flows_folder(settings: Settings) -> None:
    if not settings.flows.is_dir():
        raise InvalidFilesError(
            f"no flows folder at {settings.flows} (set 'flows' in "
            "gitsync.yaml, or run `gitsync init`)",
            [],
        )


def _validate_files(settings: Settings) -> ValidationResult:
    _require_flows_folder(settings)
    return validate_paths([settings.flows], base=settings.flows, cache=settings.validation_cache())


def _stop_if_invalid(result: ValidationResult, after: str) -> None:
    if not result.ok:
        raise InvalidFilesError(
            f"{report.plural(len(result.problems), 'problem')} in the workflow files; {after}",
            result.problems,
        )


_NO_PLAN = "no plan was made"


class FilesBeingChecked:
    """The files, validated in a forked child (forked.py) while plan reads the service: the
    two then use both cores instead of taking turns at one GIL. Where forking is not possible
    the files are validated here, at once, as ``desired_tree`` does.

    Only plan does this: reading is all it ever sends, and it stops reading as soon as the
    files turn out invalid. Apply validates before it sends anything, its lock included.

    The files' problems come first: when anything inside the ``with`` block fails (connecting,
    credentials, a read) and the files are invalid, their problems are raised instead.
    """

    def __init__(self, settings: Settings) -> None:
        _require_flows_folder(settings)
        self._settings = settings
        self._child: Forked[ValidationResult] | None = None
        self._result: ValidationResult | None = None
        if Forked.possible():
            try:
                self._child = Forked(lambda: _validate_files(settings))
            except OSError as e:
                log.debug("files checked here: no process could be forked (%s)", e)
        if self._child is None:
            self._result = _validate_files(settings)
        else:
            log.debug("files checked in a forked child while the service is read")

    @property
    def forked(self) -> bool:
        """Whether a forked child checks the files (else they were checked at once, here)."""
        return self._child is not None

    def stop_if_invalid(self) -> None:
        """InvalidFilesError if the files are known to be invalid by now; never waits."""
        if self._result is not None or (self._child is not None and self._child.ready()):
            _stop_if_invalid(self._outcome(), _NO_PLAN)

    def tree(self) -> Tree:
        """The desired tree (waits for the child), or InvalidFilesError."""
        result = self._outcome()
        _stop_if_invalid(result, _NO_PLAN)
        return result.tree()

    def _outcome(self) -> ValidationResult:
        if self._result is None:
            assert self._child is not None
            try:
                self._result = self._child.result()
            except ChildFailed as e:
                log.debug("the files' child failed, so they are checked here: %s", e)
                self._result = _validate_files(self._settings)  # the real outcome
            finally:
                self._child.close()
        return self._result

    def close(self) -> None:
        if self._child is not None:
            self._child.close()

    def __enter__(self) -> FilesBeingChecked:
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        try:
            if isinstance(error, Exception) and not isinstance(error, InvalidFilesError):
                _stop_if_invalid(self._outcome(), _NO_PLAN)  # replaces the error, if invalid
        finally:
            self.close()


@dataclass(frozen=True)
class Planned:
    plan: planner.Plan
    state: planner.RemoteState


def make_plan(
    client: Client,
    target: Target,
    desired: Tree | FilesBeingChecked,
    prune: bool = False,
    allow_mass_delete: bool = False,
    progress: remote.Progress = remote._noop,
) -> Planned:
    """Read the target and compare. Files still being checked stop the reading as soon as
    they are known to be invalid, and the comparison waits for them."""
    if isinstance(desired, Tree):
        state = remote.read_state(client, target.root, progress)
        return Planned(planner.compute(desired, state, prune, allow_mass_delete), state)

    def watch(label: str, done: int, total: int) -> None:
        desired.stop_if_invalid()
        progress(label, done, total)

    desired.stop_if_invalid()
    state = remote.read_state(client, target.root, watch)
    return Planned(planner.compute(desired.tree(), state, prune, allow_mass_delete), state)


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
