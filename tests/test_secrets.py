"""Credentials never show: with a canary access key and secret set, no output of any command,
no --debug line, no error and no engine log contains either."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gitsync.engine.server import EngineOptions, RunningEngine, User
from tests.conftest import EXAMPLES, SPEC_ORG, SPEC_USER, run_cli, write_target

KEY = "AKCANARY-0c9e1d2f-key"
SECRET = "SKCANARY-7f3e9c11-secret"


def test_no_output_and_no_engine_log_holds_the_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    requests = tmp_path / "requests.jsonl"
    options = EngineOptions(
        tmp_path / "engine",
        app_key=KEY,
        app_secret=SECRET,
        request_log=requests,
        users=[User(SPEC_USER, SPEC_ORG, "alice")],
    )
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    outputs = []
    with RunningEngine(options) as engine:
        write_target(repo, engine.url, "gitsync", name="prod")
        monkeypatch.chdir(repo)
        monkeypatch.setenv("GITSYNC_TARGET", "prod")
        monkeypatch.setenv("ENOS_ACCESS_KEY", KEY)
        monkeypatch.setenv("ENOS_SECRET_KEY", SECRET)
        for args in (
            ["validate"],
            ["plan"],
            ["plan", "-o", "json"],
            ["plan", "-o", "markdown"],
            ["--debug", "plan", "--detailed-exitcode"],
            ["--debug", "apply", "--auto-approve"],
            ["--debug", "plan"],
            ["--debug", "pull", "--force"],
            ["--debug", "run", "flows/finance/adhoc/backfill.yaml"],
            ["instances", "backfill"],
        ):
            result = run_cli(*args)
            assert result.exit_code in (0, 2), (args, result.output)
            outputs.append(result.output)
        assert any(line.startswith("debug: ") for line in outputs[4].splitlines())
        instance = outputs[-1].splitlines()[1].split()[0]
        outputs.append(run_cli("--debug", "logs", instance).output)
        monkeypatch.setenv("ENOS_SECRET_KEY", "wrong-" + SECRET)
        wrong = run_cli("--debug", "plan")
        assert wrong.exit_code == 1 and "refused the access key" in wrong.output
        outputs.append(wrong.output)
        monkeypatch.setenv("ENOS_SECRET_KEY", SECRET)
        (repo / "flows" / "bad.yaml").write_text("tasks: 1\n")
        outputs.append(run_cli("--debug", "apply", "--auto-approve").output)
    for text in [*outputs, requests.read_text(), caplog.text]:
        assert KEY not in text and SECRET not in text


def test_serve_never_prints_its_secret(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitsync",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--app-key",
            KEY,
            "--app-secret",
            SECRET,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert url.startswith("http://127.0.0.1:") and "gateway authentication on" in err
    assert SECRET not in url + out + err
