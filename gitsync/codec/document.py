"""The workflow file's document <-> Workflow. Documents arrive schema-valid (validate.py);
defaults come from the model, so the file format and the model cannot disagree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from gitsync.model import DEFAULT_START, Dependency, RunMode, Schedule, Task, Workflow

_TASK_DEFAULTS = Task(name="")

# Task keys whose file key is the model attribute's name; the first three are written by
# hand when a document is made (``_task_document``), the others when they differ from the
# model's default.
_WRITTEN_BY_HAND = ("type", "command", "local")
_TASK_SCALARS = (
    *_WRITTEN_BY_HAND,
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


def dependency_of(item: Any) -> Dependency:
    """One ``depends_on`` entry of a file: a task's name, or a mapping."""
    if isinstance(item, str):
        return Dependency(task=item)
    flow = str(item.get("flow", ""))
    default_rerun = not flow
    return Dependency(
        task=str(item.get("task", "")), flow=flow, rerun=bool(item.get("rerun", default_rerun))
    )


def canonical_dependencies(deps: list[Dependency]) -> tuple[Dependency, ...]:
    if len(deps) < 2:  # most tasks: nothing to sort
        return tuple(deps)
    return tuple(sorted(deps, key=lambda d: (not d.is_local, d.flow, d.task, d.rerun)))


def param_value(value: Any) -> str:
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
        deps = canonical_dependencies([dependency_of(d) for d in t.get("depends_on") or []])
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
        parameters=tuple((str(k), param_value(v)) for k, v in params.items()),
        sync_type=doc.get("sync_type", "data"),
        schedule=schedule,
        tasks=tuple(tasks),
        renamed_from=str(doc.get("renamed_from", "")),
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
    for key in _TASK_SCALARS:
        if key in _WRITTEN_BY_HAND:
            continue
        value = getattr(task, key)
        if value != getattr(_TASK_DEFAULTS, key):
            doc[key] = value
    rm = {
        k: getattr(task.run_mode, k)
        for k in _RUN_MODE_KEYS
        if getattr(task.run_mode, k) != getattr(_DEFAULT_RUN_MODE, k)
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
