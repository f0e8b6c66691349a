"""The service side: read the owned subtree, and apply a Plan to it safely.

The reconcile loop, in order, and what each step guarantees:

1. **Lock** the target: an empty workflow named ``__gitsync_lock__<root>`` is imported into the
   owned root. Import refuses a second flow of that name, so two applies cannot both hold it;
   its description says who holds it and since when. Released by deleting it.
2. **Read** (List Workflow Directories, then Export of every flow in the root, concurrently).
3. **Plan** (``plan.compute``): pure, from the files and what was read.
4. **Apply**, continuing past failures:
   a. delete what an interrupted replace left behind (``<name>__gitsync_replace``);
   b. create directories, parents first;
   c. import new workflows and replacements, upstream workflows first; a replacement is
      imported under a temporary name, the old flow deleted, the copy renamed by Save;
   d. save updates (Load For Edit gives the ids Save needs);
   e. enable / disable scheduling;
   f. with ``--prune`` only, delete managed flows that have no file, referrers first.
   A failure leaves extra workflows (a copy, an old version), never a missing one, and the
   next run's plan removes or redoes exactly what is left.
5. **Unlock**, whatever happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from gitsync import answers
from gitsync.client import Client
from gitsync.codec import edit_view, flow_struct, marker
from gitsync.errors import CodecError, GitsyncError, LockError, RemoteError
from gitsync.model import Workflow
from gitsync.plan import (
    LOCK_PREFIX,
    REPLACE_SUFFIX,
    Change,
    Path_,
    Plan,
    RemoteFlow,
    RemoteState,
    creation_order,
)
from gitsync.protocol import Code

Progress = Callable[[str, int, int], None]


def _noop(label: str, done: int, total: int) -> None:
    return None


def lock_name(root: Path_) -> str:
    return LOCK_PREFIX + ".".join(root)


# -- reading -----------------------------------------------------------------------


@dataclass(frozen=True)
class _FlowNode:
    id: int
    name: str
    directory: Path_  # from the top


def _walk(tree: list[dict[str, Any]]) -> tuple[dict[Path_, str], list[_FlowNode]]:
    """Directories (path -> id) and flows of List Workflow Directories' tree, every field
    checked: the answer is untrusted input."""
    what = "List Workflow Directories"
    if not tree:
        raise RemoteError(f"{what} returned no 'Workflow' directory")
    dirs: dict[Path_, str] = {}
    flows: list[_FlowNode] = []
    stack: list[tuple[dict[str, Any], Path_]] = [(tree[0], ())]
    while stack:
        node, path = stack.pop()
        dirs[path] = answers.text(node.get("key"), f"{what}: key")
        for child in answers.objects(node.get("children") or [], f"{what}: children"):
            title = answers.text(child.get("title"), f"{what}: title")
            if child.get("isDirectory"):
                stack.append((child, (*path, title)))
            else:
                flows.append(
                    _FlowNode(answers.integer(child.get("key"), f"{what}: key"), title, path)
                )
    return dirs, flows


def read_state(client: Client, root: Path_, progress: Progress = _noop) -> RemoteState:
    dirs, nodes = _walk(client.list_workflow_directories())
    lock = lock_name(root)
    inside = [n for n in nodes if n.directory[: len(root)] == root and n.name != lock]
    outside = {
        n.name: "Workflow/" + "/".join(n.directory)
        for n in nodes
        if n.directory[: len(root)] != root
    }
    total = len(inside)

    def fetch(node: _FlowNode) -> tuple[dict[str, Any], int]:
        struct = client.export_flow(node.id)
        active = struct.get("active")
        if active is None:  # real EnOS: Export has no scheduling state
            active = client.get_flow(node.id).get("active", 0)
        return struct, answers.integer(active, "Export Flow or Get Flow: active")

    def decode(node: _FlowNode, struct: dict[str, Any], active: int) -> RemoteFlow:
        relative = node.directory[len(root) :]
        try:
            wf = flow_struct.workflow_from_flow_struct(
                struct, name=node.name, directory=relative, active=active
            )
        except CodecError as e:
            raise GitsyncError(
                f"remote workflow Workflow/{'/'.join(node.directory)}/"
                f"{node.name} cannot be read: {e}"
            ) from None
        return RemoteFlow(node.id, wf, marker.is_managed(struct))

    # the threads only wait on the network; decoding happens here, as answers arrive, so they
    # do not take turns at the GIL with it
    flows_read = []
    with ThreadPoolExecutor(max_workers=max(1, client.max_concurrency)) as pool:
        try:
            for done, (node, (struct, active)) in enumerate(
                zip(inside, pool.map(fetch, inside), strict=True), start=1
            ):
                flows_read.append(decode(node, struct, active))
                progress("reading", done, total)
        except BaseException:  # a flow that cannot be read, or Ctrl-C: no more requests
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    flows = tuple(flows_read)
    referrers: dict[str, list[str]] = {}
    for flow in flows:
        for up in sorted({d.flow for t in flow.workflow.tasks for d in t.depends_on if d.flow}):
            referrers.setdefault(up, []).append(flow.workflow.name)
    return RemoteState(
        root=root,
        dirs=dirs,
        flows=flows,
        outside=outside,
        flow_ids={n.name: n.id for n in nodes},
        referrers={k: tuple(v) for k, v in referrers.items()},
        extensions=client.is_engine,
    )


# -- the lock ----------------------------------------------------------------------


def ensure_directory(client: Client, parent_id: str, name: str) -> str:
    """Create a directory, or take the one of that name that appeared meanwhile (another
    apply, a person in the console): either way the directory exists afterwards."""
    try:
        return client.create_directory(parent_id, name)
    except RemoteError as e:
        if e.code != Code.BAD_PARAMETER or "already exists" not in e.message:
            raise
        existing = client.find_directory(parent_id, name)
        if existing is None:
            raise
        return existing


def _ensure_dirs(client: Client, dirs: dict[Path_, str], path: Path_) -> str:
    for i in range(1, len(path) + 1):
        if path[:i] not in dirs:
            dirs[path[:i]] = ensure_directory(client, dirs[path[: i - 1]], path[i - 1])
    return dirs[path]


def acquire_lock(client: Client, root: Path_, owner: str, now: dt.datetime) -> int:
    """Take the target's lock or raise LockError saying who holds it and since when."""
    dirs, _ = _walk(client.list_workflow_directories())
    root_id = _ensure_dirs(client, dirs, root)
    name = lock_name(root)
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flow_json = {
        "cycle": "D",
        "cron": "",
        "type": 0,
        "tasks": [],
        "relations": [],
        "flowLinks": [],
        "taskLinks": [],
        "linkRelations": [],
        "parameters": "[]",
        "owners": "",
        "visitors": "",
        "alertMode": 0,
        "syncType": 1,
        "startTime": "1970-01-01",
        "desc": f"gitsync apply lock held by {owner} since {stamp}",
    }
    try:
        return client.import_flow(name, root_id, flow_json)
    except RemoteError as e:
        if e.code != Code.BAD_PARAMETER or "already exists" not in e.message:
            raise
    held = describe_lock(client, root, now)
    raise LockError(
        f"another apply holds the lock of this target: {held}. If no apply is "
        "running (it was killed), run `gitsync apply --force-unlock`."
    )


