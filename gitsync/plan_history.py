"""The parts of planning that keep history: which new file is a renamed workflow, which
references name a retired copy instead of its successor, which owned referrers follow a
replace (retired copies and their retention: plan_retired.py). Pure, like plan.py, which
uses them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from gitsync.changes import Kind
from gitsync.codec import marker
from gitsync.model import Dependency, Task, Workflow
from gitsync.plan_types import Change, RemoteFlow, RemoteState

REPLACE_SUFFIX = "__gitsync_replace"
LOCK_PREFIX = "__gitsync_lock__"


def reserved(name: str) -> str | None:
    """Why a workflow name is one gitsync makes itself (a retired copy, the copy of a
    replace, the apply lock), so no file may have it; None for any other name."""
    stem, infix, tail = name.rpartition(marker.RETIRED_INFIX)
    if stem and infix and tail.isdigit():
        return f"'{name}' has the form <name>{marker.RETIRED_INFIX}<id> of a retired copy"
    if name.endswith(REPLACE_SUFFIX):
        return f"'{name}' ends with {REPLACE_SUFFIX}, the copy a replace imports"
    if name.startswith(LOCK_PREFIX):
        return f"'{name}' starts with {LOCK_PREFIX}, the apply lock"
    return None


def leftover(name: str, flow: RemoteFlow) -> bool:
    """A copy an interrupted replace left behind."""
    return name.endswith(REPLACE_SUFFIX) and flow.managed


@dataclass(frozen=True)
class Source:
    """The remote workflow a new file continues, and its tasks' new names (old -> new)."""

    name: str
    flow_id: int
    workflow: Workflow
    tasks: Mapping[str, str]
    explicit: bool


@dataclass
class Renames:
    sources: dict[str, Source] = field(default_factory=dict)  # new name -> where it was
    notes: list[str] = field(default_factory=list)

    @property
    def used(self) -> set[str]:
        return {s.name for s in self.sources.values()}


def _body(task: Task) -> Task:
    return replace(task, name="", depends_on=(), local=None)


def task_names(old: Workflow, new: Workflow) -> dict[str, str] | None:
    """Old task name -> new, when ``new`` has the same task bodies as ``old`` (the same names,
    or some under other names: task renames); None when the bodies differ."""
    if sorted(map(repr, map(_body, old.tasks))) != sorted(map(repr, map(_body, new.tasks))):
        return None
    mapping = {
        t.name: t.name
        for t in old.tasks
        if (same := new.task(t.name)) is not None and _body(same) == _body(t)
    }
    free = [t for t in new.tasks if t.name not in mapping.values()]
    for task in old.tasks:
        if task.name in mapping:
            continue
        match = next((n for n in free if _body(n) == _body(task)), None)
        if match is None:
            return None
        mapping[task.name] = match.name
        free.remove(match)
    return mapping


def renamed(wf: Workflow, source: Source) -> Workflow:
    """The remote workflow as it is, under the new names (flow and tasks), to compare."""
    names = source.tasks

    def dep(d: Dependency) -> Dependency:
        return replace(d, task=names.get(d.task, d.task)) if d.is_local else d

    tasks = tuple(
        replace(
            t,
            name=names.get(t.name, t.name),
            depends_on=tuple(sorted(map(dep, t.depends_on), key=_dep_key)),
        )
        for t in source.workflow.tasks
    )
    return replace(source.workflow, name=wf.name, tasks=tasks)


def _dep_key(d: Dependency) -> tuple[bool, str, str, bool]:
    return (not d.is_local, d.flow, d.task, d.rerun)


def find_renames(
    wanted: Mapping[str, Workflow],
    orphans: Sequence[tuple[int, Workflow]],
    leftovers: Mapping[str, tuple[int, Workflow]],
    taken: set[str],
    guess: bool = True,
) -> Renames:
    """Which new files continue a remote workflow that lost its file (``orphans``: managed,
    no file): named by ``renamed_from``, or found as the one orphan in the same directory with
    the same task bodies. A copy an interrupted replace left (``leftovers``: real name ->
    copy) whose old version is already retired continues under the real name."""
    out = Renames()
    by_name = {wf.name: (flow_id, wf) for flow_id, wf in orphans}
    new = [wf for name, wf in sorted(wanted.items()) if name not in taken]
    for wf in new:
        if wf.name in leftovers:
            flow_id, copy = leftovers[wf.name]
            same = {t.name: t.name for t in copy.tasks}
            out.sources[wf.name] = Source(copy.name, flow_id, copy, same, True)
        elif wf.renamed_from:
            if wf.renamed_from in by_name:
                flow_id, old = by_name.pop(wf.renamed_from)
                names = task_names(old, wf) or {t.name: t.name for t in old.tasks}
                out.sources[wf.name] = Source(old.name, flow_id, old, names, True)
            elif wf.renamed_from not in taken:
                out.notes.append(
                    f"{'/'.join(wf.path)}: renamed_from '{wf.renamed_from}' names no managed "
                    "workflow without a file; it is created"
                )
    guesses: dict[str, list[tuple[Workflow, dict[str, str]]]] = {}
    for wf in new if guess else []:
        if wf.name in out.sources or wf.renamed_from:
            continue
        for _, old in by_name.values():
            matched = task_names(old, wf) if old.directory == wf.directory and old.tasks else None
            if matched is not None:
                guesses.setdefault(wf.name, []).append((old, matched))
    claims: dict[str, list[str]] = {}
    for name, found in guesses.items():
        for old, _ in found:
            claims.setdefault(old.name, []).append(name)
    for name, found in sorted(guesses.items()):
        if len(found) == 1 and len(claims[found[0][0].name]) == 1:
            old, names = found[0]
            out.sources[name] = Source(old.name, by_name[old.name][0], old, names, False)
        else:
            olds = sorted({old.name for old, _ in found} | set(_claimed(claims, name)))
            out.notes.append(
                f"{'/'.join(wanted[name].path)}: could be a rename of {', '.join(olds)}; "
                "gitsync does not guess: add `renamed_from: <old name>` to the file to keep "
                "that workflow's history, else it is created anew"
            )
    return out


