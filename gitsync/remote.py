"""The service side: read the owned subtree, and apply a Plan to it safely.

The reconcile loop, in order, and what each step guarantees:

1. **Lock** the target: an empty workflow named ``__gitsync_lock__<root>`` is imported into the
   owned root. Import refuses a second flow of that name, so two applies cannot both hold it;
   its description says who holds it and since when. Released by deleting it.
2. **Read** (List Workflow Directories, then Export of every flow in the root, concurrently).
3. **Plan** (``plan.compute``): pure, from the files and what was read.
4. **Apply**, continuing past failures, several writes at once (the target's
   ``concurrency``), each change waiting only for the changes it needs (applying.py):
   a. delete what an interrupted replace left behind (``<name>__gitsync_replace``);
   b. create directories, parents first;
   c. import new workflows and replacements, upstream workflows first; a replacement is
      imported under a temporary name, the old flow retired (paused, renamed
      ``<name>__retired_<id>``, kept with its runs), the copy renamed by Save; a renamed file
      is one Save of the old flow under the new name;
   d. save updates, adoptions and re-points (Load For Edit gives the ids Save needs), after
      the imports of the workflows they reference;
   e. enable / disable scheduling, after the workflow's own import or save; skipped when
      its import failed;
   f. with ``--prune`` only, retire managed flows that have no file (paused, renamed, kept);
      delete retired copies past their retention, referrers first.
   A change the plan marks blocked (guards.py: no right to edit, referrers, a run in
   progress) is not sent, nor is any change that waits for it; just before a change that
   disturbs runs, the flow's runs are looked at again (inspection.RunGuard).
   A failure leaves extra workflows (a copy, an old version), never a missing one, and the
   next run's plan removes or redoes exactly what is left. Ctrl-C starts no new write and
   waits for those in flight, so that the lock is released with nothing left running.
5. **Unlock**, whatever happened.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gitsync import answers, applying
from gitsync.applying import ApplyResult as ApplyResult  # what apply returns
from gitsync.applying import ensure_directory
from gitsync.client import Client
from gitsync.codec import flow_struct, marker
from gitsync.collecting import collecting_rarely
from gitsync.errors import AnswerError, CodecError, GitsyncError, LockError, RemoteError
from gitsync.model import Workflow
from gitsync.plan import LOCK_PREFIX, Path_, Plan, RemoteFlow, RemoteState
from gitsync.plan_types import Rights
from gitsync.protocol import Code
from gitsync.steps import Progress, no_progress


def lock_name(root: Path_, tag: str = "") -> str:
    """The lock of a root, or of one target's names in it (``tag``: naming.py), so that
    targets sharing a root never wait for each other."""
    return LOCK_PREFIX + ".".join(root) + (f"@{tag}" if tag else "")


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


def _is_lock(node: _FlowNode, root: Path_) -> bool:
    """Any target's lock in this root: ``<lock>`` or ``<lock>@<tag>``."""
    lock = lock_name(root)
    return node.name == lock or node.name.startswith(lock + "@")


def _read_flow(client: Client, flow_id: int) -> tuple[dict[str, Any], int, Rights | None]:
    """Export, and Get Flow only where Export lacks the scheduling state (real EnOS): that one
    answer also states the caller's rights, which the guards need for changed flows."""
    struct = client.export_flow(flow_id)
    active, rights, what = struct.get("active"), None, "Export Flow: active"
    if active is None:  # Get Flow documents it: a missing one is an answer not understood
        detail = client.get_flow(flow_id)
        active, rights, what = detail.get("active"), Rights.of(detail), "Get Flow: active"
    elif "hasEditPri" in struct:  # the engine's extension states the rights too
        rights = Rights.of(struct)
    state = answers.integer(active, what)
    if state not in (0, 1):
        raise AnswerError(
            f"{what}: the service answered a number where the API documents 0 or 1",
            operation=what.split(":")[0],
        )
    return struct, state, rights


