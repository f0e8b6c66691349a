"""Plans in the file's terms, pure: every kind of change in JSON format 2 against
schemas/plan.schema.json, field changes with both values, unified diffs of long strings, whole
creates, and odd values (empty strings, NaN, unicode, control characters, ``..``, huge
commands) in text, Markdown and JSON."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from gitsync import plan as planner
from gitsync import report
from gitsync.changes import Kind
from gitsync.codec import marker
from gitsync.model import Dependency, RunMode, Schedule, Task, Tree, Workflow
from gitsync.plan import RemoteFlow, RemoteState, Retention
from gitsync.plan_types import Change, FieldChange
from gitsync.report_changes import body, has_body
from gitsync.substitution import SENSITIVE, Secrets
from gitsync.sync import masked
from tests.conftest import asks_for_a_json_plan, checked_plan

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
ROOT = ("gitsync",)
DAILY = Schedule("periodic", "day", "0 0 2 * * ? *", "2024-01-01", True)
THREE = "echo one\necho two\necho three\n"


def wf(name: str, command: str = "echo", *deps: Dependency, **extra: object) -> Workflow:
    return Workflow(name, tasks=(Task("t", command=command, depends_on=deps),), **extra)  # type: ignore[arg-type]


def state(*flows: RemoteFlow, **extra: object) -> RemoteState:
    return RemoteState(
        root=ROOT,
        dirs={(): "top", ROOT: "root"},
        flows=flows,
        outside=extra.pop("outside", {}),  # type: ignore[arg-type]
        flow_ids={f.workflow.name: f.id for f in flows},
        **extra,  # type: ignore[arg-type]
    )


def one(desired: Workflow, remote: Workflow, managed: bool = True) -> planner.Change:
    plan = planner.compute(Tree.of([desired]), state(RemoteFlow(1, remote, managed)))
    (change,) = [c for c in plan.changes if c.kind not in (Kind.ENABLE, Kind.DISABLE)]
    return change


def every_kind() -> list[planner.Plan]:
    """Plans that between them hold a change of every kind."""
    retired_copy = RemoteFlow(
        90,
        wf(marker.retired_name("upd", 90)),
        True,
        marker.Retired("", NOW - dt.timedelta(days=400), "upd"),
    )
    live = [
        RemoteFlow(1, wf("upd", schedule=DAILY), True),
        RemoteFlow(2, wf("rep", "echo old"), True),
        RemoteFlow(3, wf("mov"), True),
        RemoteFlow(4, wf("old_name", "echo renamed"), True),
        RemoteFlow(5, wf("adp"), False),
        RemoteFlow(6, wf("gone", "echo gone"), True),
        RemoteFlow(7, wf("ref", "echo", Dependency(flow="rep")), True),
        RemoteFlow(8, wf("rep" + planner.REPLACE_SUFFIX), True),
        RemoteFlow(9, wf("off", schedule=DAILY), True),
        *(RemoteFlow(20 + i, wf(f"keep{i}"), True) for i in range(10)),
        retired_copy,
    ]
    desired = [
        wf("upd", schedule=replace(DAILY, cron="0 0 3 * * ? *")),
        wf("rep", THREE),
        wf("mov", directory=("elsewhere",)),
        wf("new_name", "echo renamed"),
        wf("adp"),
        wf("ref", "echo", Dependency(flow="rep")),
        wf("made", THREE, schedule=DAILY),
        wf("clash"),
        wf("off", schedule=replace(DAILY, enabled=False)),
        *(wf(f"keep{i}") for i in range(10)),
    ]
    remote = state(*live, outside={"clash": "Workflow/other"}, referrers={"rep": ("ref",)})
    kept = planner.compute(Tree.of(desired), remote, retention=Retention(0, 1), now=NOW)
    pruned = planner.compute(Tree.of(desired), remote, prune=True)
    first = kept.changes[0]
    blocked = replace(kept, changes=(replace(first, blocked="a run is waiting"), *kept.changes))
    return [kept, pruned, blocked]


def test_every_kind_of_change_validates_against_the_schema() -> None:
    seen = set()
    for plan in every_kind():
        listed = checked_plan(report.plan_json(plan, "t"))
        assert listed["format_version"] == 2
        seen |= {c["action"] for c in listed["changes"]}
        assert any("blocked" in c for c in listed["changes"]) or plan is not every_kind()[2]
    assert seen == {str(k) for k in Kind}


def test_markdown_knows_which_changes_have_a_body_without_making_it() -> None:
    for plan in every_kind():
        for change in plan.changes:
            assert has_body(change) == bool(body(change)), change.kind


def test_the_schema_refuses_what_format_2_does_not_allow() -> None:
    """The check the suite's hook runs can fail: a v1 change, a create without its details."""
    plan = json.loads(report.plan_json(every_kind()[0], "t"))
    for broken in (
        {**plan, "format_version": 1},
        {**plan, "changes": [{**plan["changes"][0], "path": "x (1 task)"}]},
        {**plan, "changes": [{k: v for k, v in plan["changes"][0].items() if k != "fields"}]},
        {**plan, "changes": [dict(c, details=None) for c in plan["changes"]]},
    ):
        with pytest.raises(AssertionError):
            checked_plan(json.dumps(broken))
    with pytest.raises(AssertionError, match="NaN"):
        checked_plan('{"x": NaN}')


