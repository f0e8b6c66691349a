"""Workflow <-> the service's Flow Struct (SPEC §2.2: Import's flowJson, Export's data).

Only this module knows the Flow Struct's field names and the service's enumeration codes.
Decoding is lenient where SPEC §1.3 says it must be (``reader``); encoding emits the shapes of
the documented samples. Defaults of fields the service leaves out come from the model.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from gitsync.codec.document import canonical_dependencies, param_value
from gitsync.codec.marker import split_marker, with_marker
from gitsync.codec.reader import Reader
from gitsync.errors import CodecError
from gitsync.model import DEFAULT_START, Dependency, RunMode, Schedule, Task, Workflow

CYCLE_CODES = {"minute": "mi", "hour": "H", "day": "D", "week": "W", "month": "M"}
SCHEDULE_TYPE_CODES = {"manual": 0, "periodic": 1, "temporary": 2}
ALERT_CODES = {"none": 0, "email": 1, "sms": 2, "email_and_sms": 3}
SYNC_CODES = {"file": 0, "data": 1}
MODE_CODES = {"single": 1, "multiple": 2}
KEY_TYPE_CODES = {"none": 0, "file": 1, "custom": 2}

_TASK = Task(name="")  # the model's defaults, for fields the service leaves out

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


def split_users(text: Any) -> tuple[str, ...]:
    """``";alice;bob;"`` -> ("alice", "bob"), sorted: separators at either end occur."""
    if isinstance(text, list):
        return tuple(sorted(str(u) for u in text if str(u)))
    return tuple(sorted(u for u in str(text or "").split(";") if u.strip()))


def parameters_from_service(value: Any, where: str = "parameters") -> tuple[tuple[str, str], ...]:
    """A parameter list as the service sends it: a JSON string or a list of {key, value}."""
    prefix, _, key = where.rpartition(".")
    items = Reader({key: value}, prefix or "flow").items(key) if value else []
    out = []
    for i, item in enumerate(items):
        r = Reader(item, f"{where}[{i}]")
        key = r.text("key")
        if not key:
            raise CodecError(f"{where}[{i}].key: must not be empty")
        out.append((key, param_value(r.raw("value", ""))))
    return tuple(out)


def _run_mode_from_service(value: Any, where: str) -> RunMode:
    if isinstance(value, str):  # most tasks share a handful of run-mode texts
        try:
            return _run_mode_of_text(value)
        except CodecError:  # read again below, to name its place
            pass
    return _read_run_mode(value, where)


@functools.lru_cache(maxsize=256)
def _run_mode_of_text(value: str) -> RunMode:
    return _read_run_mode(value, "runMode")


def _read_run_mode(value: Any, where: str) -> RunMode:
    data = Reader({"runMode": value}, where).json("runMode", {})
    r = Reader(data, f"{where}.runMode")
    return RunMode(
        mode=r.code("taskMode", MODE_CODES, _TASK.run_mode.mode),
        cpu=r.number("cpu", _TASK.run_mode.cpu),
        memory=r.number("memory", _TASK.run_mode.memory),
        max_parallel=r.integer("maxParallel"),
        key_type=r.code("keyType", KEY_TYPE_CODES, _TASK.run_mode.key_type),
        datasource_id=r.integer("datasourceId"),
        path=r.text("path"),
        content=r.text("content"),
    )


def _dependencies(r: Reader) -> tuple[dict[str, list[Dependency]], dict[str, str]]:
    """Each task's upstreams from relations and links; where each target task is named."""
    deps: dict[str, list[Dependency]] = {}
    targets: dict[str, str] = {}  # target task -> where it was named, to refuse dangling edges
    for i, rel in enumerate(r.items("relations")):
        target, dependency = _relation(rel, i)
        if target not in targets:
            targets[target] = f"flow.relations[{i}].targetTaskName"
        deps.setdefault(target, []).append(dependency)
    links: dict[str, tuple[str, str]] = {}
    for kind in ("flowLinks", "taskLinks"):
        for i, link in enumerate(r.items(kind)):
            lr = Reader(link, f"flow.{kind}[{i}]")
            task = lr.text("sourceTaskName") if kind == "taskLinks" else ""
            links[lr.text("linkId")] = (lr.text("sourceFlowName"), task)
    for i, rel in enumerate(r.items("linkRelations")):
        rr = Reader(rel, f"flow.linkRelations[{i}]")
        link_id = rr.text("linkId")
        if link_id not in links:
            raise CodecError(f"flow.linkRelations[{i}].linkId: no flow or task link '{link_id}'")
        flow, task = links[link_id]
        targets.setdefault(rr.text("targetTaskName"), f"flow.linkRelations[{i}].targetTaskName")
        deps.setdefault(rr.text("targetTaskName"), []).append(
            Dependency(task=task, flow=flow, rerun=rr.flag("rerun", False))
        )
    return deps, targets


def _relation(rel: Any, i: int) -> tuple[str, Dependency]:
    """(target task, its upstream) of one relation; the usual shape without Reader."""
    if type(rel) is dict:
        target, source, rerun = (
            rel.get("targetTaskName"),
            rel.get("sourceTaskName"),
            rel.get("rerun"),
        )
        if type(target) is str and type(source) is str and type(rerun) is bool:
            return target, Dependency(task=source, rerun=rerun)
    rr = Reader(rel, f"flow.relations[{i}]")
    target = rr.text("targetTaskName")
    return target, Dependency(task=rr.text("sourceTaskName"), rerun=rr.flag("rerun", True))


