"""Desired Tree x remote state -> a Plan of Changes. Pure: no I/O, no clock.

Workflows are matched by name (names are unique in a tree and per owner in the service), so
a workflow whose directory changed is a move, not a delete and a create.

What the service can change in place (SPEC §3.7) decides the kind of change:

- **update**: Save Flow: description, owners, visitors, alert, parameters, cycle, cron,
  start date, the edges between tasks, references to whole workflows, removing tasks.
- **replace**: Import a new copy, Delete the old one, rename the copy. Needed for new tasks,
  changed task bodies (command, timeout, retries, run mode, ...), a new task reference,
  sync_type, the schedule type, and moves. Flow and task ids change and the run history
  stays with the old id; the Delete is refused (62104) while other workflows reference it.
- **enable / disable**: the scheduling state, always its own change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gitsync import dag
from gitsync.errors import PlanRefused
from gitsync.model import Dependency, Task, Tree, Workflow

REPLACE_SUFFIX = "__gitsync_replace"
LOCK_PREFIX = "__gitsync_lock__"
MASS_DELETE_COUNT = 10
MASS_DELETE_SHARE = 0.30

Path_ = tuple[str, ...]

# Listing order: deletions first, so nobody misses them; then everything else.
KINDS = (
    "delete_flow",
    "cleanup",
    "conflict",
    "create_dir",
    "create_flow",
    "replace_flow",
    "move_flow",
    "update_flow",
    "enable",
    "disable",
)


@dataclass(frozen=True)
class RemoteFlow:
    id: int
    workflow: Workflow  # directory relative to the owned root
    managed: bool


@dataclass(frozen=True)
class RemoteState:
    """The owned subtree as read, plus what planning needs to know about the rest."""

    root: Path_  # the owned root, from the top "Workflow" directory
    dirs: Mapping[Path_, str]  # every directory path from the top -> id ("" top = ())
    flows: tuple[RemoteFlow, ...]  # flows inside the owned root
    outside: Mapping[str, str]  # name -> location of flows outside the root
    flow_ids: Mapping[str, int]  # every flow of the org by name
    referrers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # in-root links
    extensions: bool = False  # the bundled engine: it keeps ``local`` commands too


@dataclass(frozen=True)
class Change:
    kind: str
    path: Path_  # from the owned root; a directory's path for create_dir
    lines: tuple[str, ...] = ()
    note: str = ""
    desired: Workflow | None = None
    flow_id: int | None = None

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()
    owned: int = 0

    @property
    def has_changes(self) -> bool:
        return any(c.kind != "conflict" for c in self.changes) or self.has_conflicts

    @property
    def has_conflicts(self) -> bool:
        return any(c.kind == "conflict" for c in self.changes)

    def count(self, *kinds: str) -> int:
        return sum(1 for c in self.changes if c.kind in kinds)

    def listed(self) -> list[Change]:
        return sorted(self.changes, key=lambda c: (KINDS.index(c.kind), c.path))


# -- comparing two workflows in the file's own terms ------------------------------------


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


def _view(wf: Workflow, with_local: bool) -> dict[str, Any]:
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
        "tasks": {t.name: _task_view(t, with_local) for t in wf.tasks},
    }


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
    lines = list(_compare(_view(actual, with_local), _view(desired, with_local), ()))
    before, after = [t.name for t in actual.tasks], [t.name for t in desired.tasks]
    if set(before) == set(after) and before != after:
        lines.append(f"task order: {', '.join(before)} -> {', '.join(after)}")
    return sorted(lines)


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


def _body(task: Task, with_local: bool = False) -> Task:
    return replace(task, depends_on=(), local=task.local if with_local else None)


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


def _same(actual: Workflow, desired: Workflow, with_local: bool = False) -> bool:
    strip = [t if with_local else replace(t, local=None) for t in desired.tasks]
    a = replace(actual, schedule=replace(actual.schedule, enabled=False))
    d = replace(desired, tasks=tuple(strip), schedule=replace(desired.schedule, enabled=False))
    return a == d


# -- the plan ------------------------------------------------------------------------


def compute(
    desired: Tree, state: RemoteState, prune: bool = False, allow_mass_delete: bool = False
) -> Plan:
    changes: list[Change] = []
    notes: list[str] = []
    actual = {f.workflow.name: f for f in state.flows}
    wanted = {w.name: w for w in desired.workflows}

    for name, flow in sorted(actual.items()):
        if name.endswith(REPLACE_SUFFIX) and flow.managed:
            changes.append(
                Change(
                    "cleanup",
                    flow.workflow.path,
                    flow_id=flow.id,
                    note="left over by an interrupted replace; deleted first",
                )
            )

    for directory in sorted(desired.directories | {()}, key=lambda p: (len(p), p)):
        full = (*state.root, *directory)
        for i in range(1, len(full) + 1):
            if full[:i] not in state.dirs and not any(
                c.kind == "create_dir" and c.path == full[:i] for c in changes
            ):
                changes.append(Change("create_dir", full[:i]))

    for name, wf in sorted(wanted.items()):
        current = actual.get(name)
        if current is None:
            if name in state.outside:
                changes.append(
                    Change(
                        "conflict",
                        wf.path,
                        desired=wf,
                        note=(
                            f"a workflow named '{name}' already exists outside the owned root, at "
                            f"{state.outside[name]}; gitsync will not touch it. Rename one of them."
                        ),
                    )
                )
                continue
            changes.append(Change("create_flow", wf.path, desired=wf))
            if wf.schedule.enabled:
                changes.append(Change("enable", wf.path, desired=wf))
            continue
        adopting = "" if current.managed else "adopts a workflow made outside gitsync; "
        if not _same(current.workflow, wf, state.extensions):
            lines = tuple(differences(current.workflow, wf, state.extensions))
            reasons = replace_reasons(current.workflow, wf, state.extensions)
            if reasons:
                kind = "move_flow" if current.workflow.directory != wf.directory else "replace_flow"
                blockers = state.referrers.get(name, ())
                warning = ""
                if blockers:
                    warning = (
                        f" The Delete will be refused (62104) while {', '.join(blockers)} "
                        "reference it; the new copy then stays as "
                        f"'{name}{REPLACE_SUFFIX}' until that is resolved."
                    )
                note = (
                    f"{adopting}replace: Import a new copy, then Delete the old one, because "
                    + "; ".join(reasons)
                    + ". The workflow gets new flow and task ids; its "
                    "run history stays with the old id." + warning
                )
                changes.append(Change(kind, wf.path, lines, note, wf, current.id))
                if wf.schedule.enabled:
                    changes.append(Change("enable", wf.path, desired=wf))
                continue
            changes.append(
                Change(
                    "update_flow",
                    wf.path,
                    lines,
                    adopting.rstrip("; ").capitalize(),
                    wf,
                    current.id,
                )
            )
        if current.workflow.schedule.enabled != wf.schedule.enabled:
            kind = "enable" if wf.schedule.enabled else "disable"
            changes.append(Change(kind, wf.path, desired=wf, flow_id=current.id))

    deletions = []
    for name, flow in sorted(actual.items()):
        if name in wanted or (name.endswith(REPLACE_SUFFIX) and flow.managed):
            continue
        where = "/".join(flow.workflow.path)
        if not flow.managed:
            notes.append(f"{where}: not managed by gitsync (no ownership marker); left alone")
        elif prune:
            deletions.append(Change("delete_flow", flow.workflow.path, flow_id=flow.id))
        else:
            notes.append(f"{where}: no file for it; `--prune` would delete it")
    owned = sum(
        1 for f in state.flows if f.managed and not f.workflow.name.endswith(REPLACE_SUFFIX)
    )
    if deletions and not allow_mass_delete:
        too_many = len(deletions) > MASS_DELETE_COUNT
        too_large = owned and len(deletions) / owned > MASS_DELETE_SHARE
        if too_many or too_large or len(deletions) == owned:
            raise PlanRefused(
                f"the plan would delete {len(deletions)} of the {owned} workflows gitsync owns "
                f"here (the limit is {MASS_DELETE_COUNT}, and at most "
                f"{int(MASS_DELETE_SHARE * 100)}% and never all); if that is really what you "
                "want, run again with --allow-mass-delete"
            )
    changes.extend(deletions)

    if prune:
        used = {
            (*state.root, *w.directory[:i])
            for w in desired.workflows
            for i in range(len(w.directory) + 1)
        }
        for path in sorted(state.dirs):
            inside = path[: len(state.root)] == state.root and len(path) > len(state.root)
            if (
                inside
                and path not in used
                and not any(
                    (*state.root, *f.workflow.directory)[: len(path)] == path
                    for f in state.flows
                    if f.workflow.name in wanted or not f.managed
                )
            ):
                notes.append(
                    f"directory {'/'.join(path)} is empty but the service has no "
                    "operation to delete directories: remove it in the console"
                )
    return Plan(tuple(changes), tuple(notes), owned)


def creation_order(workflows: list[Workflow]) -> list[Workflow]:
    """Upstream workflows before the ones that reference them (Import checks references)."""
    names = [w.name for w in workflows]
    ups = {w.name: [d.flow for t in w.tasks for d in t.depends_on if d.flow] for w in workflows}
    try:
        order = dag.topological_order(names, ups)
    except ValueError:
        order = names
    by_name = {w.name: w for w in workflows}
    return [by_name[n] for n in order]
