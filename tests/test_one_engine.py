"""One engine per data folder (issue 17): an engine holds its folder alone and says where it
answers; other commands on the folder use it; the engine a command started waits for them;
a killed engine's address file is recognised as stale."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gitsync.client import Client
from gitsync.embedded import local_engine
from gitsync.engine import address
from gitsync.engine.server import EngineOptions, RunningEngine
from gitsync.errors import ConfigError, TransportError
from tests.conftest import Api, eventually, run_cli
from tests.test_guards import held_until


class _Clock:
    """A clock that moves only when slept on: deadlines without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


# -- the lock and the address file ----------------------------------------------------------


def test_a_second_claim_is_refused_and_told_where_the_engine_answers(tmp_path: Path) -> None:
    data = tmp_path / "d"
    first = address.claim(data)
    with pytest.raises(address.EngineBusy, match="has not said where yet"):
        address.claim(data)
    published = first.publish("http://127.0.0.1:1", "serve")
    assert address.read(data) == published and published.pid == os.getpid()
    with pytest.raises(address.EngineBusy) as busy:
        address.claim(data)
    assert busy.value.address == published
    assert "already served: http://127.0.0.1:1 (gitsync serve, pid" in str(busy.value)
    first.release()
    assert not (data / address.ADDRESS_FILE).exists()  # a clean stop removes it
    address.claim(data).release()


def test_a_stale_address_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    stale = {"url": "http://127.0.0.1:1", "pid": 1, "token": "old", "kind": "serve"}
    (data / address.ADDRESS_FILE).write_text(json.dumps(stale))
    found = address.claim_or_use(data)
    assert isinstance(found, address.Claim)  # the lock was free: no engine is live
    assert address.read(data) is None
    found.release()


@pytest.mark.parametrize("text", ["", "{", "[]", '{"url": 1}', '{"url": "u", "pid": "x"}'])
def test_an_unreadable_address_file_reads_as_none(tmp_path: Path, text: str) -> None:
    (tmp_path / address.ADDRESS_FILE).write_text(text)
    assert address.read(tmp_path) is None


def test_waiting_for_an_address_has_a_deadline(tmp_path: Path) -> None:
    data = tmp_path / "d"
    starting = address.claim(data)  # holds the folder, says nothing (yet)
    clock = _Clock()
    with pytest.raises(address.EngineBusy, match="has not said where yet"):
        address.claim_or_use(data, limit=1.0, clock=clock, sleep=clock.sleep)
    assert 1.0 < clock.now < 1.1
    starting.release()


def test_the_engine_a_command_started_waits_for_its_users(tmp_path: Path) -> None:
    data = tmp_path / "d"
    owner = address.claim(data)
    owner.publish("http://127.0.0.1:1", "embedded")
    user = address.claim_or_use(data)
    assert isinstance(user, address.Use) and user.address == owner.address
    told = threading.Event()
    stopping = threading.Thread(target=owner.wait_for_users, args=(told.set,))
    stopping.start()
    assert told.wait(15), "the owner said it waits"
    assert stopping.is_alive() and address.read(data) == user.address  # still served
    user.release()
    stopping.join(15)
    assert not stopping.is_alive()
    assert address.read(data) is None  # withdrawn once the users are gone
    clock = _Clock()  # a command arriving now waits for it to stop, then starts its own
    with pytest.raises(address.EngineBusy):
        address.claim_or_use(data, limit=0.1, clock=clock, sleep=clock.sleep)
    owner.release()
    address.claim(data).release()


def test_one_interrupt_while_waiting_for_users_does_not_stop_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that started the engine and is stopped while another command's run uses it
    waits for that command before it stops the engine (it would fail the run), and then says
    it was interrupted. The interrupt comes as the blocking lock call's KeyboardInterrupt."""
    data = tmp_path / "d"
    owner = address.claim(data)
    owner.publish("http://127.0.0.1:1", "embedded")
    user = address.claim_or_use(data)
    assert isinstance(user, address.Use)
    real, calls, said = fcntl.flock, [], []

    def flock(fd: int, how: int) -> None:
        if how == fcntl.LOCK_EX:  # the owner's blocking wait for its users
            calls.append(how)
            if len(calls) == 1:
                raise KeyboardInterrupt  # Ctrl-C while it waits
            said.append("released")
            user.release()  # the other command ends
        real(fd, how)

    monkeypatch.setattr(address.fcntl, "flock", flock)
    with pytest.raises(KeyboardInterrupt):
        owner.wait_for_users(lambda: said.append("waiting"), lambda: said.append("going on"))
    assert said == ["waiting", "going on", "released"]  # raised only once the other was done
    assert address.read(data) is None
    monkeypatch.undo()
    with pytest.raises(KeyboardInterrupt):  # without ``interrupted`` the interrupt stops it
        other = address.claim_or_use(tmp_path / "e")
        assert isinstance(other, address.Claim)
        other.publish("http://127.0.0.1:1", "embedded")
        used = address.claim_or_use(tmp_path / "e")
        monkeypatch.setattr(
            address.fcntl,
            "flock",
            lambda fd, how: _raise() if how == fcntl.LOCK_EX else real(fd, how),
        )
        try:
            other.wait_for_users(lambda: None)
        finally:
            monkeypatch.undo()
            assert isinstance(used, address.Use)
            used.release()
            other.release()
    owner.release()


