"""The reads behind guards.py, made only for the flows a plan changes, so that a plan without
changes reads nothing more than it did: the live runs of flows a change disturbs (List Flow
Instances), the caller's rights on flows a change writes (Get Flow), the target's time zone
when a schedule changes (Get Time Zone, once), the tasks of workflows outside the owned
root that a reference names (Export), and, only for a plan that retires or deletes a flow,
which flows outside the owned root reference which (Export of each). Also ``RunGuard``:
apply's look at a flow's runs just before it disturbs them, waiting for them or cancelling
them when told to.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from gitsync import answers, guards, references
from gitsync.client import Client
from gitsync.codec import flow_struct
from gitsync.codec.reader import Reader
from gitsync.errors import AnswerError, CodecError, GitsyncError, RemoteError, TransportError
from gitsync.guards import Facts, OnActiveRuns, Run
from gitsync.model import Tree
from gitsync.plan import LOCK_PREFIX, Change, Plan, RemoteState
from gitsync.plan_types import Rights
from gitsync.protocol import Code
from gitsync.statuses import LIVE_CODES
from gitsync.steps import Progress, no_progress

K = TypeVar("K")
V = TypeVar("V")

PAGE = 50
MAX_PAGES = 200  # a service that never ends a listing is not followed for ever
YEAR_MS = 366 * 86_400_000


def _each(client: Client, keys: Iterable[K], read: Callable[[K], V]) -> dict[K, V]:
    keys = list(keys)
    if not keys:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, client.max_concurrency)) as pool:
        return dict(zip(keys, pool.map(read, keys), strict=True))


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else answers.text(value, f"List Flow Instances: {key}")


def live_runs(
    client: Client, flow_id: int, name: str, flow_type: int | None, now_ms: int
) -> tuple[Run, ...]:
    """The waiting and running instances of one flow (List Flow Instances matches names
    loosely, so rows are kept by flow id). ``flow_type`` None: every scheduling type."""
    found: list[Run] = []
    for kind in (0, 1, 2) if flow_type is None else (flow_type,):
        for page in range(1, MAX_PAGES + 1):
            data = client.list_flow_instances(
                {
                    "type": kind,
                    "expression": name,
                    "owner": "",
                    "fromTriggerTime": 0,
                    "toTriggerTime": now_ms + YEAR_MS,
                    "status": LIVE_CODES,
                    "pagination": {"pageNo": page, "pageSize": PAGE},
                }
            )
            rows = answers.objects(data.get("flowInsts") or [], "List Flow Instances: flowInsts")
            found.extend(
                Run(
                    answers.text(row.get("instanceId"), "List Flow Instances: instanceId"),
                    _text(row, "statusDesc"),
                    _text(row, "startTime"),
                    _text(row, "triggerTime"),
                )
                for row in rows
                if _of_flow(row, flow_id, name)
            )
            if len(rows) < PAGE:
                break
    return tuple(sorted(found, key=lambda r: r.instance_id))


def _of_flow(row: Mapping[str, Any], flow_id: int, name: str) -> bool:
    """Whether a List Flow Instances row is of this flow: by id (a number, or a string of
    one), by name where the id is missing."""
    if row.get("flowId") is None:
        return bool(name) and row.get("flowName") == name
    try:
        return answers.integer(row.get("flowId"), "List Flow Instances: flowId") == flow_id
    except AnswerError:
        return False


def rights(client: Client, flow_id: int) -> Rights:
    return Rights.of(client.get_flow(flow_id))


def _known_rights(state: RemoteState) -> dict[int, Rights]:
    """Rights the plan's own reads stated (Get Flow on real EnOS, the engine's Export)."""
    return {f.id: f.rights for f in state.flows if f.rights is not None}


def _flow_type(state: RemoteState, flow_id: int) -> tuple[str, int | None]:
    for flow in state.flows:
        if flow.id == flow_id:
            schedule = flow.workflow.schedule.type
            return flow.workflow.name, flow_struct.SCHEDULE_TYPE_CODES.get(schedule)
    return "", None


def read_facts(client: Client, plan: Plan, state: RemoteState, now: dt.datetime) -> Facts:
    """What guards.guard needs, read for the flows that change only."""
    now_ms = int(now.timestamp() * 1000)

    def runs_of(flow_id: int) -> tuple[Run, ...]:
        name, flow_type = _flow_type(state, flow_id)
        return live_runs(client, flow_id, name, flow_type, now_ms)

    known = _known_rights(state)
    to_read = [i for i in guards.flows_to_check(plan) if i not in known]
    rights_of = _each(client, to_read, lambda i: rights(client, i))
    rights_of.update({i: known[i] for i in guards.flows_to_check(plan) if i in known})
    runs = _each(client, guards.runs_to_check(plan), runs_of)
    zone, zone_name = None, ""
    if guards.schedule_changes(plan, state):
        zone_name = client.get_time_zone()
        zone = guards.time_zone(zone_name)
        if zone is None:
            zone, zone_name = dt.UTC, f"UTC; the target's zone '{zone_name}' is not understood"
    return Facts(runs, rights_of, zone, zone_name, now)


def dangling(
    client: Client, plan: Plan, desired: Tree, state: RemoteState
) -> list[references.Dangling]:
    """References of the desired workflows that point nowhere (references.Dangling)."""
    tasks_of: dict[str, frozenset[str] | None] = {name: None for name in state.flow_ids}
    for flow in state.flows:
        tasks_of[flow.workflow.name] = frozenset(t.name for t in flow.workflow.tasks)
    for wf in desired.workflows:
        tasks_of[wf.name] = frozenset(t.name for t in wf.tasks)
    changing = [c.desired for c in plan.changes if c.desired is not None]
    unread = sorted(
        {
            d.flow
            for wf in changing
            for t in wf.tasks
            for d in t.depends_on
            if d.flow and d.task and d.flow in tasks_of and tasks_of[d.flow] is None
        }
    )
    tasks_of.update(_each(client, unread, lambda n: _tasks(client, n, state.flow_ids[n])))
    return references.find(desired.workflows, tasks_of)


def _tasks(client: Client, name: str, flow_id: int) -> frozenset[str] | None:
    try:
        struct = client.export_flow(flow_id)
        wf = flow_struct.workflow_from_flow_struct(struct, name=name)
    except CodecError:
        return None  # unreadable: the service judges the reference at apply
    return frozenset(t.name for t in wf.tasks)


def outside_referrers(
    client: Client, state: RemoteState, progress: Progress = no_progress
) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Upstream name -> the locations of the flows outside the owned root that reference it
    (flow or task references), from an Export of each, concurrently; a note for each flow that
    cannot be read (another target's lock has no references: it is not read)."""
    names = sorted(n for n in state.outside if n in state.flow_ids and _not_lock(n))

    def read(name: str) -> frozenset[str] | RemoteError | CodecError:
        try:
            return upstreams(client.export_flow(state.flow_ids[name]))
        except (RemoteError, CodecError) as e:  # one flow the service cannot give: a note
            return e

    found: dict[str, list[str]] = {}
    notes = []
    read_all = list(_reading(client, names, read, progress))
    failed = [(n, r) for n, r in read_all if isinstance(r, TransportError)]
    if failed and len(failed) == len(read_all):  # the service is not answering: no plan
        name, error = failed[0]
        where = _where(name, state.outside[name])
        raise TransportError(f"{where} (outside the owned root): {error}", error.code) from None
    for name, read_ in read_all:
        where = _where(name, state.outside[name])
        if not isinstance(read_, frozenset):
            notes.append(
                f"{where} (outside the owned root) cannot be read ({read_}); whether it "
                "references a workflow this plan retires or deletes is not known"
            )
            continue
        for upstream in read_:
            found.setdefault(upstream, []).append(where)
    return {k: tuple(sorted(v)) for k, v in found.items()}, notes


