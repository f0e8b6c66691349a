"""Fires enabled periodic workflows at their cron times, in the engine's time zone (UTC).

The scheduler sleeps until the soonest next fire time of any enabled workflow. It reads every
flow once, at start-up; after that only a flow the service reports changed (import, save,
enable, disable, delete: ``changed``, which also wakes it) and a flow when it fires. An idle
engine therefore does no reads and no work, however many workflows it holds.

- A fire is never doubled: the instance id is the fire time truncated to the cycle (runs.py),
  and creating an instance that exists does nothing.
- Fires missed while the engine was down are not replayed: next fire times count from
  start-up, and for a changed schedule from the change. After a stall (a suspended machine)
  only the newest missed fire of each workflow runs.
- Fire times are in UTC, the clock's zone. A sleep lasts at most ``max_sleep``, so a wall
  clock that jumps (suspend, NTP) is noticed within that time.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gitsync import cron
from gitsync.engine.runs import Runs
from gitsync.engine.store_flows import FlowRow

log = logging.getLogger("gitsync.engine")

MAX_SLEEP = 60.0  # seconds; cheap (no reads) and bounds the effect of a clock jump


class Flows(Protocol):
    """What the scheduler reads from the store (a seam: tests count the reads)."""

    def orgs(self) -> list[dict[str, str]]: ...
    def flows(self, org_id: str) -> list[FlowRow]: ...
    def flow(self, org_id: str, flow_id: int) -> FlowRow | None: ...


@dataclass(frozen=True)
class _Schedule:
    cron: str
    start: str  # the start date (yyyy-MM-dd): no fire before it


@dataclass
class _Entry:
    org: str
    schedule: _Schedule
    next: dt.datetime


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> cron.QuartzCron | None:
    try:
        return cron.parse(text)
    except cron.CronError:
        return None


def _schedule(row: FlowRow | None) -> _Schedule | None:
    """The flow's schedule when it fires at all: enabled, periodic, with a usable cron."""
    if row is None or row.active != 1:
        return None
    d = row.definition
    if int(d.get("type", 0)) != 1 or not d.get("cron") or _parse(str(d["cron"])) is None:
        return None
    return _Schedule(str(d["cron"]), str(d.get("startTime") or ""))


def _next_fire(schedule: _Schedule, after: dt.datetime) -> dt.datetime | None:
    """The first fire strictly after ``after`` on or after the start date."""
    parsed = _parse(schedule.cron)
    assert parsed is not None  # _schedule only keeps parsable crons
    return cron.next_fire_from(parsed, schedule.start, after)


def _newest_fire(schedule: _Schedule, first: dt.datetime, now: dt.datetime) -> dt.datetime:
    """The newest fire in [first, now], ``first`` being one. A binary search for the last
    whole second after ``first`` that still has a fire by ``now``: a long stall (a suspended
    machine) costs a few steps, not one per missed fire."""
    parsed = _parse(schedule.cron)
    assert parsed is not None

    def fire_after(seconds: int) -> dt.datetime | None:
        found = cron.next_fire(parsed, first + dt.timedelta(seconds=seconds))
        return found if found is not None and found <= now else None

    low, high = 0, int((now - first).total_seconds()) + 1  # a fire after low; none after high
    if fire_after(low) is None:
        return first
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fire_after(middle) is not None else (low, middle)
    newest = fire_after(low)
    assert newest is not None
    return newest