def _claimed(claims: Mapping[str, list[str]], name: str) -> list[str]:
    return [old for old, names in claims.items() if name in names]


# -- references to retired copies -------------------------------------------------------


def followed(wf: Workflow, successors: Mapping[str, str]) -> Workflow:
    """``wf`` with references to a retired copy naming its successor instead: what they
    will point at once re-pointed (a Save), so that this is no task-reference change."""
    if not successors or not any(
        d.flow in successors for t in wf.tasks for d in t.depends_on if d.flow
    ):
        return wf
    tasks = tuple(
        replace(
            t,
            depends_on=tuple(
                sorted(
                    (replace(d, flow=successors.get(d.flow, d.flow)) for d in t.depends_on),
                    key=_dep_key,
                )
            ),
        )
        for t in wf.tasks
    )
    return replace(wf, tasks=tasks)


Follow = Mapping[str, tuple[str, Mapping[str, str]]]  # old flow name -> new, task renames


def following(wf: Workflow, follow: Follow) -> Workflow:
    """``wf`` with its references to workflows renamed in place in this plan (flow or task
    names) under their new names: what the service shows once those Saves ran, since it
    keeps references by id."""
    if not any(d.flow in follow for t in wf.tasks for d in t.depends_on):
        return wf

    def dep(d: Dependency) -> Dependency:
        if d.flow not in follow:
            return d
        new, tasks = follow[d.flow]
        return replace(d, flow=new, task=tasks.get(d.task, d.task) if d.task else "")

    tasks = tuple(
        replace(t, depends_on=tuple(sorted(map(dep, t.depends_on), key=_dep_key))) for t in wf.tasks
    )
    return replace(wf, tasks=tasks)


# -- changes that follow from the others --------------------------------------------


def repoints(
    changes: list[Change],
    live: Mapping[str, RemoteFlow],
    wanted: Mapping[str, Workflow],
    state: RemoteState,
) -> tuple[list[Change], list[str]]:
    """A re-point of every owned referrer of a workflow being replaced that has no change of
    its own (a change of its own points at the new copy anyway)."""
    replaced = {
        (c.renamed_from or c.name.rpartition("/")[2]): c
        for c in changes
        if c.kind in (Kind.REPLACE_FLOW, Kind.MOVE_FLOW)
    }
    busy = {c.path[-1] for c in changes if c.desired is not None and c.kind != Kind.CONFLICT}
    busy |= {c.renamed_from for c in changes if c.renamed_from}
    out: dict[str, Change] = {}
    notes = []
    for old, change in sorted(replaced.items()):
        successor = change.path[-1]
        for referrer in sorted(set(state.referrers.get(old, ()))):  # one note each
            flow = live.get(referrer)
            if flow is None or referrer in busy or referrer in out:
                continue
            if referrer not in wanted:
                notes.append(
                    f"{'/'.join(flow.workflow.path)}: no file for it; it keeps pointing at "
                    f"the retired copy of {old}"
                )
                continue
            line = f"references {old} -> the new copy of {successor}"
            note = f"Save points it at the new copy of {successor}, after its replace"
            out[referrer] = Change(
                Kind.REPOINT,
                flow.workflow.path,
                (line,),
                note,
                wanted[referrer],
                flow.id,
                current=flow.workflow,
            )
    return list(out.values()), notes


def stale_names(changes: list[Change], wanted: Mapping[str, Workflow]) -> list[str]:
    """A note for each file that references, by its old name, a workflow this plan renames,
    or one that has no file: the reference keeps its flow (by id) but the file is stale."""
    gone = {c.renamed_from: f"renamed to {c.path[-1]}" for c in changes if c.renamed_from}
    gone.update(
        {c.path[-1]: "without a file" for c in changes if c.kind in (Kind.NO_FILE, Kind.RETIRE)}
    )
    notes = []
    for _, wf in sorted(wanted.items()):
        for up in sorted({d.flow for t in wf.tasks for d in t.depends_on if d.flow} & set(gone)):
            notes.append(
                f"{'/'.join(wf.path)}: references {up}, which is {gone[up]} in this plan; "
                "change its depends_on"
            )
    return notes


def without_files(
    live: Mapping[str, RemoteFlow], wanted: Mapping[str, Workflow], used: set[str], prune: bool
) -> tuple[list[Change], list[str]]:
    """Managed flows that have no file: listed (a change that is never sent), retired with
    ``prune``; notes for the unmanaged ones."""
    out, notes = [], []
    for name, flow in sorted(live.items()):
        if name in wanted or name in used or leftover(name, flow):
            continue
        where = "/".join(flow.workflow.path)
        if not flow.managed:
            notes.append(f"{where}: not managed by gitsync (no ownership marker); left alone")
            continue
        enabled = flow.workflow.schedule.enabled
        firing = (
            "enabled: it keeps firing on its schedule"
            if enabled and flow.workflow.schedule.type == "periodic"
            else ("enabled" if enabled else "disabled")
        )
        kind = Kind.RETIRE if prune else Kind.NO_FILE
        if prune:
            retired = marker.retired_name(name, flow.id)
            note = f"no file for it ({firing}); kept, paused, as '{retired}'"
        else:
            note = f"no file for it; {firing}. `--prune` retires it"
        path = flow.workflow.path
        out.append(Change(kind, path, note=note, flow_id=flow.id, current=flow.workflow))
    return out, notes
