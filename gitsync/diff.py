"""Comparing two versions of a workflow in the file's own terms, and whether Save Flow can
turn one into the other (SPEC §3.7) or the flow must be replaced. Pure."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator
from dataclasses import fields, replace
from typing import Any

from gitsync.codec.document import document_from_workflow
from gitsync.model import Dependency, Task, Workflow
from gitsync.plan_types import FieldChange


def _dep_label(dep: Dependency) -> str:
    label = (
        dep.task
        if dep.is_local
        else (f"{dep.flow}.{dep.task}" if dep.task else f"workflow {dep.flow}")
    )
    default = dep.is_local
    return label if dep.rerun == default else f"{label} (rerun: {str(dep.rerun).lower()})"


def _task_view(task: Task, with_local: bool) -> dict[str, Any]:
    hidden = ("name", "depends_on") if with_local else ("name", "depends_on", "local")
    view = {k: v for k, v in task.__dict__.items() if k not in hidden}
    view["run_mode"] = dict(task.run_mode.__dict__)
    view["depends_on"] = {_dep_label(d) for d in task.depends_on}
    return view


def _view(
    wf: Workflow, with_local: bool, unchanged: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The workflow as the file's terms compare it; the tasks named in ``unchanged`` (equal
    on both sides) are left as None, so that comparing changes nothing but costs nothing."""
    s = wf.schedule
    return {
        "directory": "/".join(wf.directory) or "(root)",
        "description": wf.description,
        "owners": set(wf.owners),
        "visitors": set(wf.visitors),
        "alert": wf.alert,
        "sync_type": wf.sync_type,
        "parameters": dict(wf.parameters),
        "schedule": {"type": s.type, "cycle": s.cycle, "cron": s.cron, "start": s.start},
        "tasks": {
            t.name: None if t.name in unchanged else _task_view(t, with_local) for t in wf.tasks
        },
    }


def _unchanged(actual: Workflow, desired: Workflow) -> frozenset[str]:
    """Names of the tasks that are equal on both sides (of a repeated name, the last one,
    as in the views)."""
    old = {t.name: t for t in actual.tasks}
    new = {t.name: t for t in desired.tasks}
    return frozenset(name for name, task in new.items() if old.get(name) == task)


