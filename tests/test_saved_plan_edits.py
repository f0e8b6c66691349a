"""Saved plans edited by hand, written where they must not be, and the refusals' wording."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gitsync.applying import ApplyResult, Outcome
from gitsync.changes import Kind
from gitsync.cli.saved import finish
from gitsync.plan_types import Change, Plan
from tests import test_saved_plan
from tests.conftest import Api, run_cli
from tests.test_saved_plan import ETL, edit, flow_id, plan_out, refused, requests_during

engine = test_saved_plan.engine  # the engine that logs its requests, and its log
request_log = test_saved_plan.request_log


def _edited(path: Path, **fields: object) -> None:
    saved = json.loads(path.read_text())
    for key, value in fields.items():
        if key == "on_active_runs":
            saved["options"]["on_active_runs"] = value
        else:
            saved[key] = value
    path.write_text(json.dumps(saved))


def test_edited_options_refuse(example_repo: Path, request_log: Path) -> None:
    assert run_cli("apply", "--auto-approve").exit_code == 0
    edit(example_repo / ETL, "    timeout: 300\n", "    timeout: 900\n")
    plan_out()
    _edited(example_repo / "plan.json", on_active_runs="cancel")
    assert "options or has_changes were edited" in refused(request_log, "plan.json")


def test_has_changes_edited_to_false_refuses(example_repo: Path, request_log: Path) -> None:
    assert run_cli("apply", "--auto-approve").exit_code == 0
    edit(example_repo / ETL, "    timeout: 300\n", "    timeout: 900\n")
    plan_out()
    _edited(example_repo / "plan.json", has_changes=False)
    result, sent = requests_during(request_log, lambda: run_cli("apply", "plan.json"))
    assert result.exit_code == 1, result.output
    assert "nothing to apply" not in result.output and "the file was edited" in result.output
    assert sent == []


@pytest.mark.parametrize(
    ("where", "why"),
    [
        (ETL, "it is inside the flows folder (flows)"),
        ("flows/sales/new_plan.json", "it is inside the flows folder (flows)"),
        ("gitsync.yaml", "it is the configuration file"),
        ("link.json", "it is a symbolic link"),
        ("fifo", "it exists and is not a regular file"),
    ],
)
def test_plan_out_refuses_a_path_it_would_replace_wrongly(
    example_repo: Path, where: str, why: str
) -> None:
    (example_repo / "outside.json").write_text("kept\n")
    (example_repo / "link.json").symlink_to(example_repo / "outside.json")
    os.mkfifo(example_repo / "fifo")
    before = {
        p: p.read_bytes() for p in example_repo.rglob("*") if p.is_file() and p.name != "fifo"
    }
    result = run_cli("plan", "--out", where)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"error: {where}: the saved plan cannot be written there: {why}; choose another path"
    ]
    after = {p: p.read_bytes() for p in example_repo.rglob("*") if p.is_file() and p.name != "fifo"}
    assert after == before and (example_repo / "link.json").is_symlink()


@pytest.mark.parametrize("saved", [None, Path("p.json")])
def test_a_stopped_apply_counts_against_the_whole_plan_and_says_how_to_finish(
    capsys: pytest.CaptureFixture[str], saved: Path | None
) -> None:
    changes = tuple(Change(Kind.CREATE_FLOW, ("d", f"w{i}")) for i in range(40))
    result = ApplyResult([Outcome(c, True) for c in changes[:16]])
    with pytest.raises(KeyboardInterrupt):
        finish(Plan(changes), result, KeyboardInterrupt(), saved)
    out, err = capsys.readouterr()
    assert "Applied 16 of 40 changes." in out and "Stopped before 24 of 40 changes" in err
    if saved is None:
        assert "Run apply again to finish." in err
    else:
        assert "Run apply again" not in err
        assert "Make a new plan (`gitsync plan --out p.json`), review it and apply it" in err


def test_a_saved_plan_applied_already_exits_0_saying_so(
    example_repo: Path, request_log: Path
) -> None:
    plan_out()
    assert run_cli("apply", "plan.json").exit_code == 0
    result, sent = requests_during(request_log, lambda: run_cli("apply", "plan.json"))
    assert result.exit_code == 0, result.output
    assert "the plan saved in plan.json seems applied already. Nothing to apply." in result.output
    assert "workflows changed" not in result.output
    assert [r for r in sent if r["method"] != "GET"] == []


def test_a_refusal_names_the_target_to_plan_for(example_repo: Path, request_log: Path) -> None:
    plan_out()
    edit(example_repo / ETL, "    timeout: 300\n", "    timeout: 901\n")
    assert "Run `gitsync plan --target test --out plan.json` again" in refused(
        request_log, "plan.json"
    )


def test_a_flow_holding_a_current_secret_is_not_blamed_on_it(
    example_repo: Path, monkeypatch: pytest.MonkeyPatch, request_log: Path, api: Api
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "hunter2-c4n4ry-pw")
    (example_repo / "flows/sales/daily/holder.yaml").write_text(
        'schedule: {cycle: week, cron: "0 0 3 ? * SUN *", start: "2024-01-07"}\n'
        "tasks:\n  - name: load\n    command: 'mysql -p${env:DB_PASSWORD} -e \"select 1\"'\n"
    )
    assert run_cli("apply", "--auto-approve").exit_code == 0
    edit(example_repo / ETL, "    timeout: 300\n", "    timeout: 900\n")
    plan_out()
    api.data("POST", "flows", "disable", {"flowId": flow_id(api, "holder")})
    out = refused(request_log, "plan.json")
    assert "(workflows changed: sales/daily/holder)" in out and "secret" not in out
