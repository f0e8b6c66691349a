"""The engine is strict by default: it answers what SPEC documents and no more, as EnOS
does, so gitsync's tests take the path real EnOS needs. Its extensions (Export's scheduling
state and rights) come on with `gitsync serve --extensions`, ``EngineOptions.extensions`` and,
for the embedded engine, GITSYNC_ENGINE_EXTENSIONS (docs/engine.md, Extensions)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SPEC_ORG, SPEC_USER, Api, simple_flow
from tests.test_engine_fidelity import EXTENSIONS, export


def test_the_default_engine_is_strict(api: Api) -> None:
    flow = api.import_flow("f", simple_flow("a"))
    assert not EXTENSIONS & set(export(api, flow))


def test_export_states_scheduling_and_rights_with_the_extensions_on(tmp_path: Path) -> None:
    from gitsync.engine.server import EngineOptions, RunningEngine, User

    options = EngineOptions(
        tmp_path / "engine", users=[User(SPEC_USER, SPEC_ORG, "alice")], extensions=True
    )
    with RunningEngine(options) as engine:
        api = Api(engine.url)
        flow = api.import_flow("f", simple_flow("a"))
        api.data("POST", "flows", "enable", {"flowId": flow})
        exported = export(api, flow)
        assert {k: exported[k] for k in EXTENSIONS} == {
            "active": 1,
            "hasEditPri": True,
            "locked": False,
            "isUserLocked": False,
        }
        api.http.close()


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"GITSYNC_ENGINE_EXTENSIONS": "1"}, True),
        ({"GITSYNC_ENGINE_EXTENSIONS": "no"}, False),
    ],
)
def test_the_embedded_engine_is_strict_unless_the_setting_says(
    tmp_path: Path, env: dict[str, str], on: bool
) -> None:
    from gitsync import config, sync

    settings = config.load(tmp_path, env=env)
    with sync.connect(settings, settings.target()) as client:
        root = client.list_workflow_directories()[0]["key"]
        flow = client.import_flow("f", root, simple_flow("a", owners="local"))
        assert (set(client.export_flow(flow)) >= EXTENSIONS) is on


@pytest.mark.parametrize("flag", [[], ["--extensions"]], ids=["strict", "extensions"])
def test_serve_is_strict_unless_started_with_extensions(tmp_path: Path, flag: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GITSYNC_ENGINE_EXTENSIONS"}
    command = [sys.executable, "-m", "gitsync", "serve", "--port", "0", "--data-dir", "d"]
    proc = subprocess.Popen(
        [*command, *flag],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        api = Api(proc.stdout.readline().strip(), user="u_local", org="o_local")
        flow = api.import_flow("f", simple_flow("a", owners="local"))
        assert (set(export(api, flow)) >= EXTENSIONS) is bool(flag)
        api.http.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.communicate()
