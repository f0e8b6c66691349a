"""The one mapping: workflow file document <-> Workflow <-> the service's Flow Struct.

Only this module knows the Flow Struct's field names and the service's enumeration codes.
Decoding a service document is lenient in the ways SPEC.md §1.3 says it must be (ids as
numbers or strings, camelCase or snake_case keys, JSON inside strings or not); encoding emits
the shapes of the documented samples.

Canonical form: ``depends_on`` lists are sorted (local tasks first, then other workflows) and
owners/visitors are sorted, because the service keeps neither order meaningful; tasks and
parameters keep their order.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from gitsync.errors import CodecError
from gitsync.model import DEFAULT_START, Dependency, RunMode, Schedule, Task, Workflow

CYCLE_CODES = {"minute": "mi", "hour": "H", "day": "D", "week": "W", "month": "M"}
SCHEDULE_TYPE_CODES = {"manual": 0, "periodic": 1, "temporary": 2}
ALERT_CODES = {"none": 0, "email": 1, "sms": 2, "email_and_sms": 3}
SYNC_CODES = {"file": 0, "data": 1}
MODE_CODES = {"single": 1, "multiple": 2}
KEY_TYPE_CODES = {"none": 0, "file": 1, "custom": 2}

_TASK_DEFAULTS = Task(name="")
_RUN_MODE_DEFAULTS = RunMode()

# File key -> model attribute, where they differ only by being the plain same name.
_TASK_SCALARS = (
    "type",
    "command",
    "local",
    "resource",
    "timeout",
    "retries",
    "retry_interval",
    "success_code",
    "priority",
    "cron",
    "allow_reference",
    "file_package",
    "sync_type",
    "wait_code",
)
_RUN_MODE_KEYS = tuple(f.name for f in fields(RunMode))
_DEFAULT_RUN_MODE = RunMode()


# -- file document -> model -----------------------------------------------------


def _dependency(item: Any) -> Dependency:
    if isinstance(item, str):
        return Dependency(task=item)
    flow = str(item.get("flow", ""))
    default_rerun = not flow
    return Dependency(
        task=str(item.get("task", "")), flow=flow, rerun=bool(item.get("rerun", default_rerun))
    )


def canonical_dependencies(deps: list[Dependency]) -> tuple[Dependency, ...]:
    return tuple(sorted(deps, key=lambda d: (not d.is_local, d.flow, d.task, d.rerun)))


def _param_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def workflow_from_document(
    doc: Mapping[str, Any], name: str, directory: tuple[str, ...] = ()
) -> Workflow:
    """Build the model from a schema-valid file document, filling every default."""
    tasks = []
    for t in doc.get("tasks") or []:
        values: dict[str, Any] = {k: t[k] for k in _TASK_SCALARS if k in t}
        if "success_code" in values:
            values["success_code"] = str(values["success_code"])
        run_mode = t.get("run_mode")
        if run_mode:
            rm = RunMode(**{k: run_mode[k] for k in _RUN_MODE_KEYS if k in run_mode})
            rm = replace(rm, cpu=float(rm.cpu), memory=float(rm.memory))
        else:
            rm = _DEFAULT_RUN_MODE  # frozen: one shared value
        deps = canonical_dependencies([_dependency(d) for d in t.get("depends_on") or []])
        tasks.append(Task(name=t["name"], depends_on=deps, run_mode=rm, **values))
    sched_doc = doc.get("schedule")
    if sched_doc is None:
        schedule = Schedule()
    else:
        stype = sched_doc.get("type", "periodic")
        schedule = Schedule(
            type=stype,
            cycle=sched_doc.get("cycle", "day"),
            cron=sched_doc.get("cron", ""),
            start=str(sched_doc.get("start", DEFAULT_START)),
            enabled=bool(sched_doc.get("enabled", stype == "periodic")),
        )
    params = doc.get("parameters") or {}
    return Workflow(
        name=name,
        directory=directory,
        description=doc.get("description", ""),
        owners=tuple(sorted(doc.get("owners") or ())),
        visitors=tuple(sorted(doc.get("visitors") or ())),
        alert=doc.get("alert", "email"),
        parameters=tuple((str(k), _param_value(v)) for k, v in params.items()),
        sync_type=doc.get("sync_type", "data"),
        schedule=schedule,
        tasks=tuple(tasks),
    )


# -- model -> file document (pull) -----------------------------------------------


def document_from_workflow(wf: Workflow) -> dict[str, Any]:
    """The file document for ``wf``: stable key order, defaults left out."""
    doc: dict[str, Any] = {}
    if wf.description:
        doc["description"] = wf.description
    if wf.owners:
        doc["owners"] = list(wf.owners)
    if wf.visitors:
        doc["visitors"] = list(wf.visitors)
    if wf.alert != "email":
        doc["alert"] = wf.alert
    if wf.sync_type != "data":
        doc["sync_type"] = wf.sync_type
    if wf.parameters:
        doc["parameters"] = dict(wf.parameters)
    sched = wf.schedule
    if sched != Schedule():
        s: dict[str, Any] = {}
        if sched.type != "periodic":
            s["type"] = sched.type
        if sched.type == "periodic" or sched.cycle != "day":
            s["cycle"] = sched.cycle
        if sched.type == "periodic" or sched.cron:
            s["cron"] = sched.cron
        if sched.start != DEFAULT_START:
            s["start"] = sched.start
        if sched.enabled != (sched.type == "periodic"):
            s["enabled"] = sched.enabled
        doc["schedule"] = s
    doc["tasks"] = [_task_document(t) for t in wf.tasks]
    return doc


def _task_document(task: Task) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": task.name}
    if task.type != "COMMAND":
        doc["type"] = task.type
    if task.type == "COMMAND" or task.command:
        doc["command"] = task.command
    if task.local is not None:
        doc["local"] = task.local
    if task.depends_on:
        doc["depends_on"] = [_dependency_document(d) for d in task.depends_on]
    for key in _TASK_SCALARS[3:]:
        value = getattr(task, key)
        if value != getattr(_TASK_DEFAULTS, key):
            doc[key] = value
    rm = {
        k: getattr(task.run_mode, k)
        for k in _RUN_MODE_KEYS
        if getattr(task.run_mode, k) != getattr(_RUN_MODE_DEFAULTS, k)
    }
    if rm:
        doc["run_mode"] = rm
    return doc


def _dependency_document(dep: Dependency) -> str | dict[str, Any]:
    if dep.is_local:
        return dep.task if dep.rerun else {"task": dep.task, "rerun": False}
    out: dict[str, Any] = {"flow": dep.flow}
    if dep.task:
        out["task"] = dep.task
    if dep.rerun:
        out["rerun"] = True
    return out


# -- model -> Flow Struct (Import's flowJson, Export's data) ----------------------


def parameters_json(params: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(
        [{"key": k, "value": v} for k, v in params], separators=(",", ":"), ensure_ascii=False
    )


def _number(value: float) -> float | int:
    """Whole numbers as integers, as the service's samples write them (``"memory":1``)."""
    return int(value) if float(value).is_integer() else value


