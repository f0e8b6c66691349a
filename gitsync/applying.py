"""Apply a Plan: the writes of each change, and which change waits for which.

Independent changes are sent concurrently (the target's ``concurrency``, 8 by default), and
each change waits only for the changes it needs (steps.py runs them):

- a directory waits for its parent;
- an import (create, replace, move) or a rename (one Save of the old flow under the new
  name) waits for its directory, for the clean-up of a copy an
  interrupted replace left under its temporary name, and for the imports, renames and
  task-renaming updates of the workflows it references (Import checks references);
- an update, adopt or re-point (Load For Edit, Save) waits for the same (Save needs their
  new ids and names); an update that renames tasks runs with the imports, upstream first;
- an enable or disable waits for the import or update of its own workflow, and is skipped if
  the import failed;
- a retire (``--prune``) waits for nothing: referrers keep pointing at the flow by id;
- a delete (a retired copy past its retention) waits for every change of the workflows that
  reference it, remotely or in the files, and for the deletes of its referrers.
A workflow without a file (``no file``) is never sent.

A replace is one change whose writes run in order on one thread: import the copy under a
temporary name, retire the old workflow (one Save: paused, renamed ``<name>__retired_<id>``,
marked with when and its successor), rename the copy by Save. Every wait points from an
earlier change to a later one in the order the changes would run one at a time (clean-ups,
directories parents first, imports and renames upstream first, updates, adopts, re-points,
enables and disables, retires, deletes referrers first), so there is never a cycle, and that
order is also the order in which ready changes are started. Outcomes are reported in the
plan's listed order, whatever order the changes ended in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

from gitsync import guards, steps
from gitsync.changes import Kind
from gitsync.client import Client
from gitsync.codec import edit_view, flow_struct, marker
from gitsync.errors import CodecError, GitsyncError, RemoteError
from gitsync.model import Workflow
from gitsync.plan import REPLACE_SUFFIX, Change, Path_, Plan, RemoteState, creation_order
from gitsync.protocol import Code


class RunCheck(Protocol):
    """Looks at the runs of a flow before a change disturbs them (inspection.RunGuard)."""

    def before(self, change: Change) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Outcome:
    change: Change
    ok: bool
    message: str = ""
    held: bool = False  # not sent: blocked, or waiting for a change that was held back


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


def ensure_directory(client: Client, parent_id: str, name: str) -> str:
    """Create a directory, or take the one of that name that appeared meanwhile (another
    apply, a person in the console): either way the directory exists afterwards."""
    try:
        return client.create_directory(parent_id, name)
    except RemoteError as e:  # refused: whether it exists now is read, not guessed from words
        existing = client.find_directory(parent_id, name) if e.code == Code.BAD_PARAMETER else None
        if existing is None:
            raise
        return existing


def apply(
    client: Client,
    plan: Plan,
    state: RemoteState,
    progress: steps.Progress = steps.no_progress,
    result: ApplyResult | None = None,
    runs: RunCheck | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> ApplyResult:
    """Carry out ``plan`` as the module docstring says; never stops at a failed change.
    A blocked change is not sent, nor is any change that waits for it; ``runs`` looks at the
    runs a change would disturb just before it is sent (inspection.RunGuard).
    Outcomes go into ``result`` as changes end; when apply returns, or raises (Ctrl-C), they
    are in the plan's listed order and include every change that was started. ``now`` dates
    the retirements."""
    result = ApplyResult() if result is None else result
    writer = _Writer(client, state, now, runs.before if runs is not None else None)
    order = _run_order(plan, state)
    waits = _waits(order, state)
    held = guards.held_back(order, waits)  # blocked, and what waits for them: never sent
    position = {id(c): i for i, c in enumerate(plan.listed())}

    def ended(index: int, outcome: Outcome) -> None:
        result.outcomes.append(outcome)
        progress("applying", len(result.outcomes), len(order))

    plan_steps = [
        steps.Step(partial(writer.attempt, change, held.get(i, "")), after)
        for i, (change, after) in enumerate(zip(order, waits, strict=True))
    ]
    try:
        steps.run(plan_steps, client.max_concurrency, ended, runs.stop if runs else None)
    finally:
        result.outcomes.sort(key=lambda o: position.get(id(o.change), len(position)))
    return result


# -- which change waits for which ------------------------------------------------------------


def _run_order(plan: Plan, state: RemoteState) -> list[Change]:
    """The changes in the order they would run one at a time (the module docstring)."""
    sent = [c for c in plan.changes if c.kind.sent]  # blocked ones too: reported, not sent
    by_kind: dict[Kind, list[Change]] = {kind: [] for kind in Kind}
    for change in sent:
        by_kind[change.kind].append(change)
    imports = [c for c in sent if _renames_or_imports(c)]
    by_name = {c.desired.name: c for c in imports if c.desired}
    deleted = {c.path[-1]: c for c in by_kind[Kind.DELETE_FLOW]}
    old = [f.workflow for f in state.flows if f.workflow.name in deleted]
    order = [
        *by_kind[Kind.CONFLICT],
        *by_kind[Kind.CLEANUP],
        *sorted(by_kind[Kind.CREATE_DIR], key=lambda c: (len(c.path), c.path)),
        *(by_name[w.name] for w in creation_order([c.desired for c in imports if c.desired])),
        *(c for c in by_kind[Kind.UPDATE_FLOW] if not c.task_renames),
        *by_kind[Kind.ADOPT],
        *by_kind[Kind.REPOINT],
        *by_kind[Kind.ENABLE],
        *by_kind[Kind.DISABLE],
        *by_kind[Kind.RETIRE],
        *reversed([deleted[w.name] for w in creation_order(old)]),
    ]
    if len(order) != len(sent):  # a kind not placed above, a change lost: a bug
        raise RuntimeError("the plan's changes could not be put in the order of apply")
    return order


def _name(change: Change) -> str:
    return change.desired.name if change.desired else change.path[-1]


def _upstreams(wf: Workflow) -> set[str]:
    return {d.flow for t in wf.tasks for d in t.depends_on if d.flow}


def _renames_or_imports(change: Change) -> bool:
    """What a referrer's import or Save waits for: the upstream's new id or new names (an
    update that renames tasks is ordered with the imports, upstream first)."""
    kind = change.kind
    return (
        kind.imports
        or kind == Kind.RENAME
        or bool(kind == Kind.UPDATE_FLOW and change.task_renames)
    )


def _waits(order: list[Change], state: RemoteState) -> list[tuple[int, ...]]:
    """For each change, the indexes of the changes it waits for; only ever earlier ones."""
    mkdir = {c.path: i for i, c in enumerate(order) if c.kind == Kind.CREATE_DIR}
    cleanup = {c.path[-1]: i for i, c in enumerate(order) if c.kind == Kind.CLEANUP}
    imported = {_name(c): i for i, c in enumerate(order) if _renames_or_imports(c)}
    written = {_name(c): i for i, c in enumerate(order) if c.kind.imports or c.kind.saves}
    of_flow: dict[str, list[int]] = {}
    referrers: dict[str, set[str]] = {k: set(v) for k, v in state.referrers.items()}
    for i, change in enumerate(order):
        if change.kind not in (Kind.CONFLICT, Kind.CREATE_DIR, Kind.CLEANUP):
            of_flow.setdefault(_name(change), []).append(i)
        if change.desired is not None:
            for up in _upstreams(change.desired):
                referrers.setdefault(up, set()).add(change.desired.name)
    waits: list[tuple[int, ...]] = []
    for i, change in enumerate(order):
        found: list[int | None] = []
        if change.kind == Kind.CREATE_DIR:
            found.append(mkdir.get(change.path[:-1]))
        elif (change.kind.imports or change.kind == Kind.RENAME) and change.desired is not None:
            found.append(mkdir.get((*state.root, *change.desired.directory)))
            found.append(cleanup.get(change.desired.name + REPLACE_SUFFIX))
            found.extend(imported.get(up) for up in _upstreams(change.desired))
        elif change.kind.saves and change.desired is not None:  # update, adopt, re-point
            found.extend(imported.get(up) for up in _upstreams(change.desired))
        elif change.kind in (Kind.ENABLE, Kind.DISABLE):
            found.append(written.get(_name(change)))
        elif change.kind == Kind.DELETE_FLOW:
            for referrer in sorted(referrers.get(_name(change), ())):
                found.extend(of_flow.get(referrer, ()))
        waits.append(tuple(sorted({j for j in found if j is not None and j < i})))
    return waits


# -- the writes of each change ----------------------------------------------------------------


class _Writer:
    """The writes of one change at a time (of many at once, on several threads). Ids learnt
    on the way (new directories, imported flows) are kept for the changes that wait for them;
    a change reads them only after the change that wrote them has ended."""

    def __init__(
        self,
        client: Client,
        state: RemoteState,
        now: Callable[[], dt.datetime],
        before: Callable[[Change], None] | None = None,
    ) -> None:
        self.client = client
        self.before = before
        self.state = state
        self.now = now
        self.dirs = dict(state.dirs)
        self.flow_ids = dict(state.flow_ids)
        self.remote = {f.id: f for f in state.flows}
        self.broken: set[str] = set()  # flows whose create/replace failed
        self.actions: dict[Kind, Callable[[Change], str]] = {
            Kind.CONFLICT: self.conflict,
            Kind.CLEANUP: self.cleanup,
            Kind.CREATE_DIR: self.create_dir,
            Kind.CREATE_FLOW: self.create_flow,
            Kind.RENAME: self.rename_flow,
            Kind.REPLACE_FLOW: self.replace_flow,
            Kind.MOVE_FLOW: self.replace_flow,
            Kind.UPDATE_FLOW: self.update_flow,
            Kind.ADOPT: self.update_flow,
            Kind.REPOINT: self.update_flow,
            Kind.ENABLE: self.enable,
            Kind.DISABLE: self.disable,
            Kind.RETIRE: self.retire_flow,
            Kind.DELETE_FLOW: self.delete_flow,
        }

    def attempt(self, change: Change, held: str = "") -> Outcome:
        if held:
            if change.kind.imports and change.desired:
                self.broken.add(change.desired.name)
            return Outcome(change, False, held, held=True)
        try:
            if self.before is not None:
                self.before(change)
            return Outcome(change, True, self.actions[change.kind](change))
        except GitsyncError as e:
            if (change.kind.imports or change.kind == Kind.RENAME) and change.desired:
                self.broken.add(change.desired.name)
            return Outcome(change, False, str(e))

    def conflict(self, change: Change) -> str:
        raise GitsyncError(change.note)

    def cleanup(self, change: Change) -> str:
        assert change.flow_id is not None
        self.client.delete_flow(change.flow_id)
        return "deleted"

    def create_dir(self, change: Change) -> str:
        parent = self.dirs.get(change.path[:-1])
        if parent is None:
            raise GitsyncError("its parent directory was not created")
        self.dirs[change.path] = ensure_directory(self.client, parent, change.path[-1])
        return "created"

    def _dir_id(self, wf: Workflow) -> str:
        path: Path_ = (*self.state.root, *wf.directory)
        if path not in self.dirs:
            raise GitsyncError(f"directory {'/'.join(path)} was not created")
        return self.dirs[path]

    def create_flow(self, change: Change) -> str:
        wf = change.desired
        assert wf is not None
        flow_id = self.client.import_flow(
            wf.name, self._dir_id(wf), flow_struct.managed_flow_struct(wf, self.state.extensions)
        )
        self.flow_ids[wf.name] = flow_id
        return f"imported as flow {flow_id}"

    def replace_flow(self, change: Change) -> str:
        wf = change.desired
        assert wf is not None and change.flow_id is not None
        temp = wf.name + REPLACE_SUFFIX
        new_id = self.client.import_flow(
            temp,
            self._dir_id(wf),
            flow_struct.managed_flow_struct(replace(wf, name=temp), self.state.extensions),
        )
        retired = self._retire(change.flow_id, wf.name)
        self._save(wf, new_id, active=0)
        self.flow_ids[wf.name] = new_id
        return f"replaced: flow {change.flow_id} -> {new_id}; the old one is kept as '{retired}'"

    def _retire(self, flow_id: int, successor: str) -> str:
        """One Save: the flow paused, renamed, and marked as retired (when, successor)."""
        detail = self.client.load_flow_for_edit(flow_id)
        old = self.remote.get(flow_id)
        name = old.workflow.name if old else str(detail.get("flowName", flow_id))
        text = old.workflow.description if old else ""
        retired = marker.retired_name(successor or name, flow_id)  # kept as a version of it
        desc = marker.retired_description(text, self.now(), successor)
        try:
            self.client.save_flow(edit_view.retire_body(detail, retired, desc))
        except CodecError as e:
            raise GitsyncError(f"cannot be retired: {e}") from None
        return retired

    def retire_flow(self, change: Change) -> str:
        assert change.flow_id is not None
        return f"paused and kept as '{self._retire(change.flow_id, '')}'"

    def rename_flow(self, change: Change) -> str:
        wf = change.desired
        assert wf is not None and change.flow_id is not None
        self._save(wf, change.flow_id, renames=dict(change.task_renames))
        self.flow_ids[wf.name] = change.flow_id
        return f"renamed from {change.renamed_from} (flow {change.flow_id})"

    def _task_ids(self, wf: Workflow) -> dict[tuple[str, str], int]:
        """The current ids of the tasks ``wf`` references, from their flows' edit views
        (their flows may have been replaced in this apply)."""
        out: dict[tuple[str, str], int] = {}
        for flow in sorted({d.flow for t in wf.tasks for d in t.depends_on if d.task and d.flow}):
            flow_id = self.flow_ids.get(flow)
            if flow_id is None:
                continue
            graph = edit_view.graph_from_detail(self.client.load_flow_for_edit(flow_id))
            out.update({(flow, name): int(node["taskId"]) for name, node in graph.tasks.items()})
        return out

    def _save(
        self,
        wf: Workflow,
        flow_id: int,
        active: int | None = None,
        renames: dict[str, str] | None = None,
    ) -> None:
        graph = edit_view.graph_from_detail(self.client.load_flow_for_edit(flow_id))
        if renames:
            tasks: dict[str, Any] = {renames.get(k, k): v for k, v in graph.tasks.items()}
            graph = replace(graph, tasks=tasks)
        try:
            body = edit_view.save_body(wf, graph, self.flow_ids, active, self._task_ids(wf))
        except CodecError as e:
            raise GitsyncError(f"cannot be saved: {e}") from None
        self.client.save_flow(body)

    def update_flow(self, change: Change) -> str:
        wf = change.desired
        assert wf is not None and change.flow_id is not None
        self._save(wf, change.flow_id, renames=dict(change.task_renames))
        return {Kind.ADOPT: "marked as managed", Kind.REPOINT: "re-pointed"}.get(
            change.kind, "saved"
        )

    def _switch(self, change: Change) -> int:
        wf = change.desired
        assert wf is not None
        flow_id = self.flow_ids.get(wf.name)
        if wf.name in self.broken or flow_id is None:
            raise GitsyncError("skipped: creating or replacing it failed")
        return flow_id

    def enable(self, change: Change) -> str:
        self.client.enable_flow(self._switch(change))
        return "scheduling started"

    def disable(self, change: Change) -> str:
        self.client.disable_flow(self._switch(change))
        return "scheduling paused"

    def delete_flow(self, change: Change) -> str:
        """A retired copy past its retention. One that workflows outside the owned root
        still reference (62104) is kept, and marked held so that no later plan tries again."""
        assert change.flow_id is not None
        try:
            self.client.delete_flow(change.flow_id)
        except RemoteError as e:
            old = self.remote.get(change.flow_id)
            if e.code != Code.IN_USE or old is None or old.retired is None:
                raise
            info = old.retired
            desc = marker.retired_description(info.text, info.when, info.successor, held=True)
            detail = self.client.load_flow_for_edit(change.flow_id)
            self.client.save_flow(edit_view.retire_body(detail, old.workflow.name, desc))
            return "kept: workflows outside the owned root still reference it (62104); held"
        return "deleted"
