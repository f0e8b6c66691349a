"""guards.py's rules on plain values (no service): who blocks what, what waits for a held
change, fire times, time zones, and how a blocked change is reported."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from gitsync import guards, report
from gitsync.applying import ApplyResult, Outcome
from gitsync.changes import Kind
from gitsync.guards import Facts, OnActiveRuns, Run
from gitsync.model import Dependency, Schedule, Task, Workflow
from gitsync.plan import Change, Plan, RemoteFlow, RemoteState
from gitsync.plan_types import Rights

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
DAILY = Schedule(type="periodic", cycle="day", cron="0 0 5 * * ? *", enabled=True)


def wf(name: str, *ups: str, schedule: Schedule = DAILY) -> Workflow:
    deps = tuple(Dependency(flow=u) for u in ups)
    return Workflow(name, schedule=schedule, tasks=(Task("t", depends_on=deps),))


def state(*flows: Workflow) -> RemoteState:
    referrers: dict[str, list[str]] = {}
    for f in flows:
        for up in sorted({d.flow for t in f.tasks for d in t.depends_on if d.flow}):
            referrers.setdefault(up, []).append(f.name)
    return RemoteState(
        root=("gitsync",),
        dirs={(): "top", ("gitsync",): "root"},
        flows=tuple(RemoteFlow(i, f, True) for i, f in enumerate(flows, start=1)),
        outside={},
        flow_ids={f.name: i for i, f in enumerate(flows, start=1)},
        referrers={k: tuple(v) for k, v in referrers.items()},
    )


def delete(name: str, flow_id: int) -> Change:
    return Change(Kind.DELETE_FLOW, (name,), flow_id=flow_id)


def blocked(plan: Plan) -> dict[str, str]:
    return {f"{c.kind.verb} {c.name}": c.blocked for c in plan.changes if c.blocked}


def test_a_delete_is_held_while_a_referrer_keeps_its_reference() -> None:
    remote = state(wf("up"), wf("down", "up"), wf("far", "down"))
    plan = Plan((delete("up", 1),))
    assert blocked(guards.guard(plan, remote, Facts())) == {
        "delete up": "still referenced by down, which keeps referencing it: remove those "
        "references (or delete them too), and the delete follows"
    }
    retire = Plan((Change(Kind.RETIRE, ("up",), flow_id=1),))
    assert blocked(guards.guard(retire, remote, Facts()))["retire up"].endswith(
        "(or delete them too), and the retire follows"
    )
    both = state(wf("up"), wf("down", "up"), wf("side", "up"))
    assert blocked(guards.guard(plan, both, Facts()))["delete up"].startswith(
        "still referenced by down, side, which keep referencing it"
    )
    # the referrer changes away from it, in the same plan: nothing is held
    update = Change(Kind.UPDATE_FLOW, ("down",), desired=wf("down"), flow_id=2)
    assert blocked(guards.guard(Plan((delete("up", 1), update)), remote, Facts())) == {}
    # the referrer is deleted too, but a third keeps referencing it: both are held
    chain = Plan((delete("up", 1), delete("down", 2)))
    assert set(blocked(guards.guard(chain, remote, Facts()))) == {"delete up", "delete down"}
    everything = Plan((delete("up", 1), delete("down", 2), delete("far", 3)))
    assert blocked(guards.guard(everything, remote, Facts())) == {}


def test_rights_block_what_the_service_would_refuse() -> None:
    remote = state(wf("a"), wf("b"))
    plan = Plan(
        (
            Change(Kind.UPDATE_FLOW, ("a",), desired=wf("a"), flow_id=1),
            Change(Kind.DISABLE, ("b",), desired=wf("b"), flow_id=2),
        )
    )
    facts = Facts(rights={1: Rights(edit=False), 2: Rights(locked=True)})
    assert blocked(guards.guard(plan, remote, facts)) == {
        "update a": "you may not change this workflow: you are not one of its owners (hasEditPri)",
        "disable b": "the workflow is locked: its scheduling cannot be switched",
    }
    # a locked workflow may still be saved: only its scheduling is refused
    facts = Facts(rights={1: Rights(locked=True, user_locked=True)})
    assert blocked(guards.guard(plan, remote, facts)) == {}


def test_runs_block_a_disturbing_change_unless_apply_waits_or_cancels() -> None:
    remote = state(wf("a"))
    run = Run("1-20261201030000", "RUNNING", "2026-12-01 03:00:05", "2026-12-01 03:00:00")
    waiting = Run("1-20261201031000", "WAIT", "", "2026-12-01 03:10:00")
    replace = Change(Kind.REPLACE_FLOW, ("a",), ("tasks[t].command: ...",), "", wf("a"), 1)
    update = Change(Kind.UPDATE_FLOW, ("a",), desired=wf("a"), flow_id=1)
    facts = Facts(runs={1: (run, waiting)})
    (held, saved) = guards.guard(Plan((replace, update)), remote, facts).changes
    assert held.blocked.startswith(
        "running now: 1-20261201030000 (RUNNING), started 2026-12-01 03:00:05; "
        "running now: 1-20261201031000 (WAIT), not started, due 2026-12-01 03:10:00. "
        "`gitsync apply --on-active-runs wait`"
    )
    assert saved.blocked == ""  # a Save does not disturb runs
    (waited, _) = guards.guard(Plan((replace, update)), remote, facts, OnActiveRuns.WAIT).changes
    assert waited.blocked == ""
    assert waited.lines[0] == "tasks[t].command: ..."
    assert waited.lines[1].endswith("; apply will wait first")


def test_a_schedule_change_shows_the_next_fires_in_the_target_zone() -> None:
    before = wf("a")
    later = wf("a", schedule=Schedule("periodic", "day", "0 30 6 * * ? *", "2026-12-10", True))
    plan = Plan((Change(Kind.UPDATE_FLOW, ("a",), ("schedule...",), "", later, 1),))
    facts = Facts(zone=dt.timezone(dt.timedelta(hours=8)), zone_name="GMT+8", now=NOW)
    (change,) = guards.guard(plan, state(before), facts).changes
    assert change.lines[1:] == (
        "fires before (GMT+8): 2026-12-02 05:00:00, 2026-12-03 05:00:00, 2026-12-04 05:00:00",
        "fires after  (GMT+8): 2026-12-10 06:30:00, 2026-12-11 06:30:00, 2026-12-12 06:30:00",
    )
    paused = Workflow("a", schedule=Schedule("periodic", "day", "0 0 5 * * ? 2020", "", True))
    manual = Workflow("a", schedule=Schedule(type="manual"))
    for after, words in ((paused, "no fire time is left"), (manual, "run by hand only")):
        plan = Plan((Change(Kind.UPDATE_FLOW, ("a",), desired=after, flow_id=1),))
        (change,) = guards.guard(plan, state(before), facts).changes
        assert change.lines[-1] == f"fires after  (GMT+8): never ({words})"
    assert guards.guard(plan, state(before), Facts()).changes[0].lines == ()  # zone not read


def test_a_schedule_change_riding_a_rename_shows_the_next_fires() -> None:
    later = wf("b", schedule=Schedule("periodic", "day", "0 30 6 * * ? *", "2026-12-10", True))
    rename = Change(Kind.RENAME, ("b",), ("renamed from a",), "", later, 1, renamed_from="a")
    facts = Facts(zone=dt.timezone(dt.timedelta(hours=8)), zone_name="GMT+8", now=NOW)
    (change,) = guards.guard(Plan((rename,)), state(wf("a")), facts).changes
    assert change.lines[1:] == (
        "fires before (GMT+8): 2026-12-02 05:00:00, 2026-12-03 05:00:00, 2026-12-04 05:00:00",
        "fires after  (GMT+8): 2026-12-10 06:30:00, 2026-12-11 06:30:00, 2026-12-12 06:30:00",
    )


@pytest.mark.parametrize(
    ("name", "offset"),
    [
        ("GMT+8", dt.timedelta(hours=8)),
        ("GMT-03:30", -dt.timedelta(hours=3, minutes=30)),
        ("gmt+0530", dt.timedelta(hours=5, minutes=30)),
        ("UTC", dt.timedelta(0)),
        ("GMT", dt.timedelta(0)),
        (" GMT+8 ", dt.timedelta(hours=8)),
    ],
)
def test_time_zones_the_service_writes(name: str, offset: dt.timedelta) -> None:
    zone = guards.time_zone(name)
    assert zone is not None and zone.utcoffset(NOW) == offset


@pytest.mark.parametrize("name", ["", "GMT+99", "GMT+8:0", "nowhere/zone", "../../etc/passwd", "+"])
def test_time_zones_not_understood(name: str) -> None:
    assert guards.time_zone(name) is None


def test_an_iana_time_zone_is_understood() -> None:
    assert guards.time_zone("Asia/Shanghai") == ZoneInfo("Asia/Shanghai")


def test_what_waits_for_a_held_change_is_held_too() -> None:
    replace = Change(Kind.REPLACE_FLOW, ("a",), flow_id=1, blocked="running now: ...")
    enable = Change(Kind.ENABLE, ("a",))
    other = Change(Kind.UPDATE_FLOW, ("b",))
    after_enable = Change(Kind.DELETE_FLOW, ("c",))
    held = guards.held_back([replace, enable, other, after_enable], [(), (0,), (), (1, 2)])
    assert held == {
        0: "blocked: running now: ...",
        1: "skipped: it waits for the replace of a, held back",
        3: "skipped: it waits for the enable of a, held back",
    }


def test_a_blocked_change_in_every_output() -> None:
    change = Change(Kind.UPDATE_FLOW, ("team", "a"), ("description: x",), blocked="not yours")
    fine = Change(Kind.UPDATE_FLOW, ("team", "b"), ("description: y",))
    plan = Plan((change, fine))
    text = report.plan_text(plan, "test")
    assert "~ update   team/a\n      description: x\n      ✗ blocked: not yours\n" in text
    listed = json.loads(report.plan_json(plan, "test"))["changes"]
    assert listed[0]["blocked"] == "not yours" and "blocked" not in listed[1]
    markdown = report.plan_markdown(plan, "test")
    assert "| ~ | update ✗ blocked | <code>team/a</code> |" in markdown
    assert "**✗ blocked:** not yours" in markdown
    held = Outcome(change, False, "blocked: not yours", held=True)
    applied = ApplyResult([held, Outcome(fine, True, "ok")])
    assert report.apply_text(applied).splitlines() == [
        "HELD   update   team/a: blocked: not yours",
        "ok     update   team/b: ok",
        "Applied 1 of 2 changes; 1 blocked.",
    ]
    waiting = Change(Kind.ENABLE, ("team", "a"), desired=change.desired)
    skipped = Outcome(waiting, False, "skipped: it waits for the update of team/a", held=True)
    assert report.apply_text(ApplyResult([held, skipped])).splitlines()[1:] == [
        "HELD   enable   team/a: skipped: it waits for the update of team/a",
        "Applied 0 of 2 changes; 2 blocked.",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("0", 0)]
)
def test_wait_timeouts(text: str, seconds: float) -> None:
    from gitsync.cli.options import duration

    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "soon", "-5m", "nan", "inf", "1e400", "5d"])
def test_wait_timeouts_refused(text: str) -> None:
    import click

    from gitsync.cli.options import duration

    with pytest.raises(click.BadParameter):
        duration(text)