def run_mode_json(rm: RunMode) -> str:
    return json.dumps(
        {
            "taskMode": MODE_CODES[rm.mode],
            "cpu": _number(rm.cpu),
            "memory": _number(rm.memory),
            "maxParallel": rm.max_parallel,
            "keyType": KEY_TYPE_CODES[rm.key_type],
            "datasourceId": rm.datasource_id,
            "path": rm.path,
            "content": rm.content,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def flow_struct_from_workflow(wf: Workflow, extensions: bool = False) -> dict[str, Any]:
    """The Flow Struct (SPEC §2.2). ``local`` commands are sent only to the bundled engine
    (``extensions``), as the task key ``localCmd``; EnOS never sees them."""
    link_ids: dict[tuple[str, str], str] = {}
    flow_links: list[dict[str, Any]] = []
    task_links: list[dict[str, Any]] = []
    relations: list[dict[str, Any]] = []
    link_relations: list[dict[str, Any]] = []
    for task in wf.tasks:
        for dep in task.depends_on:
            if dep.is_local:
                relations.append(
                    {"sourceTaskName": dep.task, "targetTaskName": task.name, "rerun": dep.rerun}
                )
                continue
            key = (dep.flow, dep.task)
            if key not in link_ids:
                link_ids[key] = str(len(link_ids))
                if dep.task:
                    task_links.append(
                        {
                            "linkId": link_ids[key],
                            "sourceFlowName": dep.flow,
                            "sourceTaskName": dep.task,
                        }
                    )
                else:
                    flow_links.append({"linkId": link_ids[key], "sourceFlowName": dep.flow})
            link_relations.append(
                {"linkId": link_ids[key], "targetTaskName": task.name, "rerun": dep.rerun}
            )
    return {
        "name": wf.name,
        "cycle": CYCLE_CODES[wf.schedule.cycle],
        "cron": wf.schedule.cron,
        "parameters": parameters_json(wf.parameters),
        "alertMode": ALERT_CODES[wf.alert],
        "owners": ";".join(wf.owners),
        "visitors": ";".join(wf.visitors),
        "type": SCHEDULE_TYPE_CODES[wf.schedule.type],
        "syncType": SYNC_CODES[wf.sync_type],
        "desc": wf.description,
        "startTime": wf.schedule.start,
        "tasks": [_task_struct(t, extensions) for t in wf.tasks],
        "flowLinks": flow_links,
        "taskLinks": task_links,
        "relations": relations,
        "linkRelations": link_relations,
    }


def _task_struct(task: Task, extensions: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": task.name,
        "resource": task.resource,
        "type": task.type,
        "syncType": SYNC_CODES[task.sync_type],
        "cmd": task.command,
        "filePackage": task.file_package,
        "cron": task.cron,
        "priorityLevel": task.priority,
        "timeout": task.timeout,
        "retryLimit": task.retries,
        "retryInterval": task.retry_interval,
        "successCode": task.success_code,
        "asLink": task.allow_reference,
        "runMode": run_mode_json(task.run_mode),
    }
    if task.wait_code:
        out["waitCode"] = task.wait_code
    if extensions and task.local is not None:
        out["localCmd"] = task.local
    return out


# -- Flow Struct -> model ----------------------------------------------------------


@functools.lru_cache(maxsize=512)
def snake_case(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


class _Reader:
    """Reads one service object, accepting camelCase or snake_case keys, naming bad fields."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise CodecError(f"{where}: expected an object, got {type(data).__name__}")
        self.data = data
        self.where = where

    def raw(self, key: str, default: Any = None) -> Any:
        if key in self.data:
            return self.data[key]
        return self.data.get(snake_case(key), default)

    def _convert(self, key: str, default: Any, convert: Callable[[Any], Any]) -> Any:
        value = self.raw(key)
        if value is None:
            return default
        try:
            return convert(value)
        except (TypeError, ValueError):
            raise CodecError(f"{self.where}.{key}: unexpected value {value!r}") from None

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        if type(value) is str:  # the usual case, read without the general path
            return value

        def conv(v: Any) -> str:
            if isinstance(v, (dict, list)):
                raise TypeError
            return str(v)

        result: str = self._convert(key, default, conv)
        return result

    def integer(self, key: str, default: int = 0) -> int:
        value = self.data.get(key)
        if type(value) is int:
            return value

        def conv(v: Any) -> int:
            if isinstance(v, (bool, dict, list)):
                raise TypeError
            f = float(v)
            if not f.is_integer():
                raise ValueError
            return int(f)

        result: int = self._convert(key, default, conv)
        return result

    def number(self, key: str, default: float = 0.0) -> float:
        def conv(v: Any) -> float:
            if isinstance(v, (bool, dict, list)):
                raise TypeError
            return float(v)

        result: float = self._convert(key, default, conv)
        return result

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if type(value) is bool:
            return value

        def conv(v: Any) -> bool:
            if isinstance(v, bool):
                return v
            if isinstance(v, (int, float)) and v in (0, 1):
                return bool(v)
            if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
                return v.lower() in ("true", "1")
            raise ValueError

        result: bool = self._convert(key, default, conv)
        return result

    def json(self, key: str, default: Any) -> Any:
        value = self.raw(key)
        if value is None or value == "":
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise CodecError(f"{self.where}.{key}: not valid JSON: {value[:80]!r}") from None
        return value

    def items(self, key: str) -> list[Any]:
        value = self.json(key, [])
        if not isinstance(value, list):
            raise CodecError(f"{self.where}.{key}: expected a list")
        return value

    def code(self, key: str, codes: Mapping[str, Any], default: str) -> str:
        value = self.raw(key)
        if value is None or value == "":
            return default
        for word, code in codes.items():
            if value == code or str(value) == str(code):
                return word
        raise CodecError(f"{self.where}.{key}: unknown value {value!r}")


def split_users(text: Any) -> tuple[str, ...]:
    """``";alice;bob;"`` -> ("alice", "bob"), sorted: separators at either end occur."""
    if isinstance(text, list):
        return tuple(sorted(str(u) for u in text if str(u)))
    return tuple(sorted(u for u in str(text or "").split(";") if u.strip()))


def parameters_from_service(value: Any, where: str = "parameters") -> tuple[tuple[str, str], ...]:
    """A parameter list as the service sends it: a JSON string or a list of {key, value}."""
    prefix, _, key = where.rpartition(".")
    items = _Reader({key: value}, prefix or "flow").items(key) if value else []
    out = []
    for i, item in enumerate(items):
        r = _Reader(item, f"{where}[{i}]")
        key = r.text("key")
        if not key:
            raise CodecError(f"{where}[{i}].key: must not be empty")
        out.append((key, _param_value(r.raw("value", ""))))
    return tuple(out)


def _run_mode_from_service(value: Any, where: str) -> RunMode:
    if isinstance(value, str):  # most tasks share a handful of run-mode texts
        with contextlib.suppress(CodecError):  # a bad one is read again below, for its place
            return _run_mode_of_text(value)
    return _read_run_mode(value, where)


@functools.lru_cache(maxsize=256)
def _run_mode_of_text(value: str) -> RunMode:
    return _read_run_mode(value, "runMode")


def _read_run_mode(value: Any, where: str) -> RunMode:
    data = _Reader({"runMode": value}, where).json("runMode", {})
    r = _Reader(data, f"{where}.runMode")
    return RunMode(
        mode=r.code("taskMode", MODE_CODES, "single"),
        cpu=r.number("cpu", 0.5),
        memory=r.number("memory", 1.0),
        max_parallel=r.integer("maxParallel"),
        key_type=r.code("keyType", KEY_TYPE_CODES, "none"),
        datasource_id=r.integer("datasourceId"),
        path=r.text("path"),
        content=r.text("content"),
    )


def workflow_from_flow_struct(
    struct: Any,
    name: str | None = None,
    directory: tuple[str, ...] = (),
    active: int | bool | None = None,
) -> Workflow:
    """The model of an Export response / Import ``flowJson``. Raises CodecError naming the
    field that cannot be read. ``active`` comes from outside the Flow Struct (Get Flow)."""
    r = _Reader(struct, "flow")
    flow_name = name if name is not None else r.text("name")
    deps: dict[str, list[Dependency]] = {}
    targets: dict[str, str] = {}  # target task -> where it was named, to refuse dangling edges
    for i, rel in enumerate(r.items("relations")):
        rr = _Reader(rel, f"flow.relations[{i}]")
        targets.setdefault(rr.text("targetTaskName"), f"flow.relations[{i}].targetTaskName")
        deps.setdefault(rr.text("targetTaskName"), []).append(
            Dependency(task=rr.text("sourceTaskName"), rerun=rr.flag("rerun", True))
        )
    links: dict[str, tuple[str, str]] = {}
    for kind in ("flowLinks", "taskLinks"):
        for i, link in enumerate(r.items(kind)):
            lr = _Reader(link, f"flow.{kind}[{i}]")
            task = lr.text("sourceTaskName") if kind == "taskLinks" else ""
            links[lr.text("linkId")] = (lr.text("sourceFlowName"), task)
    for i, rel in enumerate(r.items("linkRelations")):
        rr = _Reader(rel, f"flow.linkRelations[{i}]")
        link_id = rr.text("linkId")
        if link_id not in links:
            raise CodecError(f"flow.linkRelations[{i}].linkId: no flow or task link '{link_id}'")
        flow, task = links[link_id]
        targets.setdefault(rr.text("targetTaskName"), f"flow.linkRelations[{i}].targetTaskName")
        deps.setdefault(rr.text("targetTaskName"), []).append(
            Dependency(task=task, flow=flow, rerun=rr.flag("rerun", False))
        )
    tasks = []
    for i, item in enumerate(r.items("tasks")):
        tr = _Reader(item, f"flow.tasks[{i}]")
        task_name = tr.text("name") or tr.text("taskName")
        tasks.append(
            Task(
                name=task_name,
                type=tr.text("type", "COMMAND") or "COMMAND",
                command=tr.text("cmd"),
                resource=tr.text("resource", "default"),
                depends_on=canonical_dependencies(deps.get(task_name, [])),
                timeout=tr.integer("timeout", 300),
                retries=tr.integer("retryLimit", 3),
                retry_interval=tr.integer("retryInterval", 0),
                success_code=tr.text("successCode", "0") or "0",
                priority=tr.integer("priorityLevel", 0),
                cron=tr.text("cron"),
                allow_reference=tr.flag("asLink", False),
                file_package=tr.text("filePackage"),
                sync_type=tr.code("syncType", SYNC_CODES, "data"),
                wait_code=tr.text("waitCode"),
                run_mode=_run_mode_from_service(tr.raw("runMode"), f"flow.tasks[{i}]"),
                local=tr.raw("localCmd") if isinstance(tr.raw("localCmd"), str) else None,
            )
        )
    known = {t.name for t in tasks}
    for target, where in targets.items():
        if target not in known:
            raise CodecError(f"{where}: unknown task '{target}'")
    stype = r.code("type", SCHEDULE_TYPE_CODES, "manual")
    cron_text = r.text("cron") or r.text("freq")
    enabled = (
        bool(active)
        if active is not None
        else (stype == "periodic" and r.integer("active", 1) == 1)
    )
    return Workflow(
        name=flow_name,
        directory=directory,
        description=split_marker(r.text("desc"))[0],
        owners=split_users(r.raw("owners", r.raw("owner", ""))),
        visitors=split_users(r.raw("visitors", r.raw("visitor", ""))),
        alert=r.code("alertMode", ALERT_CODES, "email"),
        parameters=parameters_from_service(r.raw("parameters"), "flow.parameters"),
        sync_type=r.code("syncType", SYNC_CODES, "data"),
        schedule=Schedule(
            type=stype,
            cycle=r.code("cycle", CYCLE_CODES, "day"),
            cron=cron_text,
            start=r.text("startTime") or DEFAULT_START,
            enabled=enabled,
        ),
        tasks=tuple(tasks),
    )


def normalize_flow_struct(struct: Any) -> dict[str, Any]:
    """A Flow Struct in canonical form: decoded and encoded again."""
    return flow_struct_from_workflow(workflow_from_flow_struct(struct))


# -- ownership marker ------------------------------------------------------------------

MANAGED_MARKER = "[managed by gitsync]"
_MARKER_GAP = "\n\n"


def with_marker(description: str) -> str:
    """The description as sent for a flow gitsync manages: the marker on its own last line,
    after a blank line, so the user's text (trailing newlines included) comes back exactly."""
    return f"{description}{_MARKER_GAP}{MANAGED_MARKER}" if description else MANAGED_MARKER


def split_marker(description: str) -> tuple[str, bool]:
    """The user's text and whether the marker was there. Removes exactly what ``with_marker``
    added; a marker someone re-typed in the console loses one line break before it at most."""
    if not description.endswith(MANAGED_MARKER):
        return description, False
    text = description[: -len(MANAGED_MARKER)]
    if text.endswith(_MARKER_GAP):
        return text[: -len(_MARKER_GAP)], True
    return text.removesuffix("\n"), True


def is_managed(struct: Mapping[str, Any]) -> bool:
    return split_marker(str(struct.get("desc") or ""))[1]


def managed_flow_struct(wf: Workflow, extensions: bool = False) -> dict[str, Any]:
    """The Flow Struct gitsync imports: the model plus its ownership marker."""
    struct = flow_struct_from_workflow(wf, extensions)
    struct["desc"] = with_marker(wf.description)
    return struct


# -- Save Flow (the id-based edit view, SPEC §3.7) -----------------------------


@dataclass(frozen=True)
class Graph:
    """What Save needs from Load For Edit: ids and positions of the nodes that exist."""

    flow_id: int
    active: int
    do_as: str
    queue: str
    tasks: Mapping[str, Mapping[str, Any]]  # task name -> node
    flow_refs: Mapping[str, Mapping[str, Any]]  # upstream flow name -> node
    task_refs: Mapping[str, Mapping[str, Any]]  # upstream task name -> virtual node


def graph_from_detail(detail: Mapping[str, Any]) -> Graph:
    r = _Reader(detail, "flowDetail")
    graph = _Reader(r.json("graph", {}), "flowDetail.graph")
    tasks, flow_refs, task_refs = {}, {}, {}
    for i, node in enumerate(graph.items("tasks")):
        nr = _Reader(node, f"flowDetail.graph.tasks[{i}]")
        task_id = nr.integer("taskId")
        tasks[nr.text("taskName")] = {
            "taskId": str(task_id),
            "nodeId": nr.text("nodeId") or f"t_{task_id}",
            "x": nr.number("x", 0.002),
            "y": nr.number("y", 0.002),
        }
    for i, node in enumerate(graph.items("flows")):
        nr = _Reader(node, f"flowDetail.graph.flows[{i}]")
        flow_id = nr.integer("flowId")
        entry = {
            "flowId": str(flow_id),
            "flowName": nr.text("flowName"),
            "isVirtual": nr.flag("isVirtual"),
            "nodeId": nr.text("nodeId") or f"f_{flow_id}",
            "x": nr.number("x", 0.0005),
            "y": nr.number("y", 0.002),
        }
        if entry["isVirtual"]:
            task_name = str(entry["flowName"]).partition("(")[2].rstrip(")")
            task_refs[task_name] = entry
        else:
            flow_refs[str(entry["flowName"])] = entry
    return Graph(
        flow_id=r.integer("flowId"),
        active=r.integer("active"),
        do_as=r.text("doAs"),
        queue=r.text("queue"),
        tasks=tasks,
        flow_refs=flow_refs,
        task_refs=task_refs,
    )


class NotSaveable(CodecError):
    """The change cannot be expressed by Save Flow; the flow must be replaced."""


def save_body(
    wf: Workflow, graph: Graph, flow_ids: Mapping[str, int], active: int | None = None
) -> dict[str, Any]:
    """Save Flow's body for ``wf`` over an existing flow: only tasks it already has, their
    existing ids, and references by the ids the service knows. Raises NotSaveable."""
    struct = managed_flow_struct(wf)
    cycle = struct["cycle"]
    tasks = []
    for task in wf.tasks:
        node = graph.tasks.get(task.name)
        if node is None:
            raise NotSaveable(f"task '{task.name}' is new: Save cannot add tasks")
        tasks.append({"taskName": task.name, **node})
    refs: dict[tuple[str, str], dict[str, Any]] = {}
    relations = []
    for task in wf.tasks:
        target = graph.tasks[task.name]["nodeId"]
        for dep in task.depends_on:
            if dep.is_local:
                source = graph.tasks[dep.task]["nodeId"]
            else:
                key = (dep.flow, dep.task)
                if key not in refs:
                    refs[key] = _reference(dep.flow, dep.task, graph, flow_ids, len(refs))
                source = refs[key]["nodeId"]
            relations.append(
                {"source": source, "target": target, "cycleGap": f"{cycle}0", "rerun": dep.rerun}
            )
    return {
        "id": graph.flow_id,
        "type": struct["type"],
        "name": wf.name,
        "freq": struct["cron"],
        "cycle": cycle,
        "alertMode": struct["alertMode"],
        "doAs": graph.do_as,
        "owners": struct["owners"],
        "visitors": struct["visitors"],
        "startTime": struct["startTime"],
        "active": graph.active if active is None else active,
        "parameters": struct["parameters"],
        "desc": struct["desc"],
        "queue": graph.queue,
        "tasks": tasks,
        "flows": list(refs.values()),
        "relations": relations,
    }


def _reference(
    flow: str, task: str, graph: Graph, flow_ids: Mapping[str, int], index: int
) -> dict[str, Any]:
    if task:
        node = graph.task_refs.get(task)
        if node is None:
            raise NotSaveable(
                f"the reference to task '{flow}.{task}' is new: only Import can "
                "create task references"
            )
        return dict(node)
    node = graph.flow_refs.get(flow)
    if node is not None:
        return dict(node)
    if flow not in flow_ids:
        raise NotSaveable(f"upstream workflow '{flow}' does not exist")
    flow_id = flow_ids[flow]
    return {
        "flowId": str(flow_id),
        "flowName": flow,
        "isVirtual": False,
        "nodeId": f"f_{flow_id}",
        "x": 0.0005,
        "y": round(0.002 + 0.01 * index, 4),
    }
