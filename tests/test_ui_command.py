"""`gitsync ui`: finds the target's or the local engine's dashboard, or starts an engine."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gitsync.engine.address import ADDRESS_FILE
from gitsync.engine.server import EngineOptions, RunningEngine
from tests.conftest import refusing_port, run_cli, write_target


def test_a_served_target_prints_its_dashboard(in_tmp: Path, engine: RunningEngine) -> None:
    write_target(in_tmp, engine.url, "gitsync")
    result = run_cli("ui", "--target", "test", "--no-open")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == engine.url + "/"


def test_a_target_without_a_dashboard_is_an_error(in_tmp: Path) -> None:
    with refusing_port() as port:
        write_target(in_tmp, f"http://127.0.0.1:{port}", "gitsync")
        result = run_cli("ui", "--target", "test", "--no-open")
    assert result.exit_code == 1
    assert "serves no gitsync dashboard" in result.output


def test_the_engine_running_on_the_repository_is_found(in_tmp: Path) -> None:
    data = in_tmp / ".gitsync" / "engine"
    with RunningEngine(EngineOptions(data)) as engine:
        with refusing_port() as port:  # found by its data folder's address file, not the port
            found = run_cli("ui", "--no-open", "--port", str(port))
            assert found.exit_code == 0, found.output
            assert found.stdout.strip() == engine.url + "/"
            # an embedded engine (RunningEngine's kind): it goes when its command ends
            assert f"another gitsync command (pid {os.getpid()})" in found.stderr
            assert "stops answering when that command ends" in found.stderr
            written = json.loads((data / ADDRESS_FILE).read_text())
            (data / ADDRESS_FILE).write_text(
                json.dumps({**written, "url": f"http://127.0.0.1:{port}"})
            )
            lost = run_cli("ui", "--no-open")
        assert lost.exit_code == 1 and "but its dashboard does not answer" in lost.output


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_without_an_engine_ui_serves_one_until_stopped(tmp_path: Path, stop: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "ui", "--no-open", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "<h1>Workflows</h1>" in page.text
        proc.send_signal(stop)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, err = proc.communicate()
    assert "Traceback" not in err
    assert (tmp_path / ".gitsync" / "engine" / "engine.sqlite3").exists()


@pytest.mark.parametrize("command", ["serve", "ui"])
def test_a_port_in_use_is_one_clear_line(in_tmp: Path, command: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        args = ["--no-open"] if command == "ui" else ["--data-dir", str(in_tmp / "d")]
        result = run_cli(command, *args, "--port", str(port))
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "--port 0" in result.output and "bug" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
