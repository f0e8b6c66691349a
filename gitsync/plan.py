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

from collections.abc import Mapping
from dataclasses import dataclass, field

from gitsync import dag, diff
from gitsync.changes import Kind
from gitsync.errors import PlanRefused
from gitsync.model import Tree, Workflow

REPLACE_SUFFIX = "__gitsync_replace"
LOCK_PREFIX = "__gitsync_lock__"
MASS_DELETE_COUNT = 10
MASS_DELETE_SHARE = 0.30

Path_ = tuple[str, ...]


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
    kind: Kind
    path: Path_  # from the owned root; a directory's path for create_dir
    lines: tuple[str, ...] = ()
    note: str = ""
    desired: Workflow | None = None
    flow_id: int | None = None
    blocked: str = ""  # why apply will not send it (guards.py); "" when it will

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
        return any(c.kind != Kind.CONFLICT for c in self.changes) or self.has_conflicts

    @property
    def has_conflicts(self) -> bool:
        return any(c.kind == Kind.CONFLICT for c in self.changes)

    def count(self, *kinds: str) -> int:
        return sum(1 for c in self.changes if c.kind in kinds)

    def listed(self) -> list[Change]:
        return sorted(self.changes, key=lambda c: (c.kind.order, c.path))


# -- the plan ------------------------------------------------------------------------


def compute(
    desired: Tree, state: RemoteState, prune: bool = False, allow_mass_delete: bool = False
) -> Plan:
    """The changes that make ``state`` match ``desired``, and notes on what is left alone."""
    actual = {f.workflow.name: f for f in state.flows}
    wanted = {w.name: w for w in desired.workflows}
    changes = [*_cleanups(actual), *_directories(desired, state)]
    for name, wf in sorted(wanted.items()):
        changes.extend(_flow_changes(wf, actual.get(name), state))
    deletions, notes = _deletions(actual, wanted, prune)
    owned = _owned(state)
    if deletions and not allow_mass_delete:
        _guard_mass_delete(len(deletions), owned)
    changes.extend(deletions)
    if prune:
        notes.extend(_empty_directories(desired, state, wanted))
    return Plan(tuple(changes), tuple(notes), owned)


def _leftover(name: str, flow: RemoteFlow) -> bool:
    """A copy an interrupted replace left behind."""
    return name.endswith(REPLACE_SUFFIX) and flow.managed


def _cleanups(actual: Mapping[str, RemoteFlow]) -> list[Change]:
    return [
        Change(
            Kind.CLEANUP,
            flow.workflow.path,
            flow_id=flow.id,
            note="left over by an interrupted replace; deleted first",
        )
        for name, flow in sorted(actual.items())
        if _leftover(name, flow)
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


def _flow_changes(wf: Workflow, current: RemoteFlow | None, state: RemoteState) -> list[Change]:
    """Create, replace, move or update one workflow, and switch its scheduling."""
    if current is None:
        if wf.name in state.outside:
            return [_conflict(wf, state.outside[wf.name])]
        created = [Change(Kind.CREATE_FLOW, wf.path, desired=wf)]
        return created + ([Change(Kind.ENABLE, wf.path, desired=wf)] if wf.schedule.enabled else [])
    adopting = "" if current.managed else "adopts a workflow made outside gitsync; "
    out: list[Change] = []
    if not diff.same(current.workflow, wf, state.extensions):
        lines = tuple(diff.differences(current.workflow, wf, state.extensions))
        reasons = diff.replace_reasons(current.workflow, wf, state.extensions)
        if reasons:
            out.append(_replacement(wf, current, state, lines, adopting + _why(reasons)))
            return out + ([Change(Kind.ENABLE, wf.path, desired=wf)] if wf.schedule.enabled else [])
        note = adopting.rstrip("; ").capitalize()
        out.append(Change(Kind.UPDATE_FLOW, wf.path, lines, note, wf, current.id))
    if current.workflow.schedule.enabled != wf.schedule.enabled:
        kind = Kind.ENABLE if wf.schedule.enabled else Kind.DISABLE
        out.append(Change(kind, wf.path, desired=wf, flow_id=current.id))
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


def _why(reasons: list[str]) -> str:
    return (
        "replace: Import a new copy, then Delete the old one, because "
        + "; ".join(reasons)
        + ". The workflow gets new flow and task ids; its run history stays with the old id."
    )


def _replacement(
    wf: Workflow, current: RemoteFlow, state: RemoteState, lines: tuple[str, ...], note: str
) -> Change:
    kind = Kind.MOVE_FLOW if current.workflow.directory != wf.directory else Kind.REPLACE_FLOW
    blockers = state.referrers.get(wf.name, ())
    if blockers:
        note += (
            f" The Delete will be refused (62104) while {', '.join(blockers)} reference it; "
            f"the new copy then stays as '{wf.name}{REPLACE_SUFFIX}' until that is resolved."
        )
    return Change(kind, wf.path, lines, note, wf, current.id)


def _deletions(
    actual: Mapping[str, RemoteFlow], wanted: Mapping[str, Workflow], prune: bool
) -> tuple[list[Change], list[str]]:
    """Deletions (with ``prune``) of managed flows that have no file; notes for the rest."""
    deletions, notes = [], []
    for name, flow in sorted(actual.items()):
        if name in wanted or _leftover(name, flow):
            continue
        where = "/".join(flow.workflow.path)
        if not flow.managed:
            notes.append(f"{where}: not managed by gitsync (no ownership marker); left alone")
        elif prune:
            deletions.append(Change(Kind.DELETE_FLOW, flow.workflow.path, flow_id=flow.id))
        else:
            notes.append(f"{where}: no file for it; `--prune` would delete it")
    return deletions, notes


def _owned(state: RemoteState) -> int:
    return sum(1 for f in state.flows if f.managed and not f.workflow.name.endswith(REPLACE_SUFFIX))


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
    """Directories of the owned root that nothing will be in: a note each (no API deletes)."""
    used = {
        (*state.root, *w.directory[:i])
        for w in desired.workflows
        for i in range(len(w.directory) + 1)
    }
    kept = [
        (*state.root, *f.workflow.directory)
        for f in state.flows
        if f.workflow.name in wanted or not f.managed
    ]
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