def _reading(
    client: Client, keys: list[K], read: Callable[[K], V], progress: Progress
) -> Iterator[tuple[K, V]]:
    """``_each`` as the answers come, saying how far it got; Ctrl-C sends no more requests."""
    with ThreadPoolExecutor(max_workers=max(1, client.max_concurrency)) as pool:
        try:
            for done, pair in enumerate(zip(keys, pool.map(read, keys), strict=True), start=1):
                progress("reading outside the root", done, len(keys))
                yield pair
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _not_lock(name: str) -> bool:
    return not name.startswith(LOCK_PREFIX)


def _where(name: str, location: str) -> str:
    """``Workflow/dir/name``; the reason another target's flow is not ours stays at the end."""
    path, paren, why = location.partition(" (")
    return f"{path}/{name}" + (f" ({why}" if paren else "")


def upstreams(struct: Any) -> frozenset[str]:
    """The names of the flows an Export answer references (its flow and task links); only the
    links are read, so a flow gitsync could not model otherwise still says what it uses."""
    r = Reader(struct, "flow")
    found = set()
    for kind in ("flowLinks", "taskLinks"):
        for i, link in enumerate(r.items(kind)):
            name = Reader(link, f"flow.{kind}[{i}]").text("sourceFlowName")
            if not name:
                raise CodecError(f"flow.{kind}[{i}].sourceFlowName: missing")
            found.add(name)
    return frozenset(found)


