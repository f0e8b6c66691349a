"""The run-time operations: triggers, instances, task instances, logs, cancel (SPEC §3.13-3.20).

Instance ids are ``<flowId>-<suffix>`` (SPEC §1.8): API triggers use the trigger time to the
minute plus ``00`` seconds; if that id is taken, the next free second. Scheduled runs use the
trigger time truncated to the cycle (minute cycle: ``yyyyMMddHHmm``, others: ``yyyyMMddHH``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gitsync.codec import flow_struct
from gitsync.engine.access import Access, Caller
from gitsync.engine.answers import ServiceError, bad, paginate
from gitsync.engine.clock import java_date, stamp
from gitsync.engine.graphs import Graphs
from gitsync.engine.runner import Runner
from gitsync.engine.runstate import Instance
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow
from gitsync.errors import CodecError
from gitsync.model import Workflow
from gitsync.protocol import Code
from gitsync.statuses import Status

TRIGGER_FROM_TASK_REFUSED = (
    "Cannot create workflow instance. Please check if the workflow or "
    "task exist, and do not trigger the same workflow repeatedly in 1 "
    "minute."
)
NO_TASK = "This workflow has no task. You cannot trigger it."
TASK_TYPE_CODES = {"DATA_INTEGRATION": 7, "COMMAND": 3}  # SPEC §2.1: 3 SHELL; 7 as sampled


class Runs:
    def __init__(
        self,
        store: Store,
        access: Access,
        runner: Runner,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.access = access
        self.graphs = Graphs(store, access)
        self.runner = runner
        self.clock = clock

    # -- creating instances --------------------------------------------------------------------

    def _new_id(self, flow_id: int, trigger: dt.datetime, scheduled_cycle: str | None) -> str:
        if scheduled_cycle is not None:
            suffix = trigger.strftime("%Y%m%d%H%M" if scheduled_cycle == "mi" else "%Y%m%d%H")
            return f"{flow_id}-{suffix}"
        moment = trigger.replace(second=0, microsecond=0)
        while self.store.instance_exists(f"{flow_id}-{moment:%Y%m%d%H%M%S}"):
            moment += dt.timedelta(seconds=1)
        return f"{flow_id}-{moment:%Y%m%d%H%M%S}"

    def create(
        self,
        row: FlowRow,
        trigger_ms: int,
        parameters: dict[str, str] | None = None,
        start_task: str | None = None,
        scheduled: bool = False,
        owner: str = "",
    ) -> str:
        """Store a new instance with a snapshot of the flow and hand it to the runner."""
        wf = self.access.model(row)
        if not wf.tasks:
            raise ServiceError(Code.IN_USE, NO_TASK)
        trigger = dt.datetime.fromtimestamp(trigger_ms / 1000, dt.UTC)
        params = dict(wf.parameters)
        params.update(parameters or {})
        rows = self.store.tasks(row.id)
        task_ids = {t.name: t.id for t in rows}
        do_as = self.access.submitter(row)
        with self.store.transaction():
            instance_id = self._new_id(
                row.id, trigger, row.definition["cycle"] if scheduled else None
            )
            if self.store.instance_exists(instance_id):
                return instance_id  # this fire time already has its instance
            graph = self.graphs.of_instance(row, instance_id, rows)
            self.store.insert_instance(
                self._instance_row(
                    row, instance_id, trigger_ms, params, graph, owner, do_as, scheduled
                ),
                _task_instance_rows(instance_id, wf, task_ids),
            )
        run_set = _downstream(wf, start_task) if start_task is not None else None
        self.runner.submit(
            Instance(
                id=instance_id,
                flow_id=row.id,
                workflow=wf,
                task_ids=task_ids,
                parameters=params,
                trigger=trigger,
                trigger_ms=trigger_ms,
                do_as=do_as,
                run_set=run_set,
            )
        )
        self.runner.journal.flush()  # its WAIT (or RUNNING) is visible on return
        return instance_id

    def _instance_row(
        self,
        row: FlowRow,
        instance_id: str,
        trigger_ms: int,
        params: dict[str, str],
        graph: dict[str, Any],
        owner: str,
        do_as: str,
        scheduled: bool,
    ) -> dict[str, Any]:
        trigger = dt.datetime.fromtimestamp(trigger_ms / 1000, dt.UTC)
        return {
            "id": instance_id,
            "flow_id": row.id,
            "org_id": row.org_id,
            "flow_name": row.name,
            "snapshot": row.definition_json or json.dumps(row.definition),
            "parameters": flow_struct.parameters_json(tuple(params.items())),
            "status": Status.INIT,
            "trigger_ms": trigger_ms,
            "trigger_time": stamp(trigger),
            "timestamp": self.clock().strftime("%Y-%m-%d %H:%M:%S.0"),
            "cal_dt": (trigger.date() - dt.timedelta(days=1)).isoformat(),
            "owner": owner or row.definition["owners"],
            "do_as": do_as,
            "type": int(row.definition["type"]),
            "if_pre": 0 if scheduled else 1,
            "graph": json.dumps(graph, separators=(",", ":"), ensure_ascii=False),
        }

    # -- operations ------------------------------------------------------------------------------

    def trigger_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, str]:
        row = self.access.operable(caller, p["flowId"])
        return {"flowInstanceId": self.create(row, p["triggerTime"])}

    def trigger_flow_from_task(self, caller: Caller, p: dict[str, Any]) -> dict[str, str]:
        row = self.access.operable(caller, p["flowId"])
        task = self.store.task(p["taskId"])
        if task is None or task.flow_id != row.id:
            raise ServiceError(Code.BAD_PARAMETER, TRIGGER_FROM_TASK_REFUSED)
        minute_ago = (self.clock() - dt.timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
        recent = [
            i
            for i in self.store.instances(caller.org_id)
            if i["flow_id"] == row.id and i["if_pre"] == 2 and i["timestamp"] >= minute_ago
        ]  # made in the last minute, whatever for
        if recent:
            raise ServiceError(Code.BAD_PARAMETER, TRIGGER_FROM_TASK_REFUSED)
        instance_id = self.create(row, p["triggerTime"], start_task=task.name)
        self.store.update_instance(instance_id, if_pre=2)
        return {"flowInstanceId": instance_id}

    def update_and_trigger_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, str]:
        row = self.access.operable(caller, p["flowId"])
        try:
            overrides = dict(flow_struct.parameters_from_service(p["parameters"], "parameters"))
        except CodecError as e:
            raise ServiceError(Code.BAD_PARAMETER, f"Invalid parameter: {e}") from None
        return {"flowInstanceId": self.create(row, p["triggerTime"], overrides)}

    def _instance(self, caller: Caller, instance_id: str) -> dict[str, Any]:
        row = self.store.instance(caller.org_id, instance_id)
        if row is None:
            raise ServiceError(Code.BAD_PARAMETER, "Instance not found")
        return row

    def get_flow_instance(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        return self._view(caller, self._instance(caller, p["flowInstId"]), detail=True)

    def _view(self, caller: Caller, row: dict[str, Any], detail: bool) -> dict[str, Any]:
        parts = _parts(row["snapshot"], row["graph"], snake=not detail)
        statuses = self.store.task_statuses(row["id"])
        nodes = ",".join(
            f'{fragment},"status":"{Status.named(statuses.get(name, Status.INIT))}"}}'
            for name, fragment in parts.nodes
        )
        header = parts.header
        view = {
            "instanceId": row["id"],
            "flowId": row["flow_id"],
            "flowName": row["flow_name"],
            "freq": header["cron"],
            "cycle": header["cycle"],
            "parameters": row["parameters"],
            "doAs": row["do_as"],
            "graph": f"{parts.before}{nodes}{parts.after}",
            "status": row["status"],
            "statusDesc": Status.named(row["status"]),
            "triggerTime": row["trigger_time"],
            "startTime": row["start_time"],
            "endTime": row["end_time"],
            "timestamp": row["timestamp"],
            "virtual": False,
            "owner": row["owner"],
            "hasEditPri": caller.name in header["owner_set"],
            "hasReadPri": True,
        }
        if detail:
            view.update(alertMode=header["alertMode"], calDt=row["cal_dt"])
        else:
            view["isCancelled"] = bool(row["cancelled"])
        return view

    def list_flow_instances(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        wanted = _statuses(p["status"])
        expression, owner = p.get("expression") or "", p.get("owner") or ""
        rows = [
            r
            for r in self.store.instances(caller.org_id)
            if r["type"] == p["type"]
            and r["status"] in wanted
            and p["fromTriggerTime"] <= r["trigger_ms"] <= p["toTriggerTime"]
            and (not expression or expression in r["id"] or expression in r["flow_name"])
            and (not owner or owner in {u for u in r["owner"].split(";") if u})
        ]
        total = len(rows)
        page = paginate(
            rows,
            p.get("pagination"),
            {
                "start_time": lambda r: (r["start_time"], r["id"]),
                "create_time": lambda r: (r["timestamp"], r["id"]),
                "trigger_time": lambda r: (r["trigger_ms"], r["id"]),
                "end_time": lambda r: (r["end_time"], r["id"]),
                "update_time": lambda r: (r["end_time"] or r["start_time"], r["id"]),
            },
        )
        full = [self.store.instance(caller.org_id, r["id"]) for r in page]
        views = [self._view(caller, r, detail=False) for r in full if r is not None]
        return {"flowInsts": views, "count": total}

    def _task(self, caller: Caller, task_instance_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        task = self.store.task_instance(task_instance_id)
        instance = task and self.store.instance(caller.org_id, task["flow_instance_id"])
        if task is None or instance is None:
            raise ServiceError(Code.BAD_PARAMETER, "Instance not found")
        return task, instance

    def get_task_instance(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        task, instance = self._task(caller, p["taskInstId"])
        body: dict[str, Any] = next(
            (
                t
                for t in json.loads(instance["snapshot"])["tasks"]
                if t["name"] == task["task_name"]
            ),
            {},
        )
        record = dt.datetime.strptime(instance["timestamp"][:19], "%Y-%m-%d %H:%M:%S")
        return {
            "instanceId": task["id"],
            "taskId": task["task_id"],
            "taskName": task["task_name"],
            "cycle": json.loads(instance["snapshot"])["cycle"],
            "status": task["status"],
            "runNum": task["run_num"],
            "type": TASK_TYPE_CODES.get(body.get("type", ""), 0),
            "syncType": body.get("syncType"),
            "freq": None,
            "ifPre": min(instance["if_pre"], 1),
            "stsDesc": Status.named(task["status"]),
            "recallNum": task["recall_num"],
            "triggerTime": instance["trigger_time"],
            "timeout": body.get("timeout", 0),
            "recallLimit": body.get("retryLimit", 0),
            "recallInterval": body.get("retryInterval", 0),
            "startTime": task["start_time"],
            "endTime": task["end_time"],
            "timeStamp": java_date(record),
            "isTimeout": bool(task["is_timeout"]),
            "flowInstId": instance["id"],
            "doAs": instance["do_as"],
            "alert": False,
            "runMode": body.get("runMode", "{}"),
            "cmd": task["cmd"] or body.get("cmd", ""),
            "hasResourceBefore": False,
            "resourceName": "",
            "fileName": "",
            "resourceVersion": "",
        }

    def get_task_instance_log(self, caller: Caller, p: dict[str, Any]) -> dict[str, str]:
        task, instance = self._task(caller, p["taskInstId"])
        path = self.runner.log_path(instance["id"], task["id"])
        if not path.exists():
            raise ServiceError(Code.BAD_PARAMETER, "Invalid taskInstId or it has no log")
        text = path.read_text("utf-8", errors="replace")
        limit = p.get("maxLength") or 2**20
        return {"log": text[-limit:] if limit > 0 else ""}

    def cancel_flow_instance(self, caller: Caller, p: dict[str, Any]) -> str:
        row = self._instance(caller, p["flowInstId"])
        flow = self.store.flow(caller.org_id, row["flow_id"])
        if flow is not None:
            self.access.operable(caller, flow.id)
        if not Status(row["status"]).live:
            raise ServiceError(
                Code.BAD_PARAMETER,
                f"Instance {row['id']} is {Status.named(row['status'])} and cannot be cancelled",
            )
        if not self.runner.cancel(row["id"]):
            self.runner.mark_cancelled(row["id"])
        return ""

    def cancel_all(self, flow_id: int, org_id: str) -> None:
        for row in self.store.instances(org_id):
            if row["flow_id"] == flow_id and not Status(row["status"]).finished:
                self.runner.cancel(row["id"])


def _task_instance_rows(
    instance_id: str, wf: Workflow, task_ids: dict[str, int]
) -> list[dict[str, Any]]:
    suffix = instance_id.split("-", 1)[1]
    return [
        {
            "id": f"{task_ids[t.name]}-{suffix}",
            "flow_instance_id": instance_id,
            "task_id": task_ids[t.name],
            "task_name": t.name,
            "position": i,
            "status": Status.INIT,
        }
        for i, t in enumerate(wf.tasks)
    ]


def _statuses(value: Any) -> set[int]:
    parts = value if isinstance(value, list) else str(value).split(",")
    try:
        return {int(str(p).strip()) for p in parts if str(p).strip()}
    except ValueError:
        raise bad("Invalid parameter: status must be comma-separated status codes") from None


def _downstream(wf: Any, start: str) -> set[str]:
    """The start task and everything downstream of it through relations that re-run."""
    down: dict[str, list[str]] = {}
    for task in wf.tasks:
        for dep in task.depends_on:
            if dep.is_local and dep.rerun:
                down.setdefault(dep.task, []).append(task.name)
    found, stack = {start}, [start]
    while stack:
        for child in down.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


@dataclass(frozen=True)
class _Parts:
    """An instance's view, pre-cut: what never changes is serialized once, and each poll only
    joins the task nodes with their current status."""

    header: dict[str, Any]
    before: str
    nodes: tuple[tuple[str, str], ...]  # (task name, node JSON without its closing brace)
    after: str


@functools.lru_cache(maxsize=64)
def _parts(snapshot: str, graph_text: str, snake: bool) -> _Parts:
    data = json.loads(snapshot)
    header = {k: data[k] for k in ("cron", "cycle", "owners", "alertMode")}
    header["owner_set"] = frozenset(u for u in data["owners"].split(";") if u)
    graph = json.loads(graph_text)
    tasks = graph.pop("tasks")
    if snake:  # the List sample spells these graph keys in snake_case (SPEC §3.16)
        graph["do_as"] = graph.pop("doAs")
        tasks = [
            {
                ("task_name" if k == "taskName" else "task_id" if k == "taskId" else k): v
                for k, v in node.items()
            }
            for node in tasks
        ]
    name_key = "task_name" if snake else "taskName"
    text = json.dumps(graph, separators=(",", ":"), ensure_ascii=False)
    nodes = tuple(
        (str(node[name_key]), json.dumps(node, separators=(",", ":"), ensure_ascii=False)[:-1])
        for node in tasks
    )
    return _Parts(header, text[:-1] + ',"tasks":[', nodes, "]}")
