"""What a reviewer must see before apply, and the changes apply must not send. Pure: a plan
and the facts inspection.py read -> the same plan, its changes annotated or ``blocked``.

A change is blocked (apply reports it as not done, with the reason, and exits 1) when:

- the user may not edit the workflow (Get Flow: ``hasEditPri`` false; for enable and
  disable also a locked workflow or user), which the service would refuse (62103);
- it deletes a workflow that others still reference and that are not changed away from it
  in this plan, which the service would refuse (62104), or retires one (``--prune``), which
  would leave them on a paused copy;
- it disturbs runs (``Kind.disturbs_runs``) while the workflow has a waiting or running
  instance, unless apply was told to wait for them or to cancel them.

A schedule change shows the next fire times before and after, in the target's time zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from gitsync import cron
from gitsync.changes import Kind
from gitsync.model import Schedule, Workflow
from gitsync.plan import Change, Plan, RemoteState
from gitsync.plan_types import Rights

FIRES_SHOWN = 3


class OnActiveRuns(StrEnum):
    """What apply does about a run of a workflow it is about to disturb."""

    STOP = "stop"  # hold the change back (the default)
    WAIT = "wait"  # wait until no run is left, up to a deadline
    CANCEL = "cancel"  # cancel the runs, then make the change


@dataclass(frozen=True)
class Run:
    """A waiting or running instance of a workflow."""

    instance_id: str
    status: str
    started: str  # "" while it waits to start
    triggered: str

    def describe(self) -> str:
        when = f"started {self.started}" if self.started else f"not started, due {self.triggered}"
        return f"running now: {self.instance_id} ({self.status}), {when}"


@dataclass(frozen=True)
class Facts:
    runs: Mapping[int, tuple[Run, ...]] = field(default_factory=dict)  # flow id -> live runs
    rights: Mapping[int, Rights] = field(default_factory=dict)  # flow id -> rights
    zone: dt.tzinfo | None = None  # the target's time zone, read when a schedule changes
    zone_name: str = ""
    now: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# -- what to read ---------------------------------------------------------------------------


def flows_to_check(plan: Plan) -> list[int]:
    """Flows whose rights are read: every existing flow that a change writes to (a workflow
    without a file is only listed: nothing is written to it)."""
    return sorted({c.flow_id for c in plan.changes if c.flow_id is not None and c.kind.sent})


def runs_to_check(plan: Plan) -> list[int]:
    """Flows whose live runs are read: those a change disturbs."""
    return sorted(
        {c.flow_id for c in plan.changes if c.flow_id is not None and c.kind.disturbs_runs}
    )


def schedule_changes(plan: Plan, state: RemoteState) -> dict[str, tuple[Schedule, Schedule]]:
    """Workflow name -> (schedule before, after) for the existing workflows whose cron, cycle,
    start, type or scheduling state changes (a renamed one's before is under its old name)."""
    before = {f.workflow.name: f.workflow.schedule for f in state.flows}
    out = {}
    for change in plan.changes:
        wf = change.desired
        old = change.renamed_from or (wf.name if wf is not None else "")
        if wf is not None and old in before and before[old] != wf.schedule:
            out[wf.name] = (before[old], wf.schedule)
    return out


# -- the checks -----------------------------------------------------------------------------


def guard(
    plan: Plan, state: RemoteState, facts: Facts, on_active_runs: OnActiveRuns = OnActiveRuns.STOP
) -> Plan:
    """``plan`` with every change checked as the module docstring says."""
    shown = _fires(plan, state, facts)
    held = _held_deletes(plan, state)
    changes = []
    for change in plan.changes:
        lines = list(change.lines) + shown.pop(_name(change), [])
        reason = _rights(change, facts) or held.get(change.name, "")
        runs = facts.runs.get(change.flow_id, ()) if change.flow_id is not None else ()
        if runs and change.kind.disturbs_runs:
            described = "; ".join(r.describe() for r in runs)
            if on_active_runs == OnActiveRuns.STOP:
                reason = reason or (
                    f"{described}. `gitsync apply --on-active-runs wait` makes this change "
                    "once no run is left; `--on-active-runs cancel` cancels them first"
                )
            else:
                lines.append(f"{described}; apply will {on_active_runs} first")
        changes.append(replace(change, lines=tuple(lines), blocked=change.blocked or reason))
    return replace(plan, changes=tuple(changes))


def _name(change: Change) -> str:
    return change.desired.name if change.desired is not None else change.path[-1]


def _rights(change: Change, facts: Facts) -> str:
    rights = facts.rights.get(change.flow_id) if change.flow_id is not None else None
    if rights is None:
        return ""
    if not rights.edit:
        return "you may not change this workflow: you are not one of its owners (hasEditPri)"
    if change.kind in (Kind.ENABLE, Kind.DISABLE):
        if rights.locked:
            return "the workflow is locked: its scheduling cannot be switched"
        if rights.user_locked:
            return "your user is locked: it cannot switch scheduling"
    return ""


def _held_deletes(plan: Plan, state: RemoteState) -> dict[str, str]:
    """Deletes (and retires: a referrer must not be left on a paused copy) of workflows still
    referenced by workflows that keep referencing them: name -> the reason. A referrer
    releases a workflow by no longer naming it in its file, or by being deleted itself
    (unless that delete is held too)."""
    deleted = {c.path[-1]: c for c in plan.changes if c.kind in (Kind.DELETE_FLOW, Kind.RETIRE)}
    desired = {c.desired.name: c.desired for c in plan.changes if c.desired is not None}
    held: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name in sorted(deleted):
            if name in held:
                continue
            keeping = [
                r
                for r in state.referrers.get(name, ())
                if r != name and _keeps(r, name, desired, deleted, held)
            ]
            if keeping:
                what = "retire" if deleted[name].kind == Kind.RETIRE else "delete"
                keep = "keeps" if len(keeping) == 1 else "keep"
                held[name] = (
                    f"still referenced by {', '.join(sorted(keeping))}, which {keep} "
                    f"referencing it: remove those references (or delete them too), and the "
                    f"{what} follows"
                )
                changed = True
    return {deleted[n].name: reason for n, reason in held.items()}


def _keeps(
    referrer: str,
    name: str,
    desired: Mapping[str, Workflow],
    deleted: Mapping[str, Change],
    held: Mapping[str, str],
) -> bool:
    if referrer in deleted:
        return referrer in held
    wf = desired.get(referrer)
    if wf is None:  # unchanged: it keeps what it has
        return True
    return any(d.flow == name for t in wf.tasks for d in t.depends_on)


# -- fire times -----------------------------------------------------------------------------


def _fires(plan: Plan, state: RemoteState, facts: Facts) -> dict[str, list[str]]:
    """Lines for the first change of each workflow whose schedule changes."""
    if facts.zone is None:
        return {}
    zone = facts.zone
    now = facts.now.astimezone(zone)
    out = {}
    for name, (before, after) in schedule_changes(plan, state).items():
        out[name] = [
            f"fires before ({facts.zone_name}): {_next_fires(before, now)}",
            f"fires after  ({facts.zone_name}): {_next_fires(after, now)}",
        ]
    return out


def _next_fires(schedule: Schedule, now: dt.datetime) -> str:
    if schedule.type != "periodic":
        return "never (run by hand only)"
    if not schedule.enabled:
        return "never (scheduling paused)"
    try:
        parsed = cron.parse(schedule.cron)
    except cron.CronError:
        return f"never (the cron '{schedule.cron}' is not valid)"
    times: list[dt.datetime] = []
    after = now
    while len(times) < FIRES_SHOWN:
        fire = cron.next_fire_from(parsed, schedule.start, after)
        if fire is None:
            break
        times.append(fire)
        after = fire
    if not times:
        return "never (no fire time is left)"
    return ", ".join(t.strftime("%Y-%m-%d %H:%M:%S") for t in times)


_OFFSET = re.compile(r"^(?:GMT|UTC)?\s*(?:([+-])(\d{1,2})(?::?(\d{2}))?)?$", re.IGNORECASE)


def time_zone(name: str) -> dt.tzinfo | None:
    """``GMT+8``, ``GMT-03:30``, ``UTC``, or an IANA name such as ``Asia/Shanghai``; None for
    anything else."""
    match = _OFFSET.match(name.strip())
    if match and name.strip():
        sign, hours, minutes = match.groups()
        offset = dt.timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
        if offset >= dt.timedelta(hours=24):
            return None
        return dt.timezone(-offset if sign == "-" else offset)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


# -- apply: what waits for a held-back change -----------------------------------------------


def held_back(order: Sequence[Change], waits: Sequence[tuple[int, ...]]) -> dict[int, str]:
    """Index -> why a change is not sent: it is blocked, or it waits (directly or through
    others) for a change that is. ``waits`` only ever point to earlier changes."""
    held: dict[int, str] = {}
    for i, change in enumerate(order):
        if change.blocked:
            held[i] = f"blocked: {change.blocked}"
            continue
        before = next((j for j in waits[i] if j in held), None)
        if before is not None:
            other = order[before]
            held[i] = f"skipped: it waits for the {other.kind.verb} of {other.name}, held back"
    return held