# -- apply: the runs, just before a change disturbs them -------------------------------------


@dataclass(frozen=True)
class RunPolicy:
    on_active_runs: OnActiveRuns = OnActiveRuns.STOP
    timeout: float = 30 * 60  # seconds, for all the waiting of one apply
    first_pause: float = 0.5  # the pauses between looks double up to ``longest_pause``
    longest_pause: float = 10.0


class RunGuard:
    """Called by apply before each change that disturbs runs: with no run left it returns at
    once; otherwise it refuses (``stop``), waits until they end (``wait``) or cancels them and
    waits until they have stopped (``cancel``), within one deadline for the whole apply.
    ``stop()`` (apply interrupted: Ctrl-C, SIGTERM) ends every wait at once."""

    def __init__(
        self,
        client: Client,
        state: RemoteState,
        policy: RunPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.client, self.state, self.policy = client, state, policy
        self._stopped = threading.Event()
        self.clock, self.wall_ms = clock, wall_ms
        self.sleep = sleep if sleep is not None else self._stopped.wait
        self.deadline = clock() + policy.timeout
        self.cancelled: set[str] = set()

    def stop(self) -> None:
        self._stopped.set()

    def _runs(self, flow_id: int) -> tuple[Run, ...]:
        name, flow_type = _flow_type(self.state, flow_id)
        return live_runs(self.client, flow_id, name, flow_type, self.wall_ms())

    def before(self, change: Change) -> None:
        if not change.kind.disturbs_runs or change.flow_id is None:
            return
        runs = self._runs(change.flow_id)
        if runs and self.policy.on_active_runs == OnActiveRuns.STOP:
            raise GitsyncError("held back: " + "; ".join(r.describe() for r in runs))
        pause = self.policy.first_pause
        while runs:
            if self.policy.on_active_runs == OnActiveRuns.CANCEL:
                self._cancel(runs)
            if self.clock() >= self.deadline:
                raise GitsyncError(
                    f"not made: still {'; '.join(r.describe() for r in runs)} after waiting "
                    f"{self.policy.timeout:g} s (--wait-timeout)"
                )
            self.sleep(min(pause, max(0.0, self.deadline - self.clock())))
            if self._stopped.is_set():
                raise GitsyncError("not made: apply was stopped while it waited for runs")
            pause = min(pause * 2, self.policy.longest_pause)
            runs = self._runs(change.flow_id)

    def _cancel(self, runs: Iterable[Run]) -> None:
        for run in runs:
            if run.instance_id in self.cancelled:
                continue
            self.cancelled.add(run.instance_id)
            try:
                self.client.cancel_flow_instance(run.instance_id)
            except RemoteError as e:  # it ended meanwhile: the next look says so
                if e.code != Code.BAD_PARAMETER:
                    raise
