"""Plans a reviewer can trust, through the command line on the real engine: a changed
multi-line command as a unified diff, a create whole, JSON format 2, secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitsync.engine.server import RunningEngine
from gitsync.report_changes import NO_NEWLINE, unified
from tests.conftest import EXAMPLES, checked_plan, run_cli, write_target

FLOW = """\
description: test
schedule: {cycle: day, cron: "0 0 2 * * ? *"}
tasks:
  - name: extract
    command: |
      echo one
      echo two
      echo three
    timeout: 60
  - name: load
    command: "echo load ${env:GS_TEST_TOKEN} ${env:GS_TEST_PIN}"
    depends_on: [extract]
"""
TOKEN = 'tok"en\\CANARY-77'  # JSON escapes it, so the last masking filter would miss it
PIN = "Q7"  # shorter than any value the filter masks: only the field's label hides it


@pytest.fixture
def repo(tmp_path: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "repo"
    (repo / "flows" / "sales").mkdir(parents=True)
    (repo / "flows" / "sales" / "etl.yaml").write_text(FLOW)
    write_target(repo, engine.url, "gitsync")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITSYNC_TARGET", "test")
    monkeypatch.setenv("GS_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("GS_TEST_PIN", PIN)
    return repo


def plans() -> list[str]:
    outputs = []
    for fmt in ("text", "markdown", "json"):
        result = run_cli("plan", "-o", fmt)
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    return outputs


def test_a_changed_three_line_command_shows_as_a_unified_diff(repo: Path) -> None:
    created = plans()
    for text in created:  # the create, whole, with its secrets masked
        assert "echo two" in text and TOKEN not in text and json.dumps(TOKEN)[1:-1] not in text
    assert "      task extract:\n        command: |\n          echo one\n" in created[0]
    assert "      edges: extract -> load" in created[0]
    flow = checked_plan(created[2])["changes"][-2]
    assert flow["action"] == "create_flow" and flow["details"]["tasks"][1]["command"] == (
        "(sensitive value)"
    )
    assert run_cli("apply", "--auto-approve").exit_code == 0
    etl = repo / "flows" / "sales" / "etl.yaml"
    etl.write_text(FLOW.replace("echo two", "echo 2"))
    text, markdown, as_json = plans()
    assert "        -echo two\n        +echo 2\n" in text
    assert "<pre>" in markdown and "\n  -echo two\n  +echo 2\n" in markdown
    (change, _) = checked_plan(as_json)["changes"]
    assert change["action"] == "replace_flow" and change["workflow"] == "etl"
    assert change["directory"] == ["sales"] and "task bodies change (extract)" in change["reason"]
    assert change["fields"] == [
        {
            "path": "tasks[extract].command",
            "before": "echo one\necho two\necho three\n",
            "after": "echo one\necho 2\necho three\n",
        }
    ]


def test_a_rotated_secret_never_shows_in_any_plan(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli("apply", "--auto-approve").exit_code == 0
    monkeypatch.setenv("GS_TEST_TOKEN", TOKEN + "-rotated")
    monkeypatch.setenv("GS_TEST_PIN", "Q8")
    text, markdown, as_json = plans()
    for shown in (text, markdown, as_json):
        assert "CANARY" not in shown and " Q7" not in shown and " Q8" not in shown, shown
    assert "tasks[load].command: (sensitive value changed)" in text
    (change, _) = checked_plan(as_json)["changes"]
    assert change["fields"] == [
        {"path": "tasks[load].command", "before": "(sensitive value)", "after": "(sensitive value)"}
    ]


def test_a_create_in_the_text_plan_names_every_task_and_command(
    example_repo: Path, engine: RunningEngine
) -> None:
    import yaml

    text = run_cli("plan").stdout
    for path in EXAMPLES.rglob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        for task in document["tasks"]:
            assert f"      task {task['name']}:" in text, task["name"]
            for line in str(task.get("command", "")).split("\n"):
                assert line in text, line


def test_trailing_spaces_and_a_final_line_break_show_in_a_diff() -> None:
    assert unified("echo one   \necho two\n", "echo one\necho two\n") == [
        "@@ -1,2 +1,2 @@",
        "-echo one···",
        "+echo one",
        " echo two",
    ]
    assert unified("a\nb", "a\nb\n") == ["@@ -1,2 +1,2 @@", " a", "-b", NO_NEWLINE, "+b"]
    assert unified("a\nb\n", "a\nb") == ["@@ -1,2 +1,2 @@", " a", "-b", "+b", NO_NEWLINE]
    assert unified("a\nb", "a\nc") == ["@@ -1,2 +1,2 @@", " a", "-b", "+c"]  # no marker
    assert unified("a\tb\t", "a\tb") == ["@@ -1 +1 @@", "-a\tb→", "+a\tb"]
