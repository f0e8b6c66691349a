"""The service's behaviour behind the HTTP API: one method per operation, over the store.

Each method takes the checked parameters of ``protocol`` and returns the envelope's ``data``
or raises ServiceError with the documented code. Where SPEC.md is silent, the choice made is
in ``docs/engine.md``; the constants below keep those choices in one place.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from gitsync.codec import flow_struct
from gitsync.engine import definitions, limits, links
from gitsync.engine.access import NO_PRIVILEGE, Access, Caller, users
from gitsync.engine.answers import ServiceError, bad, paginate
from gitsync.engine.graphs import Graphs
from gitsync.engine.saving import read_graph
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow
from gitsync.errors import CodecError
from gitsync.model import Workflow
from gitsync.protocol import Code
from gitsync.schema_check import name_problem
from gitsync.validate import check_workflow

# Choices where SPEC.md is silent (docs/engine.md explains each).
TIME_ZONE = "GMT+0"


def _stamp(moment: dt.datetime) -> str:
    """Java ``Timestamp.toString()`` style: ``2019-08-08 09:34:36.0``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + str(moment.microsecond // 100000)


class Service:
    """The flow and directory operations (SPEC §3.1-3.12). ``on_change`` hears of every flow
    whose schedule may have changed (the scheduler); ``on_delete`` of every flow about to be
    deleted, so that its runs end first (the run operations)."""

    def __init__(
        self,
        store: Store,
        access: Access,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        extensions: bool = False,
    ) -> None:
        self.store = store
        self.extensions = extensions  # answer more than SPEC documents (docs/engine.md)
        self.access = access
        self.graphs = Graphs(store, access)
        self.clock = clock
        self.on_change: Callable[[str, int], None] | None = None  # (org, flow id)
        self.on_delete: Callable[[int, str], None] | None = None  # (flow id, org)

    def _check(self, caller: Caller, wf: Workflow, self_id: int | None) -> None:
        """What Import and Save refuse with 'Workflow validation failed' (SPEC §3.3 [I])."""
        problems = [i.message for i in check_workflow(wf)]
        for task in wf.tasks:
            for dep in task.depends_on:
                if dep.is_local:
                    continue
                upstream = self.store.flow_by_name(caller.org_id, dep.flow)
                if upstream is None or upstream.id == self_id:
                    problems.append(
                        f"task '{task.name}' depends on workflow '{dep.flow}', which does not exist"
                    )
                    continue
                if dep.task:
                    up_task = self.access.model(upstream).task(dep.task)
                    if up_task is None:
                        problems.append(
                            f"task '{task.name}' depends on '{dep.flow}.{dep.task}',"
                            " which does not exist"
                        )
                    elif not up_task.allow_reference:
                        problems.append(
                            f"task '{dep.flow}.{dep.task}' does not allow "
                            "references (allow_reference / asLink)"
                        )
        if problems:
            raise bad("Workflow validation failed: " + "; ".join(problems))

    def _dependents(self, caller: Caller, row: FlowRow) -> list[str]:
        """The flows that link to ``row``: by its id (links.py), and by its name where a link
        was stored before links kept ids."""
        found = links.referrers(self.store, caller.org_id, row.id, row.id)
        quoted = sorted({json.dumps(row.name), json.dumps(row.name, ensure_ascii=False)})
        for other in self.store.flows_containing(caller.org_id, quoted):
            d = other.definition
            if (
                other.id != row.id
                and other.name not in found
                and any(
                    link.get("sourceFlowName") == row.name and links.FLOW_ID not in link
                    for link in d.get("flowLinks", []) + d.get("taskLinks", [])
                )
            ):
                found.append(other.name)
        return found

    # -- directories -----------------------------------------------------------------------------

    def create_directory(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        name, parent = p.get("dirName", ""), p.get("parentId", "")
        if not name.strip():
            raise bad("param: dirName cannot be empty")
        if not parent.strip():
            raise bad("param: parentId cannot be empty")
        reason = name_problem(name)
        if reason:
            raise bad(f"Invalid parameter: dirName {reason}")
        with self.store.transaction():
            if self.store.directory(caller.org_id, parent) is None:
                raise bad("parentId not found")
            dir_id = self.store.create_directory(caller.org_id, parent, name)
        if dir_id is None:
            raise bad("A directory of the same name already exists")
        return {"dirId": dir_id}

    def list_workflow_directories(self, caller: Caller, p: dict[str, Any]) -> list[Any]:
        dirs = self.store.directories(caller.org_id)
        flows = self.store.flows(caller.org_id)
        nodes: dict[str, dict[str, Any]] = {
            d["id"]: {
                "title": d["name"],
                "type": 1,
                "key": d["id"],
                "isDirectory": True,
                "children": [],
            }
            for d in dirs
        }
        roots = []
        for d in dirs:
            if d["parent_id"] is None:
                roots.append(nodes[d["id"]])
            else:
                nodes[d["parent_id"]]["children"].append(nodes[d["id"]])
        for row in flows:
            nodes[row.dir_id]["children"].append(
                {
                    "editable": self.access.is_owner(caller, row),
                    "title": row.name,
                    "type": 1,
                    "key": row.id,
                    "isDirectory": False,
                }
            )
        return roots

    # -- flows -------------------------------------------------------------------------------------

    def import_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("flowName", "")
        if not name.strip():
            raise bad("param: flowName cannot be empty")
        reason = name_problem(name)
        if reason:
            raise bad(f"Invalid parameter: flowName {reason}")
        flow_json = dict(p["flowJson"])
        if "tasks" not in flow_json:
            raise bad("Workflow validation failed: flowJson.tasks is missing")
        limits.check_tasks(flow_json)
        if not flow_json.get("desc") and p.get("desc"):
            flow_json["desc"] = p["desc"]
        try:
            wf = flow_struct.workflow_from_flow_struct(flow_json, name=name)
        except CodecError as e:
            raise bad(f"Workflow validation failed: {e}") from None
        now = _stamp(self.clock())
        with self.store.transaction():
            if self.store.directory(caller.org_id, p.get("dirId", "")) is None:
                raise bad("Directory does not exist")
            self._check(caller, wf, None)
            flow_id = self.store.insert_flow(
                org_id=caller.org_id,
                dir_id=p["dirId"],
                name=name,
                definition=links.with_ids(
                    self.store, caller.org_id, definitions.stored(wf, flow_json)
                ),
                user=caller.name,
                now=now,
                wished_id=p.get("flowId"),
                task_names=[t.name for t in wf.tasks],
            )
        if flow_id is None:
            raise bad(f"Invalid parameter: flowName (a workflow named '{name}' already exists)")
        self.access.remember(flow_id, now, name, wf)
        self._changed(caller, flow_id)
        return {"flowId": flow_id}

    def export_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        row = self.access.flow(caller, p["flowId"])
        definition = links.current(self.store, caller.org_id, row.definition)
        data = definitions.portable(definition, row.name, self.access.do_as(caller.org_id))
        if self.extensions:  # the scheduling state and rights save a Get Flow per flow
            data.update(self._rights(caller, row), active=row.active)
        return data

    def get_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        return self._detail(caller, self.access.flow(caller, p["flowId"]))

    def load_flow_for_edit(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        return self._detail(caller, self.access.flow(caller, p["flowId"]), for_edit=True)

    def _detail(self, caller: Caller, row: FlowRow, for_edit: bool = False) -> dict[str, Any]:
        d = row.definition
        detail = {
            "flowId": row.id,
            "flowName": row.name,
            "active": row.active,
            "creator": row.creator,
            "createTime": row.create_time,
            "updateUser": row.update_user,
            "updateTime": row.update_time,
            "freq": d["cron"],
            "cycle": d["cycle"],
            "parameters": d["parameters"],
            "owner": d["owners"],
            "visitor": d["visitors"],
            "doAs": self.access.submitter(row),
            "alertMode": d["alertMode"],
            "graph": json.dumps(
                self.graphs.of_flow(caller.org_id, row, for_edit),
                separators=(",", ":"),
                ensure_ascii=False,
            ),
            "entry": row.entry,
            "type": d["type"],
            "syncType": d["syncType"],
            "desc": d["desc"],
            "startTime": d["startTime"],
            "virtual": False,
            "hasReadPri": True,
            **self._rights(caller, row),
        }
        if for_edit:
            detail["queue"] = row.queue
        return detail

    def _rights(self, caller: Caller, row: FlowRow) -> dict[str, bool]:
        return {
            "locked": row.locked,
            "hasEditPri": self.access.is_owner(caller, row),
            "isUserLocked": caller.locked,
        }

    def save_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.transaction():
            row = self.access.flow(caller, p["id"])
            if not self.access.is_owner(caller, row):
                raise ServiceError(Code.NO_PRIVILEGE, NO_PRIVILEGE)
            if caller.locked:
                raise ServiceError(Code.ACCOUNT_LOCKED, "Your account has been locked")
            name = p["name"]
            reason = name_problem(name)
            if reason:
                raise bad(f"Incorrect parameter: name {reason}")
            old = links.current(self.store, caller.org_id, row.definition)
            struct = _saved_settings(p, old)
            if p.get("tasks") is None:
                kept = [(t.id, t.name, t.x, t.y) for t in self.store.tasks(row.id)]
                struct.update(
                    {
                        k: old[k]
                        for k in ("tasks", "relations", "flowLinks", "taskLinks", "linkRelations")
                    }
                )
            else:
                kept = read_graph(self.store, caller.org_id, row, p, struct)
            try:
                wf = flow_struct.workflow_from_flow_struct(struct, name=name)
            except CodecError as e:
                raise bad(f"Incorrect parameter: {e}") from None
            self._check(caller, wf, row.id)
            now = _stamp(self.clock())
            saved = self.store.update_flow(
                row.id,
                name=name,
                definition=links.with_ids(
                    self.store, caller.org_id, definitions.stored(wf, struct, graph=True)
                ),
                active=1 if p["active"] else 0,
                user=caller.name,
                now=now,
                queue=p["queue"] if isinstance(p.get("queue"), str) else row.queue,
                tasks=kept,
            )
        if not saved:
            raise bad(f"Incorrect parameter: a workflow named '{name}' already exists")
        self.access.remember(row.id, now, name, wf)
        self._changed(caller, row.id)
        return {"flowId": row.id}

    def delete_flow(self, caller: Caller, p: dict[str, Any]) -> str:
        with self.store.transaction():
            row = self.access.editable(caller, p["flowId"])
            if self._dependents(caller, row):
                raise ServiceError(
                    Code.IN_USE,
                    "This workflow is relied on by other workflows and cannot be deleted.",
                )
            if self.on_delete is not None:  # Delete also removes its instances (SPEC §4.2)
                self.on_delete(row.id, caller.org_id)
            self.store.delete_instances(row.id)
            self.store.delete_flow(row.id)
        self._changed(caller, row.id)
        return ""

    def enable_flow(self, caller: Caller, p: dict[str, Any]) -> str:
        return self._set_active(caller, p["flowId"], 1)

    def disable_flow(self, caller: Caller, p: dict[str, Any]) -> str:
        return self._set_active(caller, p["flowId"], 0)

    def _set_active(self, caller: Caller, flow_id: int, active: int) -> str:
        row = self.access.operable(caller, flow_id)
        self.store.set_active(row.id, active)
        self._changed(caller, row.id)
        return ""

    def _changed(self, caller: Caller, flow_id: int) -> None:
        """Tell the scheduler, after the commit, that a flow's schedule may have changed."""
        if self.on_change is not None:
            self.on_change(caller.org_id, flow_id)

    def get_my_flow(self, caller: Caller, p: dict[str, Any]) -> list[dict[str, Any]]:
        expression = p.get("expression") or ""
        out = []
        for row in self.store.flows(caller.org_id):
            related = users(row.definition["owners"]) | users(row.definition["visitors"])
            if caller.name not in related and caller.name != row.creator:
                continue
            if expression and expression not in row.name and expression not in str(row.id):
                continue
            out.append(
                {
                    "flowId": str(row.id),
                    "editable": self.access.is_owner(caller, row),
                    "flowName": row.name,
                    "cycle": row.definition["cycle"],
                }
            )
        return out

    def search_flow(self, caller: Caller, p: dict[str, Any]) -> list[dict[str, Any]]:
        expression = p.get("expression") or ""
        rows = [
            r
            for r in self.store.flows(caller.org_id)
            if not expression or expression in r.name or expression in str(r.id)
        ]
        rows = paginate(
            rows,
            p.get("pagination"),
            {
                "create_time": lambda r: (r.create_time, r.id),
                "update_time": lambda r: (r.update_time, r.id),
                "start_time": lambda r: (r.definition["startTime"], r.id),
            },
        )
        return [{"flowId": str(r.id), "flowName": r.name} for r in rows]

    # -- time ----------------------------------------------------------------------------------

    def get_current_time(self, p: dict[str, Any]) -> int:
        return int(self.clock().timestamp() * 1000)

    def get_time_zone(self, p: dict[str, Any]) -> dict[str, str]:
        return {"timezone": TIME_ZONE}


def _saved_settings(p: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """The flow-level fields of a Save (SPEC §3.7); what it leaves out stays as it was."""
    return {
        "cycle": p["cycle"],
        "cron": p["freq"],
        "type": p["type"],
        "alertMode": p["alertMode"],
        "owners": p["owners"],
        "visitors": p["visitors"],
        "startTime": p.get("startTime") or old["startTime"],
        "parameters": p["parameters"] if p.get("parameters") is not None else old["parameters"],
        "desc": p["desc"] if p.get("desc") is not None else old["desc"],
        "syncType": old["syncType"],
        "submitter": p.get("doAs") or old.get("submitter") or "",
    }