def describe_lock(client: Client, root: Path_, now: dt.datetime) -> str:
    lock_id = client.find_flow_id(lock_name(root))
    if lock_id is None:
        return "(released meanwhile)"
    desc = str(client.export_flow(lock_id).get("desc", ""))
    text = desc.removeprefix("gitsync apply lock held by ")
    owner, _, since = text.rpartition(" since ")
    try:
        started = dt.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        minutes = int((now - started).total_seconds() // 60)
        return f"{owner} since {since} ({minutes} minutes ago)"
    except ValueError:
        return desc or "unknown holder"


def release_lock(client: Client, lock_id: int) -> None:
    client.delete_flow(lock_id)


def force_unlock(client: Client, root: Path_) -> bool:
    lock_id = client.find_flow_id(lock_name(root))
    if lock_id is None:
        return False
    client.delete_flow(lock_id)
    return True


# -- applying ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    change: Change
    ok: bool
    message: str = ""


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


class _Applier:
    def __init__(
        self, client: Client, state: RemoteState, progress: Progress, result: ApplyResult
    ) -> None:
        self.client = client
        self.state = state
        self.progress = progress
        self.dirs = dict(state.dirs)
        self.flow_ids = dict(state.flow_ids)
        self.broken: set[str] = set()  # flows whose create/replace failed
        self.result = result
        self.done = 0
        self.total = 0

    def run(self, change: Change, action: Callable[[Change], str]) -> None:
        try:
            message = action(change)
            self.result.outcomes.append(Outcome(change, True, message))
        except GitsyncError as e:
            if change.kind in ("create_flow", "replace_flow", "move_flow") and change.desired:
                self.broken.add(change.desired.name)
            self.result.outcomes.append(Outcome(change, False, str(e)))
        self.done += 1
        self.progress("applying", self.done, self.total)

    def dir_id(self, wf: Workflow) -> str:
        path = (*self.state.root, *wf.directory)
        if path not in self.dirs:
            raise GitsyncError(f"directory {'/'.join(path)} was not created")
        return self.dirs[path]

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

    def create_flow(self, change: Change) -> str:
        wf = change.desired
        assert wf is not None
        flow_id = self.client.import_flow(
            wf.name, self.dir_id(wf), flow_struct.managed_flow_struct(wf, self.state.extensions)
        )
        self.flow_ids[wf.name] = flow_id
        return f"imported as flow {flow_id}"

    def replace_flow(self, change: Change) -> str:
        wf = change.desired
        assert wf is not None and change.flow_id is not None
        temp = wf.name + REPLACE_SUFFIX
        new_id = self.client.import_flow(
            temp,
            self.dir_id(wf),
            flow_struct.managed_flow_struct(replace(wf, name=temp), self.state.extensions),
        )
        try:
            self.client.delete_flow(change.flow_id)
        except RemoteError as e:
            if e.code == Code.IN_USE:
                raise GitsyncError(
                    f"the new copy was imported as '{temp}' (flow {new_id}), but the old "
                    f"workflow cannot be deleted while other workflows reference it ({e.code}); "
                    "remove those references, then apply again"
                ) from None
            raise
        self._save(wf, new_id, active=0)
        self.flow_ids[wf.name] = new_id
        return f"replaced: flow {change.flow_id} -> {new_id}"

    def _save(self, wf: Workflow, flow_id: int, active: int | None = None) -> None:
        graph = edit_view.graph_from_detail(self.client.load_flow_for_edit(flow_id))
        try:
            body = edit_view.save_body(wf, graph, self.flow_ids, active)
        except CodecError as e:
            raise GitsyncError(f"cannot be saved: {e}") from None
        self.client.save_flow(body)

    def update_flow(self, change: Change) -> str:
        wf = change.desired
        assert wf is not None and change.flow_id is not None
        self._save(wf, change.flow_id)
        return "saved"

    def switch(self, change: Change) -> str:
        wf = change.desired
        assert wf is not None
        if wf.name in self.broken:
            raise GitsyncError("skipped: creating or replacing it failed")
        flow_id = self.flow_ids[wf.name]
        if change.kind == "enable":
            self.client.enable_flow(flow_id)
            return "scheduling started"
        self.client.disable_flow(flow_id)
        return "scheduling paused"

    def delete_flow(self, change: Change) -> str:
        assert change.flow_id is not None
        self.client.delete_flow(change.flow_id)
        return "deleted"


def _conflict(change: Change) -> str:
    raise GitsyncError(change.note)


def apply(
    client: Client,
    plan: Plan,
    state: RemoteState,
    progress: Progress = _noop,
    result: ApplyResult | None = None,
) -> ApplyResult:
    """Carry out ``plan`` in the safe order of the module docstring; never stops early on a
    failed change. Outcomes go into ``result`` as they come, so that a caller interrupted
    part-way (Ctrl-C, SIGTERM) can still say what was done."""
    applier = _Applier(client, state, progress, result or ApplyResult())
    by_kind: dict[str, list[Change]] = {}
    for change in plan.changes:
        by_kind.setdefault(change.kind, []).append(change)
    applier.total = len(plan.changes)
    for change in by_kind.get("conflict", []):
        applier.run(change, _conflict)
    for change in by_kind.get("cleanup", []):
        applier.run(change, applier.cleanup)
    for change in sorted(by_kind.get("create_dir", []), key=lambda c: (len(c.path), c.path)):
        applier.run(change, applier.create_dir)
    imports = [c for k in ("create_flow", "replace_flow", "move_flow") for c in by_kind.get(k, [])]
    by_name = {c.desired.name: c for c in imports if c.desired}
    for wf in creation_order([c.desired for c in imports if c.desired]):
        change = by_name[wf.name]
        applier.run(
            change, applier.create_flow if change.kind == "create_flow" else applier.replace_flow
        )
    for change in by_kind.get("update_flow", []):
        applier.run(change, applier.update_flow)
    for change in by_kind.get("enable", []) + by_kind.get("disable", []):
        applier.run(change, applier.switch)
    for change in reversed(_delete_order(by_kind.get("delete_flow", []), state)):
        applier.run(change, applier.delete_flow)
    return applier.result


def _delete_order(deletions: list[Change], state: RemoteState) -> list[Change]:
    """Upstreams first, so that reversed the referrers go first."""
    by_name = {c.path[-1]: c for c in deletions}
    flows = [f.workflow for f in state.flows if f.workflow.name in by_name]
    return [by_name[w.name] for w in creation_order(flows)]
