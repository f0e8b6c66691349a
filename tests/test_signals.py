"""Stop signals: SIGTERM (a CI runner's stop), SIGHUP (a closed terminal) and SIGINT (Ctrl-C)
end any command without a traceback, with 128 + the signal's number, and an apply stopped
part-way releases its lock and says what it did."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gitsync.engine.faults import Faults, RunningProxy
from gitsync.engine.server import EngineOptions, RunningEngine, User
from tests.conftest import EXAMPLES, SPEC_ORG, SPEC_USER, run_cli


def _gitsync(repo: Path, *args: str, target: str = "proxied") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gitsync", *args],
        cwd=repo,
        env={**os.environ, "GITSYNC_TARGET": target},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _config(repo: Path, proxy_url: str, engine_url: str) -> None:
    lines = ["flows: flows", "targets:"]
    for name, url in (("proxied", proxy_url), ("direct", engine_url)):
        lines += [f"  {name}:", f"    url: {url}", f"    org_id: {SPEC_ORG}"]
        lines += [f"    user_id: {SPEC_USER}", "    root: gitsync"]
    (repo / "gitsync.yaml").write_text("\n".join(lines) + "\n")


STOPS = [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]


@pytest.mark.parametrize("k", [6, 11])
@pytest.mark.parametrize(("sig", "code"), STOPS, ids=[s.name for s, _ in STOPS])
def test_a_stopped_apply_releases_its_lock_and_says_what_it_did(
    sig: signal.Signals, code: int, k: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    victim: dict[str, subprocess.Popen[str]] = {}

    def stop_at_k(n: int, request: Any) -> None:
        if n == k:
            victim["proc"].send_signal(sig)

    options = EngineOptions(tmp_path / "engine", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with (
        RunningEngine(options) as engine,
        RunningProxy(engine.url, Faults(on_request=stop_at_k)) as proxy,
    ):
        _config(repo, proxy.url, engine.url)
        victim["proc"] = proc = _gitsync(repo, "apply", "--auto-approve", "-q")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == code, (out, err)
        assert "Traceback" not in out + err
        assert f"Interrupted ({sig.name})." in err
        assert "Stopped before" in err and "the lock was released" in err
        assert "Applied " in out
        monkeypatch.chdir(repo)
        monkeypatch.setenv("GITSYNC_TARGET", "direct")
        again = run_cli("apply", "--auto-approve", "-q")  # no --force-unlock needed
        assert again.exit_code == 0, again.output
        assert run_cli("plan", "--detailed-exitcode").exit_code == 0


def _handles_sigterm(pid: int) -> bool:
    """Whether gitsync's own handlers are in place (Python's own leave SIGTERM alone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # it has ended already
    caught = int(next(li for li in status.splitlines() if li.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.25, 0.4, 0.7])
@pytest.mark.parametrize("command", ["plan", "validate"])
def test_ctrl_c_at_any_moment_gives_no_traceback(
    command: str, delay: float, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    proc = _gitsync(repo, command, target="local")
    deadline = time.monotonic() + 30
    while not _handles_sigterm(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)  # a moment to stop it at, not a wait for anything
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in out + err, err
    # -2: the signal came while the interpreter was shutting down, after gitsync's last
    # line, when Python has given SIGINT back to the system (a shell shows it as 130 too)
    assert proc.returncode in (0, 130, -signal.SIGINT), (proc.returncode, err)
    if proc.returncode == 130:
        assert err.rstrip().endswith("Interrupted (SIGINT).") or err.rstrip() == "Interrupted.", err


_ENDS_WITH_A_THREAD = """
import sys, threading, time
import gitsync.cli
from gitsync import entry

def command():
    stop = threading.Event()
    threading.Thread(target=stop.wait, args=(20,)).start()  # still running at exit
    print("ended", flush=True)
    sys.exit(0)

gitsync.cli.main = command
entry.main()
"""


def test_a_signal_while_the_interpreter_shuts_down_gives_no_traceback() -> None:
    """After the command's last line Python joins its threads; a Ctrl-C then must end the
    process quietly (it printed "Exception ignored ... Traceback" from threading)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _ENDS_WITH_A_THREAD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ended\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.strip() == "Interrupted.", err
