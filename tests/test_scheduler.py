"""The scheduler: fires at cron times, sleeps until the next one, wakes when a workflow changes,
reads nothing while nothing is due. Driven by a fake clock; the loop is woken, never waited
out (its sleep cap is an hour, longer than any deadline here)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gitsync import cron
from gitsync.engine import scheduler as scheduler_module
from gitsync.engine.scheduler import Scheduler
from gitsync.engine.server import EngineOptions, RunningEngine
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow
from tests.conftest import SPEC_ORG, Api
from tests.test_runs import flow, wait_done

NOW = dt.datetime(2026, 11, 24, 10, 0, 30, tzinfo=dt.UTC)
EVERY_MINUTE = {"cycle": "mi", "cron": "0 0/1 * * * ? *"}
DAILY_0230 = {"cycle": "D", "cron": "0 30 2 * * ? *"}


class Clock:
    def __init__(self, start: dt.datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class CountingFlows:
    """The store, counting the scheduler's reads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads = 0

    def orgs(self) -> list[dict[str, str]]:
        self.reads += 1
        return self.store.orgs()

    def flows(self, org_id: str) -> list[FlowRow]:
        self.reads += 1
        return self.store.flows(org_id)

    def flow(self, org_id: str, flow_id: int) -> FlowRow | None:
        self.reads += 1
        return self.store.flow(org_id, flow_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reads(engine: RunningEngine) -> CountingFlows:
    return CountingFlows(engine.engine.store)


@pytest.fixture
def scheduler(engine: RunningEngine, clock: Clock, reads: CountingFlows) -> Iterator[Scheduler]:
    """A scheduler on the test engine, told of changes as `gitsync serve` wires it."""
    made = Scheduler(engine.engine.runs, clock=clock, flows=reads, max_sleep=3600)
    engine.engine.service.on_change = made.changed
    yield made
    made.stop()
    engine.engine.service.on_change = None


def periodic(api: Api, name: str, enable: bool = True, **fields: Any) -> int:
    """A workflow of one `true` task, every minute unless ``fields`` say otherwise."""
    body = flow(("t", "true"))
    body.update({"startTime": "2024-01-01", **EVERY_MINUTE, **fields})
    flow_id = api.import_flow(name, body)
    if enable:
        api.data("POST", "flows", "enable", {"flowId": flow_id})
    return flow_id


def save(api: Api, flow_id: int, name: str, active: bool = True, **fields: Any) -> None:
    detail: Any = api.data("GET", "flows", "loadForEdit", flowId=flow_id)
    body = dict(id=flow_id, type=1, name=name, freq=detail["freq"], cycle=detail["cycle"])
    body.update(alertMode=1, owners="alice", visitors="", active=1 if active else 0, **fields)
    api.data("POST", "flows", "save", body)


def instances(engine: RunningEngine, flow_id: int) -> list[str]:
    """The flow's instance ids, as stored (List Flow Instances filters by type and time)."""
    rows = engine.engine.store.instances(SPEC_ORG)
    return sorted(r["id"] for r in rows if r["flow_id"] == flow_id)


def fired(engine: RunningEngine, api: Api, instance_id: str) -> dict[str, Any]:
    """The instance the scheduler thread starts, once it has finished."""
    flow_id = int(instance_id.split("-")[0])
    eventually(lambda: instance_id in instances(engine, flow_id))
    return wait_done(api, instance_id)


def eventually(what: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.01)


# -- (a) fires at its cron times ------------------------------------------------------------


def test_fires_enabled_periodic_flows_at_their_cron_times(
    api: Api, engine: RunningEngine, scheduler: Scheduler, clock: Clock
) -> None:
    on = periodic(api, "on")
    periodic(api, "off", enable=False)  # imported paused: never fires
    periodic(api, "later", startTime="2030-01-01")
    manual = periodic(api, "manual", type=0)
    clock.advance(seconds=45)  # 10:01:15: one fire, at 10:01:00
    assert scheduler.run_due() == [f"{on}-202611241001"]
    assert scheduler.run_due() == []  # nothing new
    assert scheduler.sleeping_until == dt.datetime(2026, 11, 24, 10, 2, tzinfo=dt.UTC)
    clock.advance(hours=3)  # a backlog is not replayed: only the newest fire
    assert scheduler.run_due() == [f"{on}-202611241301"]
    inst = wait_done(api, f"{on}-202611241301")
    assert inst["triggerTime"] == "2026-11-24 13:01:00" and inst["statusDesc"] == "SUCCESS"
    assert instances(engine, manual) == []


def test_a_daily_cron_fires_in_utc_once_per_day(
    api: Api, scheduler: Scheduler, clock: Clock
) -> None:
    flow_id = periodic(api, "daily", **DAILY_0230)
    assert scheduler.run_due() == []
    assert scheduler.sleeping_until == dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)
    clock.now = dt.datetime(2026, 11, 25, 2, 29, 59, tzinfo=dt.UTC)
    assert scheduler.run_due() == []
    clock.advance(seconds=1)  # exactly at the fire time
    assert scheduler.run_due() == [f"{flow_id}-2026112502"]
    assert scheduler.sleeping_until == dt.datetime(2026, 11, 26, 2, 30, tzinfo=dt.UTC)
    assert api.data("GET", "time", "getTimeZone") == {"timezone": "GMT+0"}