_SYNC_WORDS = {code: word for word, code in SYNC_CODES.items()}


def _is_usual(item: Any) -> bool:
    """Every field under its own key with its own JSON type, as the service sends them."""
    if type(item) is not dict:
        return False
    get = item.get
    name, sync = get("name"), get("syncType")
    return bool(
        type(name) is str
        and name
        and type(get("type")) is str
        and type(get("cmd")) is str
        and type(get("resource")) is str
        and type(get("successCode")) is str
        and type(get("cron")) is str
        and type(get("filePackage")) is str
        and type(get("runMode")) is str
        and type(get("timeout")) is int
        and type(get("retryLimit")) is int
        and type(get("retryInterval")) is int
        and type(get("priorityLevel")) is int
        and type(get("asLink")) is bool
        and type(sync) is int
        and sync in _SYNC_WORDS
        and type(get("waitCode", "")) is str
        # left out, Reader would look for the snake_case spelling
        and ("waitCode" in item or "wait_code" not in item)
        and ("localCmd" in item or "local_cmd" not in item)
    )


def _usual_task(item: Any, i: int, deps: dict[str, list[Dependency]]) -> Task | None:
    """The task as Reader reads it, for the usual task (``_is_usual``); None for anything
    else, which Reader then reads. Decoding is most of a plan's own work besides the
    requests, and most of it is tasks: this takes a third less time."""
    if not _is_usual(item):
        return None
    name, local = item["name"], item.get("localCmd")
    return Task(
        name=name,
        type=item["type"] or _TASK.type,
        command=item["cmd"],
        resource=item["resource"],
        depends_on=canonical_dependencies(deps.get(name, [])),
        timeout=item["timeout"],
        retries=item["retryLimit"],
        retry_interval=item["retryInterval"],
        success_code=item["successCode"] or _TASK.success_code,
        priority=item["priorityLevel"],
        cron=item["cron"],
        allow_reference=item["asLink"],
        file_package=item["filePackage"],
        sync_type=_SYNC_WORDS[item["syncType"]],
        wait_code=item.get("waitCode", ""),
        run_mode=_run_mode_from_service(item["runMode"], f"flow.tasks[{i}]"),
        local=local if isinstance(local, str) else None,
    )


def _tasks(r: Reader, deps: dict[str, list[Dependency]]) -> list[Task]:
    return [
        _usual_task(item, i, deps) or _read_task(item, i, deps)
        for i, item in enumerate(r.items("tasks"))
    ]


def _read_task(item: Any, i: int, deps: dict[str, list[Dependency]]) -> Task:
    """Any task, leniently (SPEC §1.3), naming the field that cannot be read."""
    tr = Reader(item, f"flow.tasks[{i}]")
    task_name = tr.text("name") or tr.text("taskName")
    return Task(
        name=task_name,
        type=tr.text("type", _TASK.type) or _TASK.type,
        command=tr.text("cmd"),
        resource=tr.text("resource", _TASK.resource),
        depends_on=canonical_dependencies(deps.get(task_name, [])),
        timeout=tr.integer("timeout", _TASK.timeout),
        retries=tr.integer("retryLimit", _TASK.retries),
        retry_interval=tr.integer("retryInterval", _TASK.retry_interval),
        success_code=tr.text("successCode", _TASK.success_code) or _TASK.success_code,
        priority=tr.integer("priorityLevel", _TASK.priority),
        cron=tr.text("cron"),
        allow_reference=tr.flag("asLink", _TASK.allow_reference),
        file_package=tr.text("filePackage"),
        sync_type=tr.code("syncType", SYNC_CODES, _TASK.sync_type),
        wait_code=tr.text("waitCode"),
        run_mode=_run_mode_from_service(tr.raw("runMode"), f"flow.tasks[{i}]"),
        local=tr.raw("localCmd") if isinstance(tr.raw("localCmd"), str) else None,
    )


def workflow_from_flow_struct(
    struct: Any,
    name: str | None = None,
    directory: tuple[str, ...] = (),
    active: int | bool | None = None,
) -> Workflow:
    """The model of an Export response / Import ``flowJson``. Raises CodecError naming the
    field that cannot be read. ``active`` comes from outside the Flow Struct (Get Flow)."""
    r = Reader(struct, "flow")
    if r.raw("tasks") is None:  # every Flow Struct has its task list, even an empty one
        raise CodecError("flow.tasks: missing")
    flow_name = name if name is not None else r.text("name")
    deps, targets = _dependencies(r)
    tasks = _tasks(r, deps)
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


def managed_flow_struct(wf: Workflow, extensions: bool = False) -> dict[str, Any]:
    """The Flow Struct gitsync imports: the model plus its ownership marker."""
    struct = flow_struct_from_workflow(wf, extensions)
    struct["desc"] = with_marker(wf.description)
    return struct


def normalize_flow_struct(struct: Any) -> dict[str, Any]:
    """A Flow Struct in canonical form: decoded and encoded again."""
    return flow_struct_from_workflow(workflow_from_flow_struct(struct))