class Scheduler:
    def __init__(
        self,
        runs: Runs,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        flows: Flows | None = None,
        max_sleep: float = MAX_SLEEP,
    ) -> None:
        self.runs = runs
        self.clock = clock
        self.flows: Flows = runs.store if flows is None else flows
        self.max_sleep = max_sleep
        self.sleeping_until: dt.datetime | None = None  # the soonest fire, once computed
        self._started = clock()  # the first window starts here: no replay of the downtime
        self._entries: dict[int, _Entry] | None = None  # flow id -> schedule; None: not read
        # (next fire, flow id), soonest first; an item whose entry moved on is stale and
        # dropped when it comes up, so a wake costs the changes and the fires due, not a walk
        # over every scheduled flow
        self._heap: list[tuple[dt.datetime, int]] = []
        self._changes: dict[int, tuple[str, dt.datetime]] = {}  # flow id -> (org, when)
        self._wake = threading.Condition()
        self._woken = False
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="gitsync-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def changed(self, org_id: str, flow_id: int) -> None:
        """A flow was imported, saved, enabled, disabled or deleted (after its commit)."""
        with self._wake:
            self._changes[flow_id] = (org_id, self.clock())
            self._wake.notify()

    def wake(self) -> None:
        """Look at the clock now (tests moving a fake clock; stop)."""
        with self._wake:
            self._woken = True
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            try:
                self.run_due()
            except Exception:  # one bad flow must not stop every schedule
                log.exception("scheduler pass failed")
            with self._wake:
                if not (self._stopping or self._changes or self._woken):
                    self._wake.wait(self._seconds_to_sleep())
                self._woken = False
                if self._stopping:
                    return

    def _stale(self, item: tuple[dt.datetime, int]) -> bool:
        entry = (self._entries or {}).get(item[1])
        return entry is None or entry.next != item[0]

    def _push(self, flow_id: int, entry: _Entry) -> None:
        heapq.heappush(self._heap, (entry.next, flow_id))

    def _seconds_to_sleep(self) -> float:
        while self._heap and self._stale(self._heap[0]):
            heapq.heappop(self._heap)
        self.sleeping_until = self._heap[0][0] if self._heap else None
        if self.sleeping_until is None:
            return self.max_sleep
        left = (self.sleeping_until - self.clock()).total_seconds()
        return min(self.max_sleep, max(0.0, left))

    def run_due(self) -> list[str]:
        """Take in the changed flows, then start every fire due by now; returns the instance
        ids started. With nothing changed and nothing due it reads nothing."""
        if self._entries is None:
            self._entries = self._read_all()
            self._heap = [(e.next, flow_id) for flow_id, e in self._entries.items()]
            heapq.heapify(self._heap)
        with self._wake:
            changes, self._changes = self._changes, {}
        for flow_id, (org, when) in changes.items():
            self._update(flow_id, org, when)
        now = self.clock()
        started = []
        while self._heap and self._heap[0][0] <= now:
            item = heapq.heappop(self._heap)
            if self._stale(item):
                continue
            instance_id = self._fire(item[1], self._entries[item[1]], now)
            if instance_id is not None:
                started.append(instance_id)
        self._seconds_to_sleep()
        return started

    def _read_all(self) -> dict[int, _Entry]:
        entries = {}
        for org in sorted(row["id"] for row in self.flows.orgs()):
            for row in self.flows.flows(org):
                schedule = _schedule(row)
                moment = _next_fire(schedule, self._started) if schedule else None
                if schedule is not None and moment is not None:
                    entries[row.id] = _Entry(org, schedule, moment)
        return entries

    def _update(self, flow_id: int, org: str, when: dt.datetime) -> None:
        """One changed flow: a new schedule counts from the change; an unchanged one keeps
        its next fire (a Save that only edits tasks moves nothing)."""
        assert self._entries is not None
        try:
            schedule = _schedule(self.flows.flow(org, flow_id))
        except Exception as e:  # not scheduled rather than fired wrongly
            log.warning("scheduler could not read workflow %s: %s", flow_id, e)
            schedule = None
        old = self._entries.pop(flow_id, None)
        if schedule is None:
            return
        if old is not None and old.org == org and old.schedule == schedule:
            self._entries[flow_id] = old
            return
        moment = _next_fire(schedule, when)
        if moment is not None:
            self._entries[flow_id] = _Entry(org, schedule, moment)
            self._push(flow_id, self._entries[flow_id])

    def _fire(self, flow_id: int, entry: _Entry, now: dt.datetime) -> str | None:
        """Start the newest due fire of one flow, as it is stored now, and move it on."""
        assert self._entries is not None
        fire = _newest_fire(entry.schedule, entry.next, now)
        following = _next_fire(entry.schedule, now)
        if following is None:
            del self._entries[flow_id]
        else:
            entry.next = following
            self._push(flow_id, entry)
        if entry.schedule.start and fire.date().isoformat() < entry.schedule.start:
            return None  # a start date that is no plain date: compared as text, as before
        try:
            row = self.flows.flow(entry.org, flow_id)
            if row is None or _schedule(row) != entry.schedule:
                return None  # changed meanwhile: its queued change decides the next fire
            return self.runs.create(row, int(fire.timestamp() * 1000), scheduled=True)
        except Exception as e:
            log.warning("scheduled run of workflow %s failed to start: %s", flow_id, e)
            return None