def test_the_hook_knows_a_json_plan_when_it_sees_one() -> None:
    assert asks_for_a_json_plan(["plan", "-o", "json"])
    assert asks_for_a_json_plan(["--debug", "plan", "--output=json", "--target", "dev"])
    assert not asks_for_a_json_plan(["plan", "-o", "markdown"])
    assert not asks_for_a_json_plan(["validate", "--format", "json"])


def test_a_changed_field_has_its_path_and_both_values() -> None:
    change = one(wf("a", schedule=replace(DAILY, cron="0 0 3 * * ? *")), wf("a", schedule=DAILY))
    (as_json,) = [
        c for c in checked_plan(report.plan_json(planner.Plan((change,)), "t"))["changes"]
    ]
    assert as_json["fields"] == [
        {"path": "schedule.cron", "before": "0 0 2 * * ? *", "after": "0 0 3 * * ? *"}
    ]
    assert as_json["workflow"] == "a" and as_json["directory"] == [] and "reason" not in as_json


def test_a_changed_three_line_command_is_a_unified_diff() -> None:
    change = one(wf("a", THREE.replace("two", "2")), wf("a", THREE))
    plan = planner.Plan((change,))
    text = report.plan_text(plan, "t").splitlines()
    at = text.index("      tasks[t].command: changed")
    assert text[at + 1 : at + 6] == [
        "        @@ -1,3 +1,3 @@",
        "         echo one",
        "        -echo two",
        "        +echo 2",
        "         echo three",
    ]
    markdown = report.plan_markdown(plan, "t")
    assert "\n  -echo two\n  +echo 2\n" in markdown
    (as_json,) = checked_plan(report.plan_json(plan, "t"))["changes"]
    assert {"path": "tasks[t].command", "before": THREE, "after": THREE.replace("two", "2")} in (
        as_json["fields"]
    )
    assert as_json["action"] == "replace_flow" and "task bodies change (t)" in as_json["reason"]


def test_a_create_shows_the_whole_workflow() -> None:
    new = Workflow(
        "made",
        description="two\nlines",
        schedule=DAILY,
        parameters=(("REGION", "emea"),),
        tasks=(
            Task("extract", command=THREE, timeout=600),
            Task("load", command="", depends_on=(Dependency("extract"),)),
            Task("report", command="cat", depends_on=(Dependency("t", "up", rerun=False),)),
        ),
    )
    plan = planner.compute(Tree.of([new]), state())
    text = report.plan_text(plan, "t")
    for line in (
        "+ create   made (3 tasks)",
        "      description: |-",
        "        two",
        "      schedule:",
        "        cron: 0 0 2 * * ? *",
        "      task extract:",
        "        command: |",
        "          echo three",
        "        timeout: 600",
        "      task load:",
        '        command: ""',
        "        depends_on: extract",
        "      task report:",
        "        command: cat",
        "      parameters:",
        "        REGION: emea",
        "      edges: extract -> load, up.t -> report",
    ):
        assert line in text.splitlines(), line
    details = checked_plan(report.plan_json(plan, "t"))["changes"][0]["details"]
    assert details["tasks"][0] == {"name": "extract", "command": THREE, "timeout": 600}
    assert "<pre>" in report.plan_markdown(plan, "t") and "echo three" in report.plan_markdown(
        plan, "t"
    )


def test_retire_says_what_stays_and_delete_what_goes() -> None:
    plans = every_kind()
    retire = next(c for c in plans[1].changes if c.kind == Kind.RETIRE)
    text = report.plan_text(replace(plans[1], changes=(retire,)), "t")
    assert "kept, paused, in the retired copy: its tasks (t) and its run history" in text
    delete = next(c for c in plans[0].changes if c.kind == Kind.DELETE_FLOW)
    text = report.plan_text(replace(plans[0], changes=(delete,)), "t")
    assert "lost: the retired copy, its runs and their logs" in text


def test_odd_values_stay_readable_and_valid() -> None:
    remote = Workflow(
        "a..b",
        description="",
        tasks=(
            Task("x..y", command="", run_mode=RunMode(cpu=1.0)),
            Task("ev\x1bil\n", command="rm -rf /"),
        ),
    )
    desired = Workflow(
        "a..b",
        description="naïve ✓ 日本\nzweite Zeile",
        tasks=(Task("x..y", command="line 1\nline 2", run_mode=RunMode(cpu=float("nan"))),),
    )
    plan = planner.Plan((one(desired, remote),))
    text, markdown = report.plan_text(plan, "t"), report.plan_markdown(plan, "t")
    for shown in (text, markdown):
        assert "\x1b" not in shown and "ev\\x1bil\\n" in shown  # a service name, escaped
        assert "+line 1" in shown and "+zweite Zeile" in shown and "naïve ✓ 日本" in shown
    (as_json,) = checked_plan(report.plan_json(plan, "t"))["changes"]
    fields = {f["path"]: f for f in as_json["fields"]}
    assert fields["tasks[x..y].run_mode.cpu"] == {
        "path": "tasks[x..y].run_mode.cpu",
        "before": 1.0,
        "after": "nan",
    }
    assert fields["tasks[x..y].command"]["before"] == ""
    assert fields["tasks[ev\x1bil\n]"]["before"]["command"] == "rm -rf /"
    assert as_json["workflow"] == "a..b"


