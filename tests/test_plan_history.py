"""The planner's history-keeping parts, pure: retention of retired copies, leftovers of an
interrupted replace, re-points of references to retired copies, and the JSON of new kinds."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from gitsync import plan as planner
from gitsync import plan_retired, report
from gitsync.changes import Kind
from gitsync.codec import marker
from gitsync.config_file import read as read_config
from gitsync.errors import ConfigError, PlanRefused
from gitsync.model import Dependency, Schedule, Task, Tree, Workflow
from gitsync.plan import Change, RemoteFlow, RemoteState, Retention

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
ROOT = ("gitsync",)


def wf(name: str, command: str = "echo", *deps: Dependency, **extra: object) -> Workflow:
    return Workflow(name, tasks=(Task("t", command=command, depends_on=deps),), **extra)  # type: ignore[arg-type]


def retired(flow_id: int, of: str, days_ago: float, *deps: Dependency) -> RemoteFlow:
    info = marker.Retired("", NOW - dt.timedelta(days=days_ago), of)
    return RemoteFlow(flow_id, wf(marker.retired_name(of, flow_id), "echo old", *deps), True, info)


def state(*flows: RemoteFlow, referrers: dict[str, tuple[str, ...]] | None = None) -> RemoteState:
    return RemoteState(
        root=ROOT,
        dirs={(): "top", ROOT: "root"},
        flows=flows,
        outside={},
        flow_ids={f.workflow.name: f.id for f in flows},
        referrers=referrers or {},
    )


def kinds(plan: planner.Plan) -> list[tuple[str, str]]:
    return [(str(c.kind), c.name) for c in plan.listed()]


def test_retired_copies_past_both_limits_are_deleted_newest_kept() -> None:
    live = RemoteFlow(1, wf("etl"), True)
    copies = [retired(10 + i, "etl", days) for i, days in enumerate([1, 40, 50, 60, 70])]
    plan = planner.compute(
        Tree.of([wf("etl")]), state(live, *copies), retention=Retention(2, 30), now=NOW
    )
    # newest two kept by count; of the rest, the one retired a day ago is kept by age
    assert kinds(plan) == [
        ("delete_flow", marker.retired_name("etl", 12)),
        ("delete_flow", marker.retired_name("etl", 13)),
        ("delete_flow", marker.retired_name("etl", 14)),
    ]
    assert "retired copy past its retention" in plan.changes[0].note
    # without a clock nothing is judged old
    assert not planner.compute(Tree.of([wf("etl")]), state(live, *copies)).has_changes


def test_a_referenced_retired_copy_is_kept_and_named() -> None:
    live = RemoteFlow(1, wf("etl"), True)
    old = retired(10, "etl", 90)
    plan = planner.compute(
        Tree.of([wf("etl")]),
        state(live, old, retired(11, "etl", 1), referrers={old.workflow.name: ("theirs",)}),
        retention=Retention(1, 30),
        now=NOW,
    )
    assert not plan.changes
    assert any("theirs still references it" in n for n in plan.notes)


def test_a_copy_left_after_the_old_flow_was_retired_is_renamed_not_deleted() -> None:
    copy = RemoteFlow(5, wf("etl" + planner.REPLACE_SUFFIX, "echo new"), True)
    plan = planner.compute(Tree.of([wf("etl", "echo new")]), state(copy, retired(1, "etl", 0)))
    assert kinds(plan) == [("rename", "etl")]
    assert plan.changes[0].flow_id == 5 and plan.changes[0].renamed_from == copy.workflow.name


def test_a_copy_left_after_the_old_flow_was_retired_and_a_new_edit_is_redone() -> None:
    copy = RemoteFlow(5, wf("etl" + planner.REPLACE_SUFFIX, "echo new"), True)
    plan = planner.compute(Tree.of([wf("etl", "echo newer")]), state(copy, retired(1, "etl", 0)))
    assert kinds(plan) == [("cleanup", copy.workflow.name), ("create_flow", "etl")]


def test_a_copy_left_while_the_old_flow_has_the_name_is_cleaned_up_and_redone() -> None:
    copy = RemoteFlow(5, wf("etl" + planner.REPLACE_SUFFIX, "echo new"), True)
    plan = planner.compute(
        Tree.of([wf("etl", "echo new")]), state(copy, RemoteFlow(1, wf("etl"), True))
    )
    assert kinds(plan) == [("cleanup", copy.workflow.name), ("replace_flow", "etl")]


@pytest.mark.parametrize("task", ["", "t"])
def test_a_reference_to_a_retired_copy_is_a_repoint_not_a_replace(task: str) -> None:
    up = RemoteFlow(1, wf("up"), True)
    old = retired(10, "up", 0)
    down = RemoteFlow(2, wf("down", "echo", Dependency(task=task, flow=old.workflow.name)), True)
    desired = Tree.of([wf("up"), wf("down", "echo", Dependency(task=task, flow="up"))])
    plan = planner.compute(desired, state(up, old, down))
    assert kinds(plan) == [("repoint", "down")]
    assert plan.changes[0].lines == (f"references {old.workflow.name} -> up",)


def test_owned_referrers_of_a_replaced_workflow_are_repointed_once() -> None:
    dep = Dependency(task="t", flow="up")
    flows = [RemoteFlow(1, wf("up"), True)] + [
        RemoteFlow(2 + i, wf(n, "echo", dep), True) for i, n in enumerate(["a", "b", "c"])
    ]
    desired = Tree.of([wf("up", "echo 2"), wf("a", "echo", dep), wf("b", "echo x", dep)])
    plan = planner.compute(desired, state(*flows, referrers={"up": ("a", "b", "c", "c")}))
    # a: re-pointed; b: replaced anyway (points at the new ids); c: no file, keeps the copy
    assert kinds(plan) == [
        ("no_file", "c"),
        ("replace_flow", "b"),
        ("replace_flow", "up"),
        ("repoint", "a"),
    ]
    assert [n for n in plan.notes if "keeps pointing" in n] == [
        "c: no file for it; it keeps pointing at the retired copy of up"
    ]  # once, though c references up twice


def test_prune_retires_and_counts_against_the_mass_delete_guard() -> None:
    flows = [RemoteFlow(i, wf(f"f{i}"), True) for i in range(1, 6)]
    plan = planner.compute(Tree.of([wf(f"f{i}") for i in range(1, 5)]), state(*flows), prune=True)
    assert kinds(plan) == [("retire", "f5")]
    with pytest.raises(PlanRefused, match="would delete 2 of the 5"):
        planner.compute(Tree.of([wf(f"f{i}") for i in range(1, 4)]), state(*flows), prune=True)


def test_no_file_says_whether_it_keeps_firing() -> None:
    daily = Schedule("periodic", "day", "0 0 2 * * ? *", "2024-01-01", True)
    plan = planner.compute(Tree.of([]), state(RemoteFlow(1, wf("x", schedule=daily), True)))
    (change,) = plan.changes
    assert change.kind == Kind.NO_FILE and "enabled: it keeps firing" in change.note
    assert plan.has_changes


def test_json_names_every_kind_and_carries_blocked() -> None:
    changes = (
        Change(Kind.RENAME, ("b",), renamed_from="a"),
        Change(Kind.RETIRE, ("c",)),
        Change(Kind.REPOINT, ("d",)),
        Change(Kind.ADOPT, ("e",)),
        replace(Change(Kind.DELETE_FLOW, ("f",)), blocked="referenced by g"),
    )
    listed = json.loads(report.plan_json(planner.Plan(changes), "t"))["changes"]
    assert {c["action"] for c in listed} == {"rename", "retire", "repoint", "adopt", "delete_flow"}
    assert next(c for c in listed if c["action"] == "rename")["renamed_from"] == "a"
    assert [c.get("blocked") for c in listed if "blocked" in c] == ["referenced by g"]


def test_a_blocked_change_is_held_back_and_a_no_file_change_never_sent() -> None:
    from gitsync import guards
    from gitsync.applying import _run_order, _waits

    blocked = Change(Kind.RETIRE, ("f",), flow_id=1, blocked="referenced")
    listed = Change(Kind.NO_FILE, ("g",), flow_id=2)
    order = _run_order(planner.Plan((blocked, listed)), state())
    assert order == [blocked]
    assert guards.held_back(order, _waits(order, state())) == {0: "blocked: referenced"}


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ("retention: 3", "expected a mapping with versions and days"),
        ("retention: {versions: -1}", "targets.t.retention.versions: must be a whole number"),
        ("retention: {days: x}", "targets.t.retention.days: must be a whole number"),
        ("retention: {weeks: 2}", "unknown key (known: versions, days)"),
    ],
)
def test_retention_is_checked_with_its_place(tmp_path, retention: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gitsync.yaml"
    path.write_text(f"targets:\n  t:\n    url: embedded\n    {retention}\n")
    with pytest.raises(ConfigError, match=r"gitsync.yaml:4:\d+: ") as e:
        read_config(path)
    assert message in str(e.value)


def test_retention_defaults_and_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gitsync.yaml"
    path.write_text(
        "targets:\n  t: {url: embedded, retention: {days: 7}}\n  u: {url: embedded, root: other}\n"
    )
    targets = read_config(path).targets
    assert targets["t"].retention == (3, 7) and targets["u"].retention == (3, 30)


def test_a_file_that_references_a_renamed_or_removed_workflow_is_named() -> None:
    dep = Dependency(task="t", flow="old")
    flows = (RemoteFlow(1, wf("old"), True), RemoteFlow(2, wf("down", "echo", dep), True))
    plan = planner.compute(Tree.of([wf("new"), wf("down", "echo", dep)]), state(*flows))
    assert kinds(plan) == [("rename", "new")]
    assert "down: references old, which is renamed to new in this plan" in plan.notes[0]
    plan = planner.compute(Tree.of([wf("down", "echo", dep)]), state(*flows))
    assert kinds(plan) == [("no_file", "old")]
    assert "down: references old, which is without a file in this plan" in plan.notes[0]


def test_a_held_copy_is_deleted_only_once_nothing_outside_references_it() -> None:
    live = RemoteFlow(1, wf("etl"), True)
    held = retired(10, "etl", 90)
    assert held.retired is not None
    held = replace(held, retired=replace(held.retired, held=True))
    before = state(live, held, retired(11, "etl", 1))
    keep = Retention(1, 30)
    plan = planner.compute(Tree.of([wf("etl")]), before, retention=keep, now=NOW)
    assert not plan.changes  # the outside flows not read: kept
    assert any("held: workflows outside the owned root referenced it" in n for n in plan.notes)
    assert plan_retired.outside_needed(plan, before, keep, NOW)
    assert not plan_retired.outside_needed(plan, replace(before, outside_referrers={}), keep, NOW)
    referenced = replace(before, outside_referrers={held.workflow.name: ("Workflow/o/x",)})
    plan = planner.compute(Tree.of([wf("etl")]), referenced, retention=keep, now=NOW)
    assert not plan.changes
    assert any("kept: Workflow/o/x (outside the owned root) still" in n for n in plan.notes)
    read = replace(before, outside_referrers={"etl": ("Workflow/o/x",)})  # not the copy
    plan = planner.compute(Tree.of([wf("etl")]), read, retention=keep, now=NOW)
    assert kinds(plan) == [("delete_flow", held.workflow.name)]


def test_a_pruned_workflows_copy_is_kept_for_days_only() -> None:
    young, old = retired(10, "a", 5), retired(11, "b", 40)
    pruned = [replace(c, retired=replace(c.retired, successor="")) for c in (young, old)]  # type: ignore[type-var]
    plan = planner.compute(Tree.of([]), state(*pruned), retention=Retention(3, 30), now=NOW)
    assert kinds(plan) == [("delete_flow", marker.retired_name("b", 11))]
    assert plan.changes[0].note.endswith(", of b)"), plan.changes[0].note


def test_retention_notes_agree_and_come_once() -> None:
    live = RemoteFlow(1, wf("etl"), True)
    old = retired(10, "etl", 90)
    for users, said in ((("t", "t"), "t still references"), (("u", "t"), "t, u still reference")):
        plan = planner.compute(
            Tree.of([wf("etl")]),
            state(live, old, referrers={old.workflow.name: users}),
            retention=Retention(0, 30),
            now=NOW,
        )
        assert [n for n in plan.notes if "retention" in n] == [
            f"{'/'.join(old.workflow.path)}: retired copy past its retention, kept: {said} it"
        ], plan.notes


def test_a_rename_into_a_name_taken_outside_or_in_the_org_is_a_conflict() -> None:
    old = RemoteFlow(5, wf("a"), True)
    desired = Tree((replace(wf("b"), renamed_from="a"),))
    outside = replace(state(old), outside={"b": "Workflow/other"}, flow_ids={"a": 5, "b": 9})
    plan = planner.compute(desired, outside)
    assert kinds(plan) == [("conflict", "b")], kinds(plan)
    assert "outside the owned root, at Workflow/other" in (plan.changes[0].note or "")
    taken = replace(state(old), flow_ids={"a": 5, "b": 9})
    plan = planner.compute(desired, taken)
    assert kinds(plan) == [("conflict", "b")], kinds(plan)
    assert "(flow 9) is named 'b'" in (plan.changes[0].note or "")
    guessed = planner.compute(Tree((wf("b"),)), outside)  # found by its task bodies
    assert kinds(guessed) == [("conflict", "b")], kinds(guessed)


def _named(name: str, old: str, command: str = "echo") -> Workflow:
    return replace(wf(name, command), renamed_from=old)


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ((_named("x", "a"), _named("a", "b", "echo b")), "x: renamed_from 'a', but a still has"),
        ((_named("a", "b", "echo b"), _named("b", "a")), "a: renamed_from 'b', but b still has"),
        ((_named("x", "a"), _named("y", "a")), "x, y: each says renamed_from 'a'"),
        ((_named("b", "a"),), "b: renamed_from 'a', but a workflow named 'b' already exists"),
    ],
)
def test_an_ambiguous_renamed_from_is_refused_naming_the_file(
    files: tuple[Workflow, ...], why: str
) -> None:
    remote = state(RemoteFlow(1, wf("a"), True), RemoteFlow(2, wf("b", "echo b"), True))
    with pytest.raises(PlanRefused, match="renamed_from cannot be honoured") as refused:
        planner.compute(Tree(files), remote)
    assert why in str(refused.value), str(refused.value)


def test_a_harmless_renamed_from_is_noted_not_ignored() -> None:
    remote = state(RemoteFlow(1, wf("a"), True), RemoteFlow(2, wf("u", "echo u"), False))
    plan = planner.compute(Tree((_named("a", "a"), _named("z", "u", "echo z"))), remote)
    assert "a: renamed_from names the file itself; nothing to rename" in plan.notes, plan.notes
    assert any("z: renamed_from 'u' names a workflow not managed" in n for n in plan.notes)
    alone = planner.compute(Tree((_named("n", "n"),)), state())
    assert any("n: renamed_from 'n' names no managed workflow" in n for n in alone.notes)


def test_only_plans_that_retire_or_delete_need_the_flows_outside() -> None:
    live = RemoteFlow(1, wf("etl"), True)
    base = replace(state(live), outside={"theirs": "Workflow/o"}, flow_ids={"etl": 1, "theirs": 9})
    keep = Retention()
    same = planner.compute(Tree.of([wf("etl")]), base)
    update = planner.compute(Tree.of([wf("etl", description="new")]), base)
    assert [c.kind for c in update.changes] == [Kind.UPDATE_FLOW]
    assert not plan_retired.outside_needed(same, base, keep, NOW)
    assert not plan_retired.outside_needed(update, base, keep, NOW)
    replaced = planner.compute(Tree.of([wf("etl", "echo new")]), base)
    pruned = planner.compute(Tree.of([]), base, prune=True, allow_mass_delete=True)
    assert [c.kind for c in pruned.changes] == [Kind.RETIRE]
    for plan in (replaced, pruned):
        assert plan_retired.outside_needed(plan, base, keep, NOW)
        assert not plan_retired.outside_needed(plan, replace(base, outside_referrers={}), keep, NOW)


def test_each_outside_referrer_of_a_retired_workflow_is_named_once() -> None:
    old = RemoteFlow(1, wf("old"), True)
    read = replace(
        state(old),
        outside={"b": "Workflow/o", "a": "Workflow/o"},
        outside_referrers={"old": ("Workflow/o/b", "Workflow/o/a"), "new": ("Workflow/o/c",)},
    )
    moved = replace(wf("new", "echo new"), renamed_from="old")  # a renaming replace
    plan = planner.compute(Tree((moved,)), read)
    assert [c.kind for c in plan.changes] == [Kind.REPLACE_FLOW]
    copy = marker.retired_name("new", 1)
    assert [n for n in plan.notes if "outside the owned root" in n] == [
        f"Workflow/o/{x} (outside the owned root) references old: it is not changed and keeps "
        f"pointing at the retired copy {copy}, which is kept until it no longer does"
        for x in ("a", "b")
    ]


def test_a_copy_kept_by_an_outside_flow_keeps_the_copy_it_references() -> None:
    """outside a -> b's retired copy -> c's retired copy: neither copy is deleted (a blocked
    delete would ask the user to edit a retired copy); both go once a no longer refers."""
    c_copy = retired(20, "c", 90)
    b_copy = retired(21, "b", 90, Dependency(flow=c_copy.workflow.name, task="t"))
    live = [RemoteFlow(1, wf("b"), True), RemoteFlow(2, wf("c"), True)]
    base = state(*live, c_copy, b_copy, referrers={c_copy.workflow.name: (b_copy.workflow.name,)})
    desired = Tree.of([wf("b"), wf("c")])
    held = replace(base, outside_referrers={b_copy.workflow.name: ("Workflow/o/a",)})
    plan = planner.compute(desired, held, retention=Retention(0, 0), now=NOW)
    assert kinds(plan) == [], kinds(plan)
    assert sorted(n.split(":")[0] for n in plan.notes if "kept" in n) == [
        "/".join(b_copy.workflow.path),
        "/".join(c_copy.workflow.path),
    ], plan.notes
    free = replace(base, outside_referrers={})
    plan = planner.compute(desired, free, retention=Retention(0, 0), now=NOW)
    assert kinds(plan) == [
        ("delete_flow", b_copy.workflow.name),
        ("delete_flow", c_copy.workflow.name),
    ]