def test_a_start_date_in_the_future_is_slept_towards_not_polled(
    api: Api, scheduler: Scheduler
) -> None:
    periodic(api, "later", startTime="2030-01-01", **DAILY_0230)
    scheduler.run_due()
    assert scheduler.sleeping_until == dt.datetime(2030, 1, 1, 2, 30, tzinfo=dt.UTC)


def test_a_cron_with_no_fire_left_is_not_scheduled(api: Api, scheduler: Scheduler) -> None:
    periodic(api, "past", cycle="D", cron="0 30 2 * * ? 2025")
    assert scheduler.run_due() == [] and scheduler.sleeping_until is None


# -- never doubled, never replayed ------------------------------------------------------------


def test_a_fire_is_never_doubled_nor_replayed_after_a_restart(
    api: Api, engine: RunningEngine, scheduler: Scheduler, clock: Clock
) -> None:
    flow_id = periodic(api, "daily", **DAILY_0230)
    clock.now = dt.datetime(2026, 11, 25, 2, 29, tzinfo=dt.UTC)
    scheduler.run_due()
    clock.now = dt.datetime(2026, 11, 25, 2, 30, 0, 500000, tzinfo=dt.UTC)
    assert scheduler.run_due() == [f"{flow_id}-2026112502"]
    save(api, flow_id, "daily", desc="only the description changes")  # keeps its next fire
    assert scheduler.run_due() == []
    # an engine started just before the fire, with the first one's instance already there
    clock.now = dt.datetime(2026, 11, 25, 2, 29, 59, tzinfo=dt.UTC)
    again = Scheduler(engine.engine.runs, clock=clock, max_sleep=3600)
    clock.advance(seconds=2)
    again.run_due()
    # one started 10 minutes after the fire: the missed fire is not replayed
    clock.advance(minutes=10)
    late = Scheduler(engine.engine.runs, clock=clock, max_sleep=3600)
    assert late.run_due() == []
    assert instances(engine, flow_id) == [f"{flow_id}-2026112502"]


def test_a_save_that_keeps_the_schedule_keeps_a_due_fire(
    api: Api, scheduler: Scheduler, clock: Clock
) -> None:
    flow_id = periodic(api, "minutely")
    scheduler.run_due()
    clock.advance(seconds=40)  # 10:01:10: the 10:01 fire is due, not yet started
    save(api, flow_id, "minutely", desc="a new description")
    assert scheduler.run_due() == [f"{flow_id}-202611241001"]


def test_after_a_long_stall_only_the_newest_fire_runs(
    api: Api, scheduler: Scheduler, clock: Clock
) -> None:
    flow_id = periodic(api, "minutely")
    scheduler.run_due()
    clock.advance(days=400, seconds=45)  # a suspended machine: 576,000 fires missed
    assert clock.now == dt.datetime(2027, 12, 29, 10, 1, 15, tzinfo=dt.UTC)
    assert scheduler.run_due() == [f"{flow_id}-202712291001"]
    assert scheduler.sleeping_until == dt.datetime(2027, 12, 29, 10, 2, tzinfo=dt.UTC)