def read_state(client: Client, root: Path_, progress: Progress = no_progress) -> RemoteState:
    dirs, nodes = _walk(client.list_workflow_directories())
    inside = [n for n in nodes if n.directory[: len(root)] == root and not _is_lock(n, root)]
    outside = {
        n.name: "Workflow/" + "/".join(n.directory)
        for n in nodes
        if n.directory[: len(root)] != root
    }
    total = len(inside)

    def fetch(node: _FlowNode) -> tuple[dict[str, Any], int, Rights | None]:
        return _read_flow(client, node.id)

    def decode(
        node: _FlowNode, struct: dict[str, Any], active: int, rights: Rights | None
    ) -> RemoteFlow:
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
        retired = marker.retirement(str(struct.get("desc") or ""))
        if retired is not None and not marker.is_retired_copy(node.name, node.id, retired):
            return RemoteFlow(node.id, wf, True, None, rights)  # renamed by hand: not a copy
        return RemoteFlow(node.id, wf, marker.is_managed(struct), retired, rights)

    # the threads only wait on the network; decoding happens here, as answers arrive, so they
    # do not take turns at the GIL with it
    flows_read = []
    with (
        collecting_rarely(),
        ThreadPoolExecutor(max_workers=max(1, client.max_concurrency)) as pool,
    ):
        try:
            for done, (node, (struct, active, rights)) in enumerate(
                zip(inside, pool.map(fetch, inside), strict=True), start=1
            ):
                flows_read.append(decode(node, struct, active, rights))
                progress("reading", done, total)
        except BaseException:  # a flow that cannot be read, or Ctrl-C: no more requests
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    flows = tuple(flows_read)
    return RemoteState(
        root=root,
        dirs=dirs,
        flows=flows,
        outside=outside,
        flow_ids={n.name: n.id for n in nodes},
        referrers=_referrers(flows),
        extensions=client.is_engine,
    )


def _referrers(flows: tuple[RemoteFlow, ...]) -> dict[str, tuple[str, ...]]:
    """Upstream workflow name -> the names of the flows read that reference it."""
    referrers: dict[str, list[str]] = {}
    for flow in flows:
        for up in sorted({d.flow for t in flow.workflow.tasks for d in t.depends_on if d.flow}):
            referrers.setdefault(up, []).append(flow.workflow.name)
    return {k: tuple(v) for k, v in referrers.items()}


# -- the lock ----------------------------------------------------------------------


def _ensure_dirs(client: Client, dirs: dict[Path_, str], path: Path_) -> str:
    for i in range(1, len(path) + 1):
        if path[:i] not in dirs:
            dirs[path[:i]] = ensure_directory(client, dirs[path[: i - 1]], path[i - 1])
    return dirs[path]


LOCK_TRIES = 3  # imports of the lock, when each is refused and the lock is gone by the read


def acquire_lock(client: Client, root: Path_, owner: str, now: dt.datetime, tag: str = "") -> int:
    """Take the target's lock or raise LockError saying who holds it and since when."""
    dirs, _ = _walk(client.list_workflow_directories())
    root_id = _ensure_dirs(client, dirs, root)
    name = lock_name(root, tag)
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lock = Workflow(name=name, description=f"gitsync apply lock held by {owner} since {stamp}")
    for attempt in range(1, LOCK_TRIES + 1):
        try:
            return client.import_flow(name, root_id, flow_struct.flow_struct_from_workflow(lock))
        except RemoteError as e:
            # refused: whether another apply holds the lock is read, not guessed from the words
            if e.code != Code.BAD_PARAMETER:
                raise
            held = lock_holder(client, root, now, tag)
            if held is not None:
                raise LockError(
                    f"another apply holds the lock of this target: {held}. If no apply is "
                    "running (it was killed), run `gitsync apply --force-unlock`."
                ) from None
            if attempt == LOCK_TRIES:
                raise
            # gone by the read: its holder released it in between, so it is free: take it
    raise AssertionError("unreachable: the last try returns or raises")


def lock_holder(client: Client, root: Path_, now: dt.datetime, tag: str = "") -> str | None:
    """Who holds the lock and since when; None when no one does (any more: an apply that
    ends releases it, between the search and the export too)."""
    name = lock_name(root, tag)
    lock_id = client.find_flow_id(name)
    if lock_id is None:
        return None
    try:
        desc = str(client.export_flow(lock_id).get("desc", ""))
    except RemoteError as e:
        if e.code == Code.BAD_PARAMETER and client.find_flow_id(name) is None:
            return None
        raise
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


def force_unlock(client: Client, root: Path_, tag: str = "") -> bool:
    lock_id = client.find_flow_id(lock_name(root, tag))
    if lock_id is None:
        return False
    client.delete_flow(lock_id)
    return True


# -- applying ----------------------------------------------------------------------


def apply(
    client: Client,
    plan: Plan,
    state: RemoteState,
    progress: Progress = no_progress,
    result: ApplyResult | None = None,
    runs: applying.RunCheck | None = None,
) -> ApplyResult:
    """Step 4 of the module docstring: concurrently, each change waiting only for the changes
    it needs (applying.py); never stops early on a failed change. Outcomes go into ``result``
    as they come, so that a caller interrupted part-way (Ctrl-C, SIGTERM) can still say what
    was done; they are in the plan's order whenever apply returns or raises."""
    return applying.apply(client, plan, state, progress, result, runs)