def test_only_line_breaks_differ_says_so_exactly() -> None:
    change = one(wf("a", "x\n" * 40), wf("a", "x\r\n" * 40))
    text = report.plan_text(planner.Plan((change,)), "t")
    assert "tasks[t].command: changed" in text and "+x" in text and "-x\\r" in text
    change = one(wf("a", "y" * 70 + "\n"), wf("a", "y" * 70))  # a final line break added
    lines = report.plan_text(planner.Plan((change,)), "t").splitlines()
    assert lines[4:8] == [  # as diff writes it, not as an empty "+" line
        "        @@ -1 +1 @@",
        "        -" + "y" * 70,
        "        \\ No newline at end of file",
        "        +" + "y" * 70,
    ]


def test_very_long_commands_keep_markdown_under_its_limit() -> None:
    huge = "\n".join(f"echo {i} <&> |" for i in range(20_000))
    changes = [one(wf(f"w{i}", huge.replace("|", "|2")), wf(f"w{i}", huge)) for i in range(3)]
    markdown = report.plan_markdown(planner.Plan(tuple(changes)), "t")
    assert len(markdown) <= report.MARKDOWN_LIMIT
    assert "more lines: run `gitsync plan` for all of them" in markdown
    assert "2 more changes are not shown" in markdown
    assert "<&>" not in markdown and "&lt;&amp;&gt; &#124;" in markdown
    text = report.plan_text(planner.Plan(tuple(changes)), "t")
    assert "        +echo 19999 <&> |2" in text.splitlines()  # the text plan holds all of it
    many = Workflow("many", tasks=tuple(Task(f"t{i}", command=f"echo {i}") for i in range(5_000)))
    created = planner.compute(Tree.of([many]), state())
    markdown = report.plan_markdown(created, "t")
    assert len(markdown) <= report.MARKDOWN_LIMIT and "task t0:" in markdown
    assert "more lines: run `gitsync plan` for all of them" in markdown
    assert "      task t4999:" in report.plan_text(created, "t").splitlines()


def test_secret_values_are_masked_in_fields_and_details() -> None:
    secret = 'pa"ss\\wörd'  # JSON escapes it: only masking the plan itself hides it
    change = one(wf("a", f"login {secret}\nrun"), wf("a", "login old\nrun"))
    created = planner.compute(Tree.of([wf("b", f"use {secret}")]), state()).changes[0]
    secrets = Secrets(labels={"a": frozenset({"tasks[t].command"})}, values={secret: "${env:PW}"})
    plan = masked(planner.Plan((change, created)), secrets)
    outputs = [report.plan_text(plan, "t"), report.plan_markdown(plan, "t")]
    outputs.append(report.plan_json(plan, "t"))
    for text in outputs:
        assert secret not in text and json.dumps(secret)[1:-1] not in text
        assert "login old" not in text  # a sensitive field's old value neither
    listed = checked_plan(outputs[-1])["changes"]
    assert listed[1]["fields"] == [
        {"path": "tasks[t].command", "before": SENSITIVE, "after": SENSITIVE}
    ]
    assert listed[0]["details"]["tasks"][0]["command"] == "use ***"
    assert change.fields[0] == FieldChange(
        "tasks[t].command", "login old\nrun", f"login {secret}\nrun"
    )


def test_the_summary_counts_agree_with_their_nouns() -> None:
    one_dir = planner.Plan((Change(Kind.CREATE_DIR, ("a",)),))
    assert report.plan_summary(one_dir) == "1 directory to create"
    dirs = planner.Plan((Change(Kind.CREATE_DIR, ("a",)), Change(Kind.CREATE_DIR, ("b",))))
    assert report.plan_summary(dirs) == "2 directories to create"
    leftovers = planner.Plan(tuple(Change(Kind.CLEANUP, ("d", n)) for n in "ab"))
    assert report.plan_summary(leftovers) == "2 leftovers to clean up"


def test_a_task_renamed_inside_a_replace_shows_as_a_rename() -> None:
    remote = Workflow("a", tasks=(Task("t", command="echo t"), Task("b", command="echo b")))
    desired = Workflow("a", tasks=(Task("t", command="echo 2"), Task("bee", command="echo b")))
    change = one(desired, remote)
    assert change.kind == Kind.REPLACE_FLOW
    lines = body(change)
    assert "task renamed: b -> bee" in lines
    assert not any(line.startswith(("task added", "task removed")) for line in lines)
    other = Workflow("a", tasks=(Task("t", command="echo 2"), Task("bee", command="echo c")))
    lines = body(one(other, remote))  # another body: removed and added, as before
    assert "task added: bee" in lines and "task removed: b" in lines