DAY = 24 * 3600
STALLS = [  # a cron and the longest stall tried: the slow oracle below visits every fire
    ("0/7 * * * * ? *", 3600),
    ("0 0/1 * * * ? *", 6 * 3600),
    ("0 30 2 * * ? *", 20 * DAY),
    ("0 0 9 ? * MON-FRI *", 30 * DAY),
    ("0 0 0 L * ? *", 400 * DAY),
    ("0 15 10 ? * 6#3 *", 400 * DAY),
    ("0 0 12 * * ? 2025-2027", 1200 * DAY),  # fires run out
]


@settings(max_examples=80, deadline=None)
@given(
    case=st.sampled_from(STALLS),
    start=st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2028, 1, 1)),
    share=st.floats(0, 1),
)
def test_the_newest_fire_is_the_last_one_by_now(
    case: tuple[str, int], start: dt.datetime, share: float
) -> None:
    text, longest = case
    parsed = cron.parse(text)
    first = cron.next_fire(parsed, start.replace(tzinfo=dt.UTC))
    assume(first is not None)
    assert first is not None
    now = first + dt.timedelta(seconds=int(share * longest), microseconds=start.microsecond)
    expected, moment = first, cron.next_fire(parsed, first)
    while moment is not None and moment <= now:  # the slow way: every fire in turn
        expected, moment = moment, cron.next_fire(parsed, moment)
    schedule = scheduler_module._Schedule(text, "")
    assert scheduler_module._newest_fire(schedule, first, now) == expected


# -- (b) a change wakes the loop --------------------------------------------------------------


def test_enabling_a_sooner_workflow_wakes_the_sleeping_scheduler(
    api: Api, engine: RunningEngine, scheduler: Scheduler, clock: Clock
) -> None:
    periodic(api, "daily", **DAILY_0230)
    scheduler.start()
    tomorrow = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)
    eventually(lambda: scheduler.sleeping_until == tomorrow)  # asleep for up to an hour
    soon = periodic(api, "soon", enable=False)
    assert scheduler.sleeping_until == tomorrow  # imported paused: nothing sooner
    api.data("POST", "flows", "enable", {"flowId": soon})
    eventually(lambda: scheduler.sleeping_until == dt.datetime(2026, 11, 24, 10, 1, tzinfo=dt.UTC))
    clock.advance(seconds=40)  # 10:01:10: the fire is due; the loop looks when woken
    scheduler.wake()
    fired(engine, api, f"{soon}-202611241001")
    assert scheduler.sleeping_until == dt.datetime(2026, 11, 24, 10, 2, tzinfo=dt.UTC)
    api.data("POST", "flows", "disable", {"flowId": soon})
    eventually(lambda: scheduler.sleeping_until == tomorrow)


def test_saving_a_sooner_cron_wakes_the_sleeping_scheduler(
    api: Api, engine: RunningEngine, scheduler: Scheduler, clock: Clock
) -> None:
    flow_id = periodic(api, "daily", **DAILY_0230)
    scheduler.start()
    eventually(lambda: scheduler.sleeping_until == dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC))
    save(api, flow_id, "daily", freq="0 30 10 * * ? *")
    today = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC)
    eventually(lambda: scheduler.sleeping_until == today)
    clock.now = today
    scheduler.wake()
    fired(engine, api, f"{flow_id}-2026112410")


def test_a_change_during_a_pass_is_not_slept_past(
    api: Api, engine: RunningEngine, clock: Clock
) -> None:
    daily = periodic(api, "daily", **DAILY_0230)
    soon = periodic(api, "soon", enable=False)

    class EnablingMidPass(CountingFlows):
        enabled = False

        def flow(self, org_id: str, flow_id: int) -> FlowRow | None:
            if flow_id == daily and not self.enabled:  # the first pass reads daily's change
                self.enabled = True
                engine.engine.store.set_active(soon, 1)  # an Enable Flow: commit, then tell
                made.changed(SPEC_ORG, soon)
            return super().flow(org_id, flow_id)

    made = Scheduler(
        engine.engine.runs, clock=clock, flows=EnablingMidPass(engine.engine.store), max_sleep=3600
    )
    made.changed(SPEC_ORG, daily)  # queued before the start: read in the first pass
    try:
        made.start()
        eventually(lambda: made.sleeping_until == dt.datetime(2026, 11, 24, 10, 1, tzinfo=dt.UTC))
    finally:
        made.stop()


