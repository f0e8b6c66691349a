"""Desired Tree x remote state -> a Plan of Changes. Pure: no I/O, no clock.

Workflows are matched by name (names are unique in a tree and per owner in the service), so
a workflow whose directory changed is a move, not a delete and a create.

What the service can change in place (SPEC §3.7) decides the kind of change:

- **update**: Save Flow: description, owners, visitors, alert, parameters, cycle, cron,
  start date, the edges between tasks, references to whole workflows, removing tasks.
- **rename**: a file renamed in its directory (found by its task bodies, or named by
  ``renamed_from``): one Save of the old flow under the new name; ids and runs stay.
- **replace**: Import a new copy, retire the old one (disabled, renamed
  ``<name>__retired_<id>``, marked with its successor), rename the copy. Needed for new
  tasks, changed task bodies (command, timeout, retries, run mode, ...), a new task
  reference, sync_type, the schedule type, and moves. The retired copy keeps the run history
  until its retention (gitsync.yaml) ends; owned workflows that reference it are re-pointed
  (**repoint**, a Save) to the new copy in the same apply; referrers outside the owned root
  are named and never changed, and keep the retired copy alive (plan_retired.py).
- **enable / disable**: the scheduling state, always its own change.
- **no file** (listed, never applied) a managed workflow without a file; with ``--prune``
  it is **retired** instead. Retired copies past their retention are deleted.
- **adopt**: a workflow made outside gitsync that matches its file gets the marker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace

from gitsync import dag, diff, plan_history, plan_renamed_from, plan_retired
from gitsync.changes import Kind
from gitsync.codec import marker
from gitsync.errors import PlanRefused
from gitsync.model import Tree, Workflow
from gitsync.plan_history import LOCK_PREFIX, REPLACE_SUFFIX, Source
from gitsync.plan_retired import Retention
from gitsync.plan_types import Change, FieldChange, Path_, Plan, RemoteFlow, RemoteState

__all__ = [
    "LOCK_PREFIX",
    "REPLACE_SUFFIX",
    "Change",
    "Path_",
    "Plan",
    "RemoteFlow",
    "RemoteState",
    "Retention",
]
Lines = tuple[str, ...]
Fields = tuple[FieldChange, ...]
MASS_DELETE_COUNT = 10
MASS_DELETE_SHARE = 0.30

# -- the plan ------------------------------------------------------------------------


def compute(
    desired: Tree,
    state: RemoteState,
    prune: bool = False,
    allow_mass_delete: bool = False,
    retention: Retention | None = None,
    now: dt.datetime | None = None,
    guess_renames: bool = True,
) -> Plan:
    """The changes that make ``state`` match ``desired``, and notes on what is left alone.
    Retired copies past ``retention`` are deleted only when ``now`` is given. Without
    ``guess_renames`` only ``renamed_from`` says a file was renamed (for a tree of one
    workflow, where every other one would look like it lost its file)."""
    live = {f.workflow.name: f for f in state.flows if f.retired is None}
    wanted = {w.name: w for w in desired.workflows}
    checked = plan_renamed_from.check(wanted, live)
    renames = _renames(live, wanted, guess_renames)
    successors = {
        f.workflow.name: f.retired.successor
        for f in state.flows
        if f.retired is not None and f.retired.successor in wanted
    }
    changes = [*_cleanups(live, renames.used), *_directories(desired, state)]
    each = _each_workflow(wanted, live, renames, state, successors, {})
    follow = _in_place_renames(each)
    if follow:  # referrers that only follow those renames need no change
        each = _each_workflow(wanted, live, renames, state, successors, follow)
    changes.extend(each)
    repoints, notes = plan_history.repoints(changes, live, wanted, state)
    changes.extend(repoints)
    deletions, more = plan_history.without_files(live, wanted, renames.used, prune)
    notes = [*checked, *renames.notes, *notes, *more]
    owned = _owned(state)
    if deletions and not allow_mass_delete:
        _guard_mass_delete(sum(1 for c in deletions if c.kind == Kind.RETIRE), owned)
    changes.extend(deletions)
    notes.extend(plan_history.stale_names(changes, wanted))
    notes.extend(plan_retired.outside_notes(changes, state))
    expired, kept = plan_retired.retention_deletes(state, retention or Retention(), now)
    changes.extend(expired)
    notes.extend(kept)
    if prune:
        notes.extend(_empty_directories(desired, state, wanted))
    return Plan(tuple(changes), tuple(dict.fromkeys(notes)), owned)  # each note once


_leftover = plan_history.leftover


def _each_workflow(
    wanted: Mapping[str, Workflow],
    live: Mapping[str, RemoteFlow],
    renames: plan_history.Renames,
    state: RemoteState,
    successors: Mapping[str, str],
    follow: plan_history.Follow,
) -> list[Change]:
    out: list[Change] = []
    for name, wf in sorted(wanted.items()):
        if name in renames.sources:
            out.extend(_renamed(wf, renames.sources[name], state, successors, follow))
        else:
            out.extend(_flow_changes(wf, live.get(name), state, successors, follow))
    return out


def _in_place_renames(changes: list[Change]) -> dict[str, tuple[str, Mapping[str, str]]]:
    """Old flow name -> its new name and task renames, for the Saves that rename a flow or
    its tasks in place (the ids stay, so references to them stay too)."""
    return {
        (c.renamed_from or c.path[-1]): (c.path[-1], dict(c.task_renames))
        for c in changes
        if c.kind == Kind.RENAME or (c.kind == Kind.UPDATE_FLOW and c.task_renames)
    }


def _references(wf: Workflow) -> set[tuple[str, str, str, bool]]:
    return {(t.name, d.flow, d.task, d.rerun) for t in wf.tasks for d in t.depends_on if d.flow}


def _as_followed(remote: Workflow, wf: Workflow, follow: plan_history.Follow) -> Workflow:
    """The remote workflow with references under the names this plan renames them to,
    unless the file still names them as they were (then it is stale, and noted)."""
    moved = plan_history.following(remote, follow)
    if moved is remote or _references(remote) == _references(wf) != _references(moved):
        return remote
    return moved


def _renames(
    live: Mapping[str, RemoteFlow], wanted: Mapping[str, Workflow], guess: bool
) -> plan_history.Renames:
    orphans = [
        (f.id, f.workflow)
        for name, f in sorted(live.items())
        if f.managed and name not in wanted and not _leftover(name, f)
    ]
    leftovers = {
        name.removesuffix(REPLACE_SUFFIX): (f.id, f.workflow)
        for name, f in live.items()
        if _leftover(name, f) and name.removesuffix(REPLACE_SUFFIX) not in live
    }
    return plan_history.find_renames(wanted, orphans, leftovers, set(live), guess)


def _cleanups(actual: Mapping[str, RemoteFlow], used: set[str]) -> list[Change]:
    return [
        Change(
            Kind.CLEANUP,
            flow.workflow.path,
            flow_id=flow.id,
            note="left over by an interrupted replace; deleted first",
        )
        for name, flow in sorted(actual.items())
        if _leftover(name, flow) and name not in used
    ]


def _directories(desired: Tree, state: RemoteState) -> list[Change]:
    """Every missing directory on the way to each desired one, parents first."""
    missing: list[Path_] = []
    for directory in sorted(desired.directories | {()}, key=lambda p: (len(p), p)):
        full = (*state.root, *directory)
        for i in range(1, len(full) + 1):
            if full[:i] not in state.dirs and full[:i] not in missing:
                missing.append(full[:i])
    return [Change(Kind.CREATE_DIR, path) for path in missing]


def _flow_changes(
    wf: Workflow,
    current: RemoteFlow | None,
    state: RemoteState,
    successors: Mapping[str, str],
    follow: plan_history.Follow,
) -> list[Change]:
    """Create, replace, move, update, re-point or adopt one workflow, and switch its
    scheduling."""
    if current is None:
        if wf.name in state.outside:
            return [_conflict(wf, state.outside[wf.name])]
        created = [Change(Kind.CREATE_FLOW, wf.path, desired=wf)]
        return created + ([Change(Kind.ENABLE, wf.path, desired=wf)] if wf.schedule.enabled else [])
    adopting = "" if current.managed else "adopts a workflow made outside gitsync; "
    moved = _as_followed(current.workflow, wf, follow)
    remote = plan_history.followed(moved, successors)
    out: list[Change] = []
    if not diff.same(remote, wf, state.extensions):
        remote, renames = _task_renames(remote, wf, current.id)
        found, fields = diff.compare(remote, wf, state.extensions)
        lines = tuple(found)
        reasons = diff.replace_reasons(remote, wf, state.extensions)
        if reasons:
            change = _replacement(wf, current, lines, adopting, reasons, fields)
            out.append(replace(change, current=remote))
            return out + ([Change(Kind.ENABLE, wf.path, desired=wf)] if wf.schedule.enabled else [])
        note = adopting.rstrip("; ").capitalize()
        lines = (*(f"task renamed: {o} -> {n}" for o, n in renames), *lines)
        fields = (*diff.renamed_tasks(renames), *fields)
        out.append(
            Change(
                Kind.UPDATE_FLOW,
                wf.path,
                lines,
                note,
                wf,
                current.id,
                task_renames=renames,
                current=remote,
                fields=fields,
            )
        )
    elif remote is not moved:
        out.append(_repoint(wf, moved, current.id, successors))
    elif not current.managed:
        note = "made outside gitsync and the same as its file: Save adds the ownership marker"
        out.append(
            Change(Kind.ADOPT, wf.path, note=note, desired=wf, flow_id=current.id, current=remote)
        )
    if current.workflow.schedule.enabled != wf.schedule.enabled:
        kind = Kind.ENABLE if wf.schedule.enabled else Kind.DISABLE
        out.append(Change(kind, wf.path, desired=wf, flow_id=current.id))
    return out


def _task_renames(
    remote: Workflow, wf: Workflow, flow_id: int
) -> tuple[Workflow, tuple[tuple[str, str], ...]]:
    """The remote workflow with its tasks under their new names, when the only task changes
    are renames (the same bodies under other names: Save renames tasks in place)."""
    if len(remote.tasks) == len(wf.tasks) and all(wf.task(t.name) == t for t in remote.tasks):
        return remote, ()  # the usual update: the same tasks under the same names
    names = plan_history.task_names(remote, wf)
    renames = tuple((o, n) for o, n in (names or {}).items() if o != n)
    if not renames or names is None:
        return remote, ()
    source = Source(remote.name, flow_id, remote, names, True)
    return plan_history.renamed(wf, source), renames


def _repoint(wf: Workflow, remote: Workflow, flow_id: int, successors: Mapping[str, str]) -> Change:
    retired = sorted({d.flow for t in remote.tasks for d in t.depends_on if d.flow in successors})
    lines = tuple(f"references {old} -> {successors[old]}" for old in retired)
    fields = diff.changed_fields(remote, plan_history.followed(remote, successors))
    note = "it references retired copies; Save points it at their successors"
    return Change(Kind.REPOINT, wf.path, lines, note, wf, flow_id, current=remote, fields=fields)


def _renamed(
    wf: Workflow,
    source: Source,
    state: RemoteState,
    successors: Mapping[str, str],
    follow: plan_history.Follow,
) -> list[Change]:
    """A new file that continues the remote workflow ``source``: one Save renames it in
    place, or, when Save cannot make the change, a replace of it under the new name."""
    if wf.name in state.outside:
        return [_conflict(wf, state.outside[wf.name])]
    if state.flow_ids.get(wf.name, source.flow_id) != source.flow_id:
        taken = f"another workflow of the organization (flow {state.flow_ids[wf.name]}) is named"
        return [replace(_conflict(wf, ""), note=f"{taken} '{wf.name}'; rename the file")]
    moved = _as_followed(plan_history.renamed(wf, source), wf, follow)
    remote = plan_history.followed(moved, successors)
    task_renames = tuple((o, n) for o, n in source.tasks.items() if o != n)
    how = "named by renamed_from" if source.explicit else "same task bodies"
    if source.name.endswith(REPLACE_SUFFIX):
        how = "the copy an interrupted replace left; its old version is already retired"
    lines = (
        f"renamed from {source.name} ({how})",
        *(f"task renamed: {o} -> {n}" for o, n in task_renames),
        *diff.differences(remote, wf, state.extensions),
    )
    fields = diff.renamed(source.name, wf.name, task_renames, remote, wf, state.extensions)
    reasons = diff.replace_reasons(remote, wf, state.extensions)
    if reasons and source.name.endswith(REPLACE_SUFFIX):  # a copy with no history: redo it
        return [
            *_cleanups({source.name: RemoteFlow(source.flow_id, source.workflow, True)}, set()),
            *_flow_changes(wf, None, state, successors, follow),
        ]
    if reasons:
        current = RemoteFlow(source.flow_id, source.workflow, True)
        change = _replacement(wf, current, lines, "", reasons, fields)
        change = replace(change, renamed_from=source.name, current=remote)
        enable = [Change(Kind.ENABLE, wf.path, desired=wf)] if wf.schedule.enabled else []
        return [change, *enable]
    note = "Save renames it in place: same flow id, task ids and run history"
    out = [
        Change(
            Kind.RENAME,
            wf.path,
            lines,
            note,
            wf,
            source.flow_id,
            renamed_from=source.name,
            task_renames=task_renames,
            current=remote,
            fields=fields,
        )
    ]
    if source.workflow.schedule.enabled != wf.schedule.enabled:
        kind = Kind.ENABLE if wf.schedule.enabled else Kind.DISABLE
        out.append(Change(kind, wf.path, desired=wf, flow_id=source.flow_id))
    return out


def _conflict(wf: Workflow, where: str) -> Change:
    return Change(
        Kind.CONFLICT,
        wf.path,
        desired=wf,
        note=(
            f"a workflow named '{wf.name}' already exists outside the owned root, at "
            f"{where}; gitsync will not touch it. Rename one of them."
        ),
    )


def _replacement(
    wf: Workflow, current: RemoteFlow, lines: Lines, why: str, reasons: list[str], fields: Fields
) -> Change:
    kind = Kind.MOVE_FLOW if current.workflow.directory != wf.directory else Kind.REPLACE_FLOW
    reason = "; ".join(reasons)
    why += "replace: Import a new copy, retire the old one (disabled, renamed, kept with its run "
    why += f"history), then rename the copy, because {reason}. The workflow gets new flow and "
    why += f"task ids. The old one becomes '{marker.retired_name(wf.name, current.id)}'."
    return Change(kind, wf.path, lines, why, wf, current.id, fields=fields, reason=reason)


def _owned(state: RemoteState) -> int:
    return sum(
        1
        for f in state.flows
        if f.managed and f.retired is None and not f.workflow.name.endswith(REPLACE_SUFFIX)
    )


def _guard_mass_delete(count: int, owned: int) -> None:
    too_many = count > MASS_DELETE_COUNT
    too_large = owned and count / owned > MASS_DELETE_SHARE
    if too_many or too_large or count == owned:
        raise PlanRefused(
            f"the plan would delete {count} of the {owned} workflows gitsync owns "
            f"here (the limit is {MASS_DELETE_COUNT}, and at most "
            f"{int(MASS_DELETE_SHARE * 100)}% and never all); if that is really what you "
            "want, run again with --allow-mass-delete"
        )


def _empty_directories(
    desired: Tree, state: RemoteState, wanted: Mapping[str, Workflow]
) -> list[str]:
    """Directories of the owned root that nothing will be in: a note each (no API deletes).
    A flow that moves or loses its file stays where it was, retired, so only directories
    already empty are named."""
    used = {
        (*state.root, *w.directory[:i])
        for w in desired.workflows
        for i in range(len(w.directory) + 1)
    }
    kept = [(*state.root, *f.workflow.directory) for f in state.flows]  # retired ones stay
    notes = []
    for path in sorted(state.dirs):
        inside = path[: len(state.root)] == state.root and len(path) > len(state.root)
        if inside and path not in used and not any(k[: len(path)] == path for k in kept):
            notes.append(
                f"directory {'/'.join(path)} is empty but the service has no "
                "operation to delete directories: remove it in the console"
            )
    return notes


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
