"""The history-keeping writes, interrupted: an apply that renames, replaces a referenced
workflow (import, retire, rename, re-point), retires a pruned one and deletes a retired copy
past its retention is killed (kill -9) after each of its writes, or sent through a proxy that
fails requests; the next apply converges, the plan after it is empty, and no flow and no run
is lost."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitsync import plan as planner
from gitsync import remote
from gitsync.client import Client
from gitsync.codec import edit_view, marker
from gitsync.config_file import read as read_config
from gitsync.engine.faults import Faults, RunningProxy
from gitsync.engine.server import EngineOptions, RunningEngine, User
from gitsync.errors import GitsyncError
from gitsync.validate import validate_paths
from tests.conftest import SPEC_ORG, SPEC_USER, Api, run_cli

UP = "tasks:\n  - {name: t, command: 'echo up-1', allow_reference: true}\n"
DOWN = "tasks:\n  - {name: d, command: 'echo d', depends_on: [{flow: up, task: t}]}\n"


def _config(repo: Path, proxy_url: str, engine_url: str) -> None:
    lines = ["flows: flows", "targets:"]
    for name, url in (("proxied", proxy_url), ("direct", engine_url)):
        lines += [
            f"  {name}:",
            f"    url: {url}",
            f"    org_id: {SPEC_ORG}",
            f"    user_id: {SPEC_USER}",
            "    root: gitsync",
            "    retention: {versions: 1, days: 1}",
            "    concurrency: 1",  # one write at a time: the k-th request is always the same
        ]
    (repo / "gitsync.yaml").write_text("\n".join(lines) + "\n")


def _write(repo: Path, name: str, text: str) -> None:
    (repo / "flows" / "team" / f"{name}.yaml").write_text(text)


def _apply_ok(*args: str) -> None:
    result = run_cli("apply", "--auto-approve", "--prune", *args)
    assert result.exit_code == 0, result.output


def _flows(api: Api) -> dict[str, int]:
    found: Any = api.data("POST", "flows", "search", {})
    return {f["flowName"]: int(f["flowId"]) for f in found}


def _run(name: str) -> str:
    result = run_cli("run", f"flows/team/{name}.yaml")
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[-1].split("(")[1].rstrip(")")


def _backdate_oldest_etl_copy(api: Api) -> None:
    """The older retired copy of etl, as if retired ten days ago: past the retention."""
    oldest = min(i for n, i in _flows(api).items() if n.startswith("etl__retired_"))
    detail: Any = api.data("GET", "flows", "loadForEdit", flowId=oldest)
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    desc = marker.retired_description("", when.replace(microsecond=0), "etl")
    api.data("POST", "flows", "save", edit_view.retire_body(detail, detail["flowName"], desc))


def _setup(repo: Path, api: Api) -> dict[str, str]:
    """Before the apply that is interrupted: etl replaced twice (two retired copies, the older
    one past a retention of one version and one day), up referenced by down, old and gone;
    one run each of up and old. Then the edits: up's command (a replace and a re-point), old
    renamed to new, gone removed (a retire with --prune)."""
    (repo / "flows" / "team").mkdir(parents=True)
    for version in (1, 2, 3):
        _write(repo, "etl", f"tasks:\n  - {{name: a, command: 'echo etl-{version}'}}\n")
        _write(repo, "up", UP)
        _write(repo, "down", DOWN)
        _write(repo, "old", "tasks:\n  - {name: o, command: 'echo old'}\n")
        _write(repo, "gone", "tasks:\n  - {name: g, command: 'echo gone'}\n")
        _apply_ok()
    _backdate_oldest_etl_copy(api)
    runs = {"up": _run("up"), "new": _run("old")}
    _write(repo, "up", UP.replace("up-1", "up-2"))
    (repo / "flows/team/old.yaml").rename(repo / "flows/team/new.yaml")
    (repo / "flows/team/gone.yaml").unlink()
    return runs


def _check(api: Api, before: dict[str, int], runs: dict[str, str]) -> None:
    plan = run_cli("plan", "--prune", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    now = _flows(api)
    expired = min(i for n, i in before.items() if n.startswith("etl__retired_"))
    lost = set(before.values()) - set(now.values()) - {expired}
    assert not lost, (before, now)
    assert not [n for n in now if n.endswith(planner.REPLACE_SUFFIX)]
    assert now["new"] == before["old"]
    for name, instance in runs.items():
        listed = run_cli("instances", name)
        assert instance in listed.output, listed.output
        assert run_cli("logs", instance).exit_code == 0


@pytest.fixture
def engine_and_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningEngine, Path]]:
    options = EngineOptions(tmp_path / "engine", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with RunningEngine(options) as engine:
        repo = tmp_path / "repo"
        repo.mkdir()
        monkeypatch.chdir(repo)
        monkeypatch.setenv("GITSYNC_TARGET", "direct")
        yield engine, repo


# The interrupted apply's writes, one at a time: 1 take the lock, 2 rename old (Save),
# 3 import up's copy, 4 retire the old up (Save), 5 rename the copy (Save), 6 re-point down
# (Save), 7 retire gone (Save), 8 delete the retired etl copy past its retention, 9 release
# the lock. Killed right after each of them (reads in between are not counted):
WRITES = range(2, 10)
_WRITE_ACTIONS = ("import", "save", "delete", "enable", "disable", "cancel")


@pytest.mark.parametrize("k", WRITES)
def test_killed_after_any_history_write_the_next_apply_converges(
    engine_and_repo: tuple[RunningEngine, Path], k: int
) -> None:
    engine, repo = engine_and_repo
    victim: dict[str, subprocess.Popen[str]] = {}
    seen: list[str] = []

    def kill_at_k(n: int, request: Any) -> None:
        action = str(request.query_params.get("action"))
        if action in _WRITE_ACTIONS:
            seen.append(action)
        if len(seen) == k and action in _WRITE_ACTIONS and "proc" in victim:
            victim["proc"].send_signal(signal.SIGKILL)

    with RunningProxy(engine.url, Faults(on_request=kill_at_k)) as proxy:
        _config(repo, proxy.url, engine.url)
        api = Api(engine.url)
        runs = _setup(repo, api)
        before = _flows(api)
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitsync", "apply", "--auto-approve", "--prune"],
            cwd=repo,
            env={**os.environ, "GITSYNC_TARGET": "proxied"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        victim["proc"] = proc
        proc.communicate(timeout=120)
        rerun = run_cli("apply", "--auto-approve", "--prune")
        if rerun.exit_code != 0:
            assert "another apply holds the lock of this target" in rerun.output
            rerun = run_cli("apply", "--auto-approve", "--prune", "--force-unlock")
        assert rerun.exit_code == 0, rerun.output
        _check(api, before, runs)
        api.http.close()
    assert len(seen) == k, seen  # killed right after the k-th write, and nothing after it


def test_history_writes_converge_under_faults(
    engine_and_repo: tuple[RunningEngine, Path],
) -> None:
    engine, repo = engine_and_repo
    faults = Faults(error_rate=0.15, lose_rate=0.1, seed=11)
    with RunningProxy(engine.url, faults) as proxy:
        _config(repo, proxy.url, engine.url)
        api = Api(engine.url)
        runs = _setup(repo, api)
        before = _flows(api)
        target = read_config(repo / "gitsync.yaml").targets["proxied"]
        tree = validate_paths([repo / "flows"], base=repo / "flows").tree()
        retention = planner.Retention(*target.retention)
        with Client(proxy.url, SPEC_ORG, SPEC_USER, timeout=2, retries=4, backoff=0.01) as client:
            for _ in range(10):
                try:
                    state = remote.read_state(client, ("gitsync",))
                    plan = planner.compute(tree, state, True, False, retention, _now())
                    if not plan.has_changes:
                        break
                    remote.apply(client, plan, state)
                except GitsyncError:
                    continue
            else:
                raise AssertionError("no convergence after 10 applies")
        assert faults.counts.get("error", 0) and faults.counts.get("lost", 0)
        _check(api, before, runs)
        api.http.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