# -- (c) disabling and deleting stop fires ------------------------------------------------------


def test_disabling_deleting_or_saving_disabled_stops_fires(
    api: Api, engine: RunningEngine, scheduler: Scheduler, clock: Clock
) -> None:
    disabled, deleted, saved_off = (periodic(api, n) for n in ("disabled", "deleted", "saved"))
    clock.advance(seconds=30)  # 10:01:00
    assert len(scheduler.run_due()) == 3
    api.data("POST", "flows", "disable", {"flowId": disabled})
    api.data("GET", "flows", "delete", flowId=deleted)
    save(api, saved_off, "saved", active=False)
    clock.advance(hours=1)
    assert scheduler.run_due() == [] and scheduler.sleeping_until is None
    assert instances(engine, disabled) == [f"{disabled}-202611241001"]
    assert instances(engine, saved_off) == [f"{saved_off}-202611241001"]


def test_disabling_while_asleep_empties_the_schedule(
    api: Api, engine: RunningEngine, scheduler: Scheduler, clock: Clock
) -> None:
    flow_id = periodic(api, "daily", **DAILY_0230)
    scheduler.start()
    eventually(lambda: scheduler.sleeping_until is not None)
    api.data("POST", "flows", "disable", {"flowId": flow_id})
    eventually(lambda: scheduler.sleeping_until is None)
    scheduler.stop()
    clock.now = dt.datetime(2026, 11, 25, 2, 31, tzinfo=dt.UTC)
    assert scheduler.run_due() == [] and instances(engine, flow_id) == []


# -- (d) nothing due: no reads ----------------------------------------------------------------


def test_with_nothing_due_the_scheduler_reads_nothing(
    api: Api, engine: RunningEngine, scheduler: Scheduler, clock: Clock, reads: CountingFlows
) -> None:
    ids = [periodic(api, f"daily{i}", **DAILY_0230) for i in range(20)]
    scheduler.run_due()
    after_start = reads.reads  # at start-up: the orgs, the flows of each; then the 20 changes
    assert after_start == 1 + len(engine.engine.store.orgs()) + 20
    fire = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)
    while clock.now + dt.timedelta(minutes=5) < fire:  # every 5 minutes until the fire
        clock.advance(minutes=5)
        assert scheduler.run_due() == []
    assert reads.reads == after_start
    scheduler.start()
    for _ in range(20):  # woken again and again, nothing due
        scheduler.wake()
    eventually(lambda: not scheduler._woken)
    assert reads.reads == after_start
    api.data("POST", "flows", "disable", {"flowId": ids[0]})  # one change: one read
    eventually(lambda: reads.reads == after_start + 1)
    scheduler.stop()
    clock.now = fire
    assert len(scheduler.run_due()) == 19
    assert reads.reads == after_start + 1 + 19  # one read per fire


# -- the engine wires it ------------------------------------------------------------------------


def test_gitsync_serve_engine_tells_its_scheduler_of_changes(tmp_path: Any) -> None:
    hour = (dt.datetime.now(dt.UTC).hour + 12) % 24
    options = EngineOptions(tmp_path / "engine", schedule=True)
    with RunningEngine(options) as running:
        scheduler = running.engine.scheduler
        assert scheduler is not None
        api = Api(running.url, user="u_local", org="o_local")
        try:
            flow_id = periodic(api, "far", cycle="D", cron=f"0 0 {hour} * * ? *", owners="local")
            eventually(lambda: scheduler.sleeping_until is not None)
            assert scheduler.sleeping_until is not None
            assert (scheduler.sleeping_until.hour, scheduler.sleeping_until.minute) == (hour, 0)
            api.data("GET", "flows", "delete", flowId=flow_id)
            eventually(lambda: scheduler.sleeping_until is None)
        finally:
            api.http.close()
    assert not scheduler._thread.is_alive()


def test_stop_ends_a_long_sleep(engine: RunningEngine, clock: Clock) -> None:
    made = Scheduler(engine.engine.runs, clock=clock, max_sleep=3600)
    made.start()
    eventually(lambda: made._entries is not None)  # asleep, for up to an hour
    made.stop()  # joins for at most 10 s
    assert not made._thread.is_alive()