def _raise() -> None:
    raise KeyboardInterrupt


def test_a_used_engine_that_stops_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "d"
    engine = RunningEngine(EngineOptions(data)).start()
    with (
        pytest.raises(TransportError, match="stopped while this command used it"),
        local_engine(data) as found,
        Client(found.url, "o_local", "u_local") as client,
    ):
        assert not found.owned and found.url == engine.url
        engine.stop()  # as `gitsync serve` stopped with Ctrl-C
        client.get_current_time()


# -- commands ------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository on the embedded target, its engine data in .gitsync/engine."""
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    (repo / "gitsync.yaml").write_text("flows: flows\n")
    (repo / "flows" / "hello.yaml").write_text("tasks:\n  - {name: a, command: echo hi}\n")
    monkeypatch.chdir(repo)
    monkeypatch.delenv("GITSYNC_TARGET", raising=False)
    return repo


def test_commands_use_the_engine_that_serves_the_folder(repo: Path, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    options = EngineOptions(repo / ".gitsync" / "engine", request_log=requests)
    with RunningEngine(options) as engine:
        result = run_cli("run", "hello")
        assert result.exit_code == 0, result.output
        assert "hello: instance 1001-" in result.output and engine.url in result.output
        assert result.output.splitlines()[-1].startswith("hello: SUCCESS (")
        actions = [json.loads(line)["action"] for line in requests.read_text().splitlines()]
        assert "import" in actions and "trigger" in actions  # all through the served engine
        assert run_cli("instances", "hello").exit_code == 0
        served = run_cli("serve", "--port", "0", "--data-dir", str(options.data_dir))
        assert served.exit_code == 1
        assert f"is already served: {engine.url} (" in served.output
        api = Api(engine.url, user="u_local", org="o_local")
        assert [f["flowName"] for f in api.data("GET", "flows", "getMyFlow")] == ["hello"]
        api.http.close()
    assert not (options.data_dir / address.ADDRESS_FILE).exists()


def _gitsync(repo: Path, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """A gitsync command in its own process; its stderr in ``log`` when given (read while
    it runs)."""
    with open(log or os.devnull, "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "gitsync", *args],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=err if log else subprocess.PIPE,
            text=True,
        )


def _held(repo: Path, name: str, tmp_path: Path) -> tuple[Path, Path]:
    """A workflow whose task says it started, then runs until the test releases it."""
    started, release = tmp_path / f"{name}.started", tmp_path / f"{name}.release"
    command = f"touch {started}; {held_until(release)}; echo done"
    (repo / "flows" / f"{name}.yaml").write_text(f"tasks:\n  - name: t\n    command: '{command}'\n")
    return started, release


def test_instances_and_logs_from_other_processes_while_a_run_goes_on(
    repo: Path, tmp_path: Path
) -> None:
    """Issue 17's first finding: `gitsync instances` beside a `gitsync run` failed the run."""
    started, release = _held(repo, "slow", tmp_path)
    running = _gitsync(repo, "run", "flows/slow.yaml")
    eventually(started.exists, "the run's task started", limit=60)
    listed = subprocess.run(
        [sys.executable, "-m", "gitsync", "instances", "slow"],
        cwd=repo, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    (row,) = [li for li in listed.stdout.splitlines() if " RUNNING " in li]
    instance = row.split()[0]
    logs = subprocess.run(
        [sys.executable, "-m", "gitsync", "logs", instance],
        cwd=repo, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert logs.returncode == 0, logs.stderr
    assert "---- t (RUNNING) ----" in logs.stdout
    release.touch()
    out, err = running.communicate(timeout=60)
    assert running.returncode == 0, (out, err)
    assert out.splitlines()[-1] == f"slow: SUCCESS ({instance})"
    assert "engine stopped" not in out + err


def test_two_commands_starting_at_once_share_one_engine(repo: Path, tmp_path: Path) -> None:
    """Both wait while the folder is held (the barrier), then race for it: one starts the
    engine, the other uses it; the first waits for the second before it stops. Two embedded
    targets (one data folder), so that the two applies do not meet at one apply lock."""
    (repo / "gitsync.yaml").write_text(
        "flows: flows\ntargets:\n  one: {url: embedded, root: one}\n"
        "  two: {url: embedded, root: two}\n"
    )
    data = repo / ".gitsync" / "engine"
    barrier = address.claim(data)
    runs = {}
    for name, target in (("a", "one"), ("b", "two")):
        started, release = _held(repo, name, tmp_path)
        log = tmp_path / f"{name}.err"
        command = _gitsync(repo, "--debug", "run", name, "--target", target, log=log)
        runs[name] = (command, started, release, log)
    try:
        _race(runs, data, barrier)
    finally:
        for proc, *_ in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _race(
    runs: dict[str, tuple[subprocess.Popen[str], Path, Path, Path]],
    data: Path,
    barrier: address.Claim,
) -> None:
    for _, _, _, log in runs.values():
        eventually(lambda log=log: "to say where it answers" in log.read_text(), "both wait")
    barrier.release()
    for _, started, _, log in runs.values():
        eventually(started.exists, f"both runs started; {log.read_text()[-2000:]}", limit=60)
    live = address.read(data)
    assert live is not None
    (owner,) = [n for n, r in runs.items() if r[0].pid == live.pid]
    (user,) = set(runs) - {owner}
    runs[owner][2].touch()  # the owner's run ends first: it must wait for the other
    eventually(lambda: "other gitsync commands are using" in runs[owner][3].read_text(), "waits")
    assert runs[owner][0].poll() is None and address.read(data) == live
    runs[user][2].touch()
    for name, (proc, _, _, log) in runs.items():
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, (out, log.read_text())
        assert out.splitlines()[-1].startswith(f"{name}: SUCCESS (")
    assert address.read(data) is None


def test_a_killed_serve_leaves_a_stale_address_and_the_next_engine_recovers(
    repo: Path, tmp_path: Path
) -> None:
    data = tmp_path / "served"
    serve = _gitsync(repo, "serve", "--port", "0", "--data-dir", str(data))
    assert serve.stdout is not None
    url = serve.stdout.readline().strip()
    assert address.read(data) is not None and address.read(data).url == url  # type: ignore[union-attr]
    busy = subprocess.run(
        [sys.executable, "-m", "gitsync", "serve", "--port", "0", "--data-dir", str(data)],
        cwd=repo, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert busy.returncode == 1 and f"already served: {url} (gitsync serve, pid" in busy.stderr
    serve.send_signal(signal.SIGKILL)
    serve.communicate(timeout=60)
    assert address.read(data) is not None  # stale: nobody removed it
    found = address.claim_or_use(data)
    assert isinstance(found, address.Claim) and address.read(data) is None
    found.release()
    again = _gitsync(repo, "serve", "--port", "0", "--data-dir", str(data))
    assert again.stdout is not None
    assert again.stdout.readline().startswith("http://127.0.0.1:")
    again.send_signal(signal.SIGTERM)
    again.communicate(timeout=60)
    assert again.returncode in (0, 143)  # 143: stopped before uvicorn took over SIGTERM
    assert address.read(data) is None


def test_an_engine_that_requires_gateway_authentication_is_not_used(repo: Path) -> None:
    options = EngineOptions(repo / ".gitsync" / "engine", app_key="K", app_secret="S")
    with RunningEngine(options) as engine:
        result = run_cli("instances", "hello")
        assert result.exit_code == 1
        assert f"at {engine.url} (" in result.output
        assert "requires gateway authentication; choose a target with its URL" in result.output


def test_an_address_file_naming_another_engine_is_a_clear_error(tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    with RunningEngine(EngineOptions(one)), RunningEngine(EngineOptions(other)) as impostor:
        with local_engine(one) as found:  # the right one answers with the file's token
            assert not found.owned
        written = json.loads((one / address.ADDRESS_FILE).read_text())
        (one / address.ADDRESS_FILE).write_text(json.dumps({**written, "url": impostor.url}))
        wrong = f"{one / address.ADDRESS_FILE} names {impostor.url}"
        with pytest.raises(ConfigError, match=wrong), local_engine(one):
            pass
