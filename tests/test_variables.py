"""Per-target variables and secret references (issue #15), on the real engine over HTTP.

dev and prod share one engine; until name prefixes land they live in two organizations,
since workflow names are unique per organization.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitsync.client import Client
from gitsync.engine.server import RunningEngine
from gitsync.model import Workflow
from gitsync.remote import read_state
from tests.conftest import SPEC_ORG, SPEC_USER, run_cli

CANARY = "CANARY-5ecret-9f1d27"
CANARY_2 = "CANARY-r0tated-44ab01"

FLOW = """\
description: load for ${var.ENV}
owners: ["${var.OWNER}"]
parameters:
  WORK_DIR: ${var.WORK_DIR}
  DB_PASSWORD: ${env:GS_TEST_DB_PASSWORD}
  LITERAL: $${var.NOT_A_VAR}
schedule:
  cycle: day
  cron: "0 30 2 * * ? *"
  start: "2024-01-01"
tasks:
  - name: load
    command: echo ${cal_dt} ${WORK_DIR} ${var.WORK_DIR}
"""


def _config(url: str, dev_dir: str = "/data/dev") -> str:
    return f"""\
flows: flows
vars:
  OWNER: alice
targets:
  dev:
    url: {url}
    org_id: {SPEC_ORG}
    user_id: {SPEC_USER}
    root: gitsync/dev
    vars: {{ENV: dev, WORK_DIR: {dev_dir}}}
  prod:
    url: {url}
    org_id: o_other
    user_id: u_mallory
    root: gitsync/prod
    vars:
      ENV: prod
      WORK_DIR: /data/prod
      OWNER: mallory
"""


@pytest.fixture
def repo(tmp_path: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    (repo / "flows" / "load.yaml").write_text(FLOW)
    (repo / "gitsync.yaml").write_text(_config(engine.url))
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GS_TEST_DB_PASSWORD", CANARY)
    monkeypatch.delenv("GITSYNC_TARGET", raising=False)
    return repo


def _apply(target: str) -> str:
    result = run_cli("apply", "--auto-approve", "--target", target)
    assert result.exit_code == 0, result.output
    return result.output


def test_each_target_carries_its_own_values(repo: Path, engine: RunningEngine) -> None:
    _apply("dev")
    _apply("prod")
    for target in ("dev", "prod"):
        result = run_cli("plan", "--detailed-exitcode", "--target", target)
        assert result.exit_code == 0, result.output
    dev = _remote(engine, SPEC_ORG, SPEC_USER, "gitsync/dev")
    prod = _remote(engine, "o_other", "u_mallory", "gitsync/prod")
    assert dict(dev.parameters)["WORK_DIR"] == "/data/dev" and dev.owners == ("alice",)
    assert dict(prod.parameters)["WORK_DIR"] == "/data/prod" and prod.owners == ("mallory",)
    assert (dev.description, prod.description) == ("load for dev", "load for prod")
    for wf in (dev, prod):
        assert wf.tasks[0].command == f"echo ${{cal_dt}} ${{WORK_DIR}} /data/{wf.description[9:]}"
        assert dict(wf.parameters)["LITERAL"] == "${var.NOT_A_VAR}"  # the escape, written literally
        assert dict(wf.parameters)["DB_PASSWORD"] == CANARY  # the service has no secret store
    pulled = run_cli("pull", "--target", "prod", "--force")
    assert pulled.exit_code == 0, pulled.output
    assert (repo / "flows" / "load.yaml").read_text() == FLOW  # same meaning: left alone


def _remote(engine: RunningEngine, org: str, user: str, root: str) -> Workflow:
    with Client(engine.url, org, user) as client:
        state = read_state(client, tuple(root.split("/")))
    (flow,) = state.flows
    return flow.workflow


def test_a_changed_variable_changes_only_its_target(repo: Path, engine: RunningEngine) -> None:
    _apply("dev")
    _apply("prod")
    (repo / "gitsync.yaml").write_text(_config(engine.url, dev_dir="/data/dev2"))
    dev = run_cli("plan", "--detailed-exitcode", "--target", "dev")
    assert dev.exit_code == 2, dev.output
    assert 'parameters.WORK_DIR: "/data/dev" -> "/data/dev2"' in dev.output
    prod = run_cli("plan", "--detailed-exitcode", "--target", "prod")
    assert prod.exit_code == 0, prod.output


def test_a_secret_never_shows_and_its_change_is_masked(
    repo: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = [_apply("dev")]
    monkeypatch.setenv("GS_TEST_DB_PASSWORD", CANARY_2)
    for fmt in ("text", "json", "markdown"):
        result = run_cli("--debug", "plan", "--target", "dev", "-o", fmt)
        assert result.exit_code == 0, result.output
        assert "parameters.DB_PASSWORD: (sensitive value changed)" in result.output
        outputs.append(result.output)
        if fmt == "json":
            assert json.loads(result.stdout)["changes"]  # still JSON
    outputs.append(run_cli("--debug", "apply", "--auto-approve", "--target", "dev").output)
    outputs.append(run_cli("--debug", "pull", "--target", "dev", "--force").output)
    plan = run_cli("plan", "--detailed-exitcode", "--target", "dev")
    assert plan.exit_code == 0, plan.output  # applied: the new value is on the service
    for text in outputs:
        assert CANARY not in text and CANARY_2 not in text
    assert CANARY_2 not in (repo / "flows" / "load.yaml").read_text()
    logs = [p for p in (repo / ".gitsync").rglob("*") if p.is_file() and ".sqlite" not in p.name]
    engine_files = [p for p in (repo.parent / "engine").rglob("*") if p.is_file()]
    for path in [*logs, *(p for p in engine_files if ".sqlite" not in p.name)]:
        text = path.read_text(errors="replace")
        assert CANARY not in text and CANARY_2 not in text, path


def test_a_rotated_secret_is_masked_on_a_target_with_a_name_prefix(
    repo: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan names the flow as the target does (dev_load); the secrets know the file's
    name (load): the old value, no longer a known secret, must still never show."""
    config = _config(engine.url).replace(
        "    root: gitsync/dev\n", "    root: gitsync/dev\n    name_prefix: dev_\n"
    )
    (repo / "gitsync.yaml").write_text(config)
    _apply("dev")
    monkeypatch.setenv("GS_TEST_DB_PASSWORD", CANARY_2)
    for fmt in ("text", "json", "markdown"):
        result = run_cli("plan", "--target", "dev", "-o", fmt)
        assert result.exit_code == 0, result.output
        assert CANARY not in result.output and CANARY_2 not in result.output, result.output
    assert "parameters.DB_PASSWORD: (sensitive value changed)" in result.output


