"""One tree, two targets in one organization (issue 15 point 2), over the real engine."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from gitsync import config, remote
from gitsync.client import Client
from gitsync.engine.server import RunningEngine
from gitsync.naming import Naming
from tests.conftest import EXAMPLES, SPEC_ORG, SPEC_USER, run_cli

REPORT = """\
tasks:
  - name: build
    command: echo report
    depends_on:
      - flow: sales_etl
      - flow: load
        task: extract
"""
LOAD = """\
tasks:
  - name: extract
    command: echo extract
    allow_reference: true
"""


def _two_targets(repo: Path, url: str, dev_root: str, prod_root: str) -> None:
    ids = f"    url: {url}\n    org_id: {SPEC_ORG}\n    user_id: {SPEC_USER}\n"
    (repo / "gitsync.yaml").write_text(
        "flows: flows\ntargets:\n"
        f"  dev:\n{ids}    root: {dev_root}\n    name_prefix: dev_\n"
        f"  prod:\n{ids}    root: {prod_root}\n"
    )


@pytest.fixture(params=["same root", "different roots"])
def repo(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    engine: RunningEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The examples, and targets dev (prefix dev_) and prod on one engine, one organization."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    (repo / "flows/sales/report.yaml").write_text(REPORT)
    (repo / "flows/sales/load.yaml").write_text(LOAD)
    (repo / ".git").mkdir()
    same = request.param == "same root"
    _two_targets(repo, engine.url, "gitsync" if same else "gitsync/dev", "gitsync")
    monkeypatch.chdir(repo)
    monkeypatch.delenv("GITSYNC_TARGET", raising=False)
    return repo


def _apply_both() -> None:
    for target in ("dev", "prod"):
        result = run_cli("apply", "--target", target, "--auto-approve", "-q")
        assert result.exit_code == 0, result.output


def _no_changes(*extra: str) -> None:
    for target in ("dev", "prod"):
        result = run_cli("plan", "--target", target, "--detailed-exitcode", "-q", *extra)
        assert result.exit_code == 0, result.output


def _remote_names(engine: RunningEngine) -> dict[str, set[str]]:
    """Workflow name -> the workflows it references, as the service holds them."""
    with Client(engine.url, SPEC_ORG, SPEC_USER) as client:
        state = remote.read_state(client, ("gitsync",))
    return {
        f.workflow.name: {d.flow for t in f.workflow.tasks for d in t.depends_on if d.flow}
        for f in state.flows
    }


def test_dev_and_prod_apply_side_by_side_and_then_match(repo: Path, engine: RunningEngine) -> None:
    _apply_both()
    _no_changes()
    _no_changes("--prune")  # neither would retire the other's flows
    names = _remote_names(engine)
    plain = {n for n in names if not n.startswith("dev_")}
    assert plain and {f"dev_{n}" for n in plain} <= set(names)
    referencing = {n: ups for n, ups in names.items() if ups}
    assert referencing  # the examples reference each other: dev's point at dev's
    for name, ups in referencing.items():
        dev = name.startswith("dev_")
        assert all(up.startswith("dev_") == dev for up in ups), (name, ups)


def test_pruning_one_target_never_touches_the_other(repo: Path, engine: RunningEngine) -> None:
    _apply_both()
    before = _remote_names(engine)
    for target in ("prod", "dev"):
        result = run_cli("apply", "--target", target, "--prune", "--auto-approve", "-q")
        assert result.exit_code == 0 and "Applied" not in result.output, result.output
    assert _remote_names(engine) == before


def test_pull_of_dev_writes_the_files_without_the_prefix(repo: Path) -> None:
    _apply_both()
    pulled = {}
    for target in ("prod", "dev"):
        shutil.rmtree(repo / "flows")
        result = run_cli("pull", "--target", target, "-q")
        assert result.exit_code == 0, result.output
        pulled[target] = {
            p.relative_to(repo / "flows"): p.read_text() for p in (repo / "flows").rglob("*.yaml")
        }
    assert pulled["dev"] == pulled["prod"]
    assert len(pulled["dev"]) == len(list(EXAMPLES.rglob("*.yaml"))) + 2
    assert "dev_" not in "".join(pulled["dev"].values())
    assert "$schema=../../" in next(iter(pulled["dev"].values()))  # the local copy, as init
    _no_changes()  # the pulled files are the tree


def test_a_lock_held_on_dev_does_not_block_prod(repo: Path, engine: RunningEngine) -> None:
    root = config.load().target("dev").root
    with Client(engine.url, SPEC_ORG, SPEC_USER) as client:
        lock = remote.acquire_lock(client, root, "someone", dt.datetime.now(dt.UTC), "dev")
        try:
            prod = run_cli("apply", "--target", "prod", "--auto-approve", "-q")
            dev = run_cli("apply", "--target", "dev", "--auto-approve", "-q")
        finally:
            remote.release_lock(client, lock)
    assert prod.exit_code == 0, prod.output
    assert dev.exit_code == 1 and "someone" in dev.output


def test_plan_from_a_subfolder_is_the_plan_from_the_root(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = run_cli("apply", "--target", "prod", "--auto-approve", "-q")
    assert applied.exit_code == 0, applied.output
    from_root = run_cli("plan", "--target", "dev", "--prune")
    monkeypatch.chdir(repo / "flows" / "sales")
    from_sub = run_cli("plan", "--target", "dev", "--prune")
    assert from_sub.exit_code == from_root.exit_code == 0
    assert from_sub.output == from_root.output and "dev_" in from_root.output
    assert not (repo / "flows/sales/.gitsync").exists()


def test_a_name_the_prefix_makes_too_long_is_a_problem_for_that_target_only(
    repo: Path,
) -> None:
    name = "x" * 126  # 128 with nothing added; 'dev_' makes it 130
    (repo / "flows" / f"{name}.yaml").write_text("tasks:\n  - name: a\n    command: echo\n")
    dev = run_cli("validate", "--target", "dev")
    assert dev.exit_code == 1 and f"flows/{name}.yaml:1:1: on target 'dev'" in dev.output
    assert run_cli("validate", "--target", "prod").exit_code == 0
    plan = run_cli("plan", "--target", "dev")
    assert plan.exit_code == 1 and "on target 'dev'" in plan.output


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("dev_load", "load"),
        ("dev_", None),
        ("load", None),
        ("dev_load_x", "load_x"),
    ],
)
def test_a_service_name_maps_back_only_when_it_carries_the_prefix(
    name: str, file: str | None
) -> None:
    assert Naming("dev_", "", "dev").file(name) == file


@pytest.mark.parametrize(
    ("name", "file"),
    [("a_dev", "a"), ("_dev", None), ("pre_a_dev", "a"), ("pre_a", None), ("a_devx", None)],
)
def test_prefix_and_suffix_both_must_be_there(name: str, file: str | None) -> None:
    naming = Naming("pre_", "_dev", "dev") if name.startswith("pre_") else Naming("", "_dev", "d")
    assert naming.file(name) == file
    if file is not None:
        assert naming.remote(file) == name


def test_a_file_named_like_dev_s_flow_is_a_conflict_for_prod(repo: Path) -> None:
    """dev owns dev_load; a file dev_load.yaml would make prod create a flow of that name,
    which the organization already has: a conflict in the plan, not a create that fails."""
    _apply_both()
    (repo / "flows/sales/dev_load.yaml").write_text(LOAD)
    result = run_cli("plan", "--target", "prod")
    assert result.exit_code == 0, result.output
    assert "! conflict" in result.output and "dev_load" in result.output, result.output
    assert "+ create  sales/dev_load" not in result.output