def _label(path: list[Any]) -> str:
    out = ""
    for i, part in enumerate(path):
        if part is None:
            continue
        if i > 0 and path[i - 1] == "tasks":
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _show(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def differences(actual: Workflow, desired: Workflow, with_local: bool = False) -> list[str]:
    """Field-level changes from ``actual`` to ``desired``, e.g. ``tasks[load].timeout: 300 ->
    600``; scheduling state is not part of it, ``local`` commands only for the engine."""
    return compare(actual, desired, with_local)[0]


def changed_fields(
    actual: Workflow, desired: Workflow, with_local: bool = False
) -> tuple[FieldChange, ...]:
    return compare(actual, desired, with_local)[1]


def compare(
    actual: Workflow, desired: Workflow, with_local: bool = False
) -> tuple[list[str], tuple[FieldChange, ...]]:
    """The changes as lines for people and as fields, with both values as the file writes
    them (a reviewer's tool, and a unified diff of a changed command, needs both sides): one
    comparison for both. A task added or removed is one field, ``tasks[name]``, holding the
    task as its file writes it."""
    unchanged = _unchanged(actual, desired)
    old, new = _view(actual, with_local, unchanged), _view(desired, with_local, unchanged)
    lines = list(_compare(old, new, ()))
    out = []
    for path, before, after in _fields(old, new, ()):
        if len(path) == 2 and path[0] == "tasks":
            before, after = task_document(actual, path[1]), task_document(desired, path[1])
        out.append(FieldChange(_label(list(path)), _plain(before), _plain(after)))
    names_before, names_after = [t.name for t in actual.tasks], [t.name for t in desired.tasks]
    if set(names_before) == set(names_after) and names_before != names_after:
        lines.append(f"task order: {', '.join(names_before)} -> {', '.join(names_after)}")
        out.append(FieldChange("tasks", names_before, names_after))  # the order of the tasks
    return sorted(lines), tuple(sorted(out, key=lambda f: f.path))


def _fields(
    old: Any, new: Any, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            yield from _fields(old.get(key), new.get(key), (*path, key))
    else:
        yield path, old, new


def renamed_tasks(renames: tuple[tuple[str, str], ...]) -> tuple[FieldChange, ...]:
    return tuple(FieldChange(f"tasks[{old}].name", old, new) for old, new in renames)


def renamed(
    old: str,
    new: str,
    task_renames: tuple[tuple[str, str], ...],
    actual: Workflow,
    desired: Workflow,
    with_local: bool,
) -> tuple[FieldChange, ...]:
    """The fields of a renamed workflow: its name, its tasks' names, then the rest."""
    head = (FieldChange("name", old, new), *renamed_tasks(task_renames))
    return (*head, *compare(actual, desired, with_local)[1])


def _plain(value: Any) -> Any:
    """Sets (owners, dependencies) as sorted lists: what a file and JSON can hold."""
    return sorted(value) if isinstance(value, (set, frozenset)) else value


def task_document(wf: Workflow, name: str) -> dict[str, Any] | None:
    """The task ``name`` of ``wf`` as its file writes it, or None when there is none."""
    task = wf.task(name)
    if task is None:
        return None
    only: dict[str, Any] = document_from_workflow(Workflow("", tasks=(task,)))["tasks"][0]
    return only


def _compare(old: Any, new: Any, path: tuple[str, ...]) -> Iterator[str]:
    """One line per difference between two views (dicts, sets and plain values only). Written
    here rather than with a general diff library, which took 45 ms per workflow: minutes for
    a plan that changes thousands."""
    if old == new:
        return
    where = _label(list(path))
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            if key in old and key in new:
                yield from _compare(old[key], new[key], (*path, key))
            elif len(path) == 1 and path[0] == "tasks":
                yield f"task {'added' if key in new else 'removed'}: {key}"
            elif key in new:
                yield f"{_label([*path, key])}: added {_show(new[key])}"
            else:
                yield f"{_label([*path, key])}: removed {_show(old[key])}"
    elif isinstance(old, (set, frozenset)) and isinstance(new, (set, frozenset)):
        for sign, word, items in (("+", "added", new - old), ("-", "removed", old - new)):
            for item in items:
                if path[-1] == "depends_on":
                    yield f"dependency {word}: {item} -> {path[1]}"
                else:
                    yield f"{where}: {sign} {_show(item)}"
    else:
        yield f"{where}: {_show(old)} -> {_show(new)}"


_BODY_FIELDS = tuple(f.name for f in fields(Task) if f.name not in ("depends_on", "local"))
_body_fields = operator.attrgetter(*_BODY_FIELDS)


def _body(task: Task, with_local: bool = False) -> tuple[Any, ...]:
    """What Save cannot change of a task: all but its dependencies (and ``local`` unless
    asked for). A tuple, not a copy of the task: a plan of 1,000 changed workflows compares
    20,000 bodies, and copying them (dataclasses.replace) was most of the plan's time."""
    body: tuple[Any, ...] = _body_fields(task)
    return (*body, task.local) if with_local else body


def replace_reasons(actual: Workflow, desired: Workflow, with_local: bool = False) -> list[str]:
    """Why Save cannot turn ``actual`` into ``desired`` (empty: it can)."""
    reasons = []
    if actual.directory != desired.directory:
        reasons.append("it moves to another directory, and the service cannot move workflows")
    if actual.schedule.type != desired.schedule.type:
        reasons.append(
            f"the schedule type changes ({actual.schedule.type} -> "
            f"{desired.schedule.type}), which the service never changes in place"
        )
    if actual.sync_type != desired.sync_type:
        reasons.append("sync_type changes, and Save Flow does not carry it")
    added = [t.name for t in desired.tasks if actual.task(t.name) is None]
    if added:
        reasons.append(f"tasks are added ({', '.join(added)}), and Save Flow cannot add tasks")
    changed = [
        t.name
        for t in desired.tasks
        if (old := actual.task(t.name)) is not None and _body(old) != _body(t)
    ]
    if changed:
        reasons.append(
            f"task bodies change ({', '.join(changed)}), and Save Flow cannot "
            "change a task's command or settings"
        )
    old_refs = {(d.flow, d.task) for t in actual.tasks for d in t.depends_on if d.task and d.flow}
    new_refs = sorted(
        {
            f"{d.flow}.{d.task}"
            for t in desired.tasks
            for d in t.depends_on
            if d.flow and d.task and (d.flow, d.task) not in old_refs
        }
    )
    if new_refs:
        reasons.append(f"new task references ({', '.join(new_refs)}) can only be made by Import")
    return reasons


def same(actual: Workflow, desired: Workflow, with_local: bool = False) -> bool:
    if actual.schedule.enabled == desired.schedule.enabled and (
        with_local or all(t.local is None for t in desired.tasks)
    ):  # nothing to leave out of the comparison (the usual case): no copies
        return actual == desired
    strip = [t if with_local else replace(t, local=None) for t in desired.tasks]
    a = replace(actual, schedule=replace(actual.schedule, enabled=False))
    d = replace(desired, tasks=tuple(strip), schedule=replace(desired.schedule, enabled=False))
    return a == d