def test_pull_after_a_rotation_keeps_the_reference_not_the_old_value(
    repo: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service still holds the old secret after the environment's rotates: pull must
    write the file's reference back, never that old value (it is no longer a known secret)."""
    _apply("dev")
    monkeypatch.setenv("GS_TEST_DB_PASSWORD", CANARY_2)
    (repo / "flows" / "load.yaml").write_text(FLOW.replace("load for", "loading for"))
    pulled = run_cli("pull", "--target", "dev", "--force")
    assert pulled.exit_code == 0, pulled.output
    text = (repo / "flows" / "load.yaml").read_text()
    assert CANARY not in text and CANARY_2 not in text
    assert "DB_PASSWORD: ${env:GS_TEST_DB_PASSWORD}" in text
    assert "description: load for dev" in text  # the rest is what the service holds


def test_a_problem_never_quotes_a_secret(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "flows" / "load.yaml").write_text(
        FLOW.replace('start: "2024-01-01"', "start: ${env:GS_TEST_DB_PASSWORD}").replace(
            "command:", "depends_on: [{flow: '${env:GS_TEST_DB_PASSWORD}'}]\n    command:"
        )
    )
    for command in ("plan", "apply"):
        result = run_cli(
            *([command, "--auto-approve"] if command == "apply" else [command]), "--target", "dev"
        )
        assert result.exit_code == 1, result.output
        assert CANARY not in result.output and "***" in result.output, result.output


def test_an_unset_secret_stops_plan_naming_it_and_its_place(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GS_TEST_DB_PASSWORD")
    result = run_cli("plan", "--target", "dev")
    assert result.exit_code == 1
    assert "load.yaml:5:16: ${env:GS_TEST_DB_PASSWORD}" in result.output
    assert "'GS_TEST_DB_PASSWORD' is not set" in result.output


def test_an_undefined_variable_names_its_place_and_target(repo: Path) -> None:
    text = FLOW.replace("${var.ENV}", "${var.ENVIRONMENT}")
    (repo / "flows" / "load.yaml").write_text(text)
    result = run_cli("validate")
    assert result.exit_code == 1
    for target in ("dev", "prod"):
        assert (
            f"flows/load.yaml:1:14: ${{var.ENVIRONMENT}}: variable 'ENVIRONMENT' is not "
            f"defined for target '{target}'"
        ) in result.output
    only = run_cli("validate", "--target", "prod")
    assert only.exit_code == 1 and "'dev'" not in only.output


def test_an_unquoted_reference_in_a_flow_list_gets_a_hint(repo: Path) -> None:
    (repo / "flows" / "load.yaml").write_text(
        "owners: [${var.OWNER}]\ntasks: [{name: a, command: echo}]\n"
    )
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.output.startswith(
        "flows/load.yaml:1:11: invalid YAML: while parsing a flow sequence did not find "
        "expected ',' or ']'; a ${...} reference inside [ ] or { } must be quoted: "
        "'${var.NAME}'\n"
    ), result.output
    (repo / "flows" / "load.yaml").write_text("owners: [alice\ntasks: [{name: a, command: x}]\n")
    assert "must be quoted" not in run_cli("validate").output  # no ${ on the line: no hint


def test_a_value_that_breaks_the_workflow_is_found_after_substitution(repo: Path) -> None:
    text = FLOW.replace('"0 30 2 * * ? *"', '"${var.CRON}"')
    (repo / "flows" / "load.yaml").write_text(text)
    config = (repo / "gitsync.yaml").read_text().replace("OWNER: alice", "OWNER: alice\n  CRON: x")
    (repo / "gitsync.yaml").write_text(config)
    result = run_cli("validate", "--target", "dev")
    assert result.exit_code == 1
    assert "flows/load.yaml:9:9: schedule.cron" in result.output


def test_variables_in_gitsync_yaml_are_checked_without_echoing_values(repo: Path) -> None:
    config = (repo / "gitsync.yaml").read_text()
    (repo / "gitsync.yaml").write_text(config.replace("OWNER: alice", "OWNER: [hunter2-x]"))
    result = run_cli("validate")
    assert result.exit_code == 1
    assert "gitsync.yaml:3:10: vars.OWNER: must be a string or a number" in result.output
    assert "hunter2" not in result.output
