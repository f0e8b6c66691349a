"""A restarted engine kills what a killed engine's tasks left running, and nothing else.

Processes are real: a `gitsync serve` killed with SIGKILL, tasks that leave children, and
unrelated processes standing where a recorded pid points. Every process a test starts is
killed at its end, pass or fail (``_Reaper``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitsync.engine import leftovers
from gitsync.engine.server import STORE_FILE, EngineOptions, RunningEngine
from gitsync.engine.spawn import ENGINE_VARIABLE, TASK_VARIABLE
from tests.conftest import Api, simple_flow

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finding leftovers reads /proc"
)

# `gitsync serve` under a parent that reaps orphans, as an init does (this container's
# does not): a task leader that exits after the crash is then gone, not a zombie
SUBREAPER = """
import ctypes, os, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
engine = subprocess.Popen(sys.argv[1:])
print(engine.pid, flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[19])


def _live(pid: int, start: int) -> bool:
    """That very process (not a later one with its pid) is there and not a zombie."""
    now = _stat(pid)
    return now is not None and now[2] == start and now[0] not in "ZXx"


def _group(pgid: int) -> dict[int, int]:
    """The live members of a process group: pid -> start time."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (now := _stat(int(name))) and now[1] == pgid and now[0] not in "ZX":
            found[int(name)] = now[2]
    return found


def _poll(check: object, what: str, limit: float = 15) -> None:
    deadline = time.monotonic() + limit
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


class _Reaper:
    """Every process a test started, killed at the end if it is still that process; an
    engine first with SIGTERM, so that it kills its tasks, which the test may not know yet."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}  # pid -> start time
        self.engines: dict[int, int] = {}
        self.popens: list[subprocess.Popen[bytes]] = []

    def track(self, pids: dict[int, int]) -> dict[int, int]:
        self.seen.update(pids)
        return pids

    def start(self, argv: list[str], **options: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, start_new_session=True, **options)  # type: ignore[call-overload]
        self.popens.append(proc)
        stat = _stat(proc.pid)
        if stat is not None:
            self.seen[proc.pid] = stat[2]
        return proc  # type: ignore[no-any-return]

    def close(self) -> None:
        for pid, start in self.engines.items():
            if _live(pid, start):
                os.kill(pid, signal.SIGTERM)
                with contextlib.suppress(AssertionError):
                    _poll(lambda: not _live(pid, start), "the engine stops")  # noqa: B023
        for pid, start in {**self.seen, **self.engines}.items():
            if _live(pid, start):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self.popens:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def reaper() -> Iterator[_Reaper]:
    reaper = _Reaper()
    try:
        yield reaper
    finally:
        reaper.close()


@contextlib.contextmanager
def _api(url: str) -> Iterator[Api]:
    """A client of the engine's default user, closed however the test ends."""
    api = Api(url, user="u_local", org="o_local")
    with api.http:
        yield api


def _rows(data: Path) -> list[dict[str, object]]:
    db = sqlite3.connect(data / STORE_FILE)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM task_instances ORDER BY id")]
    finally:
        db.close()


def _log(api: Api, instance_id: str, task: str) -> str:
    inst = api.data("GET", "flowInstances", "get", flowInstId=instance_id)
    node = next(t for t in json.loads(inst["graph"])["tasks"] if t["taskName"] == task)  # type: ignore[index]
    return api.data("GET", "taskInstances", "getLog", taskInstId=node["taskInstId"])["log"]  # type: ignore[index, no-any-return]


def _trigger(api: Api, name: str, commands: dict[str, str], at_ms: int | None = None) -> str:
    body = simple_flow(*commands, owners="local")
    for task in body["tasks"]:
        task.update(cmd=commands[task["name"]], retryLimit=0, timeout=0)
    flow_id = api.import_flow(name, body)
    when = at_ms if at_ms is not None else int(time.time() * 1000)
    answer = api.data("POST", "flows", "trigger", {"flowId": flow_id, "triggerTime": when})
    return answer["flowInstanceId"]  # type: ignore[index, no-any-return]


# -- a real engine killed with SIGKILL ----------------------------------------------------------


def test_a_restart_kills_what_a_killed_engines_tasks_left(
    tmp_path: Path, reaper: _Reaper, caplog: pytest.LogCaptureFixture
) -> None:
    """Two tasks whose leader still runs (`sleep & sleep`), and two whose leader exits after
    the crash, leaving its child alone in the group (the group id then names no process)."""
    data, gate = tmp_path / "d", tmp_path / "gate"
    wrapper = reaper.start(
        [sys.executable, "-c", SUBREAPER, sys.executable, "-m", "gitsync", "serve", "--port",
         "0", "--data-dir", str(data), "--parallelism", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert wrapper.stdout is not None
    engine_pid = int(wrapper.stdout.readline())
    reaper.engines[engine_pid] = _stat(engine_pid)[2]  # type: ignore[index]
    with _api(wrapper.stdout.readline().decode().strip()) as api:
        stay = "sleep 300 & sleep 300 & wait"
        leave = f"sleep 300 & while [ ! -e {gate} ]; do sleep 0.02; done"
        ids = [
            _trigger(api, "stay", {"s1": stay, "s2": stay}),
            _trigger(api, "leave", {"l1": leave, "l2": leave}),
        ]

    def recorded() -> dict[str, dict[str, object]]:
        rows = {str(r["task_name"]): r for r in _rows(data) if r["status"] == 2 and r["born"]}
        return rows if len(rows) == 4 else {}

    _poll(recorded, "four tasks running, their pids recorded")
    groups = {name: int(row["pid"]) for name, row in recorded().items()}  # type: ignore[call-overload]

    def started() -> bool:  # sh and its two sleeps; sh, its `sleep 300` and maybe a short one
        members = {name: reaper.track(_group(pgid)) for name, pgid in groups.items()}
        return all(len(found) >= (3 if name[0] == "s" else 2) for name, found in members.items())

    _poll(started, "every task started its child")
    os.kill(engine_pid, signal.SIGKILL)
    gate.touch()
    _poll(
        lambda: all(_stat(groups[name]) is None for name in ("l1", "l2")),
        "the leaders that exit are gone, reaped",
    )
    left = {name: len(_group(pgid)) for name, pgid in groups.items()}
    assert left == {"s1": 3, "s2": 3, "l1": 1, "l2": 1}  # the leaders' children live on
    caplog.set_level(logging.WARNING, logger="gitsync.engine")
    with RunningEngine(EngineOptions(data)) as engine, _api(engine.url) as api:
        for instance_id in ids:
            inst = api.data("GET", "flowInstances", "get", flowInstId=instance_id)
            assert inst["statusDesc"] == "FAIL"  # type: ignore[index]
        logs = {name: _log(api, ids[0 if name[0] == "s" else 1], name) for name in groups}
    _poll(lambda: not any(_group(pgid) for pgid in groups.values()), "no task process is left")
    assert not any(_live(pid, start) for pid, start in reaper.seen.items() if pid != wrapper.pid)
    for name, log in logs.items():
        count = f"{left[name]} leftover process{'es' * (left[name] > 1)}"
        assert "the engine stopped while this task ran (crash or kill); marked failed" in log
        assert f"[gitsync] killed {count} of this task on restart" in log
    engine_log = [r.getMessage() for r in caplog.records if "leftover" in r.getMessage()]
    assert len(engine_log) == 4
    for row in _rows(data):
        assert any(f"of task {row['id']} on restart (process group {row['pid']}:" in line
                   for line in engine_log)  # fmt: skip


def test_an_engine_started_beside_a_running_one_is_refused_and_leaves_its_runs_alone(
    tmp_path: Path, reaper: _Reaper
) -> None:
    """A second engine on a data folder a live engine holds must not start (nor take the
    live engine's unfinished instances for a killed engine's): EngineBusy says where the
    live one answers."""
    from gitsync.engine.address import EngineBusy

    data = tmp_path / "d"
    with RunningEngine(EngineOptions(data)) as first, _api(first.url) as api:
        instance_id = _trigger(api, "busy", {"t": "sleep 300 & sleep 300 & wait"})
        _poll(lambda: _rows(data)[0]["born"], "the task runs, its pid recorded")
        pgid = int(_rows(data)[0]["pid"])  # type: ignore[call-overload]
        _poll(lambda: len(reaper.track(_group(pgid))) == 3, "sh and both its sleeps run")
        with pytest.raises(EngineBusy, match=f"already served: {first.url} "):
            RunningEngine(EngineOptions(data))
        inst = api.data("GET", "flowInstances", "get", flowInstId=instance_id)
        assert inst["statusDesc"] == "RUNNING"  # type: ignore[index]
        assert all(_live(pid, start) for pid, start in reaper.seen.items())
        assert "engine stopped" not in _log(api, instance_id, "t")


# -- a store row pointing at some other process ---------------------------------------------


def _a_stopped_engine_with_a_waiting_task(data: Path) -> tuple[str, str]:
    """A data dir whose store has an unfinished instance (WAIT, for a trigger an hour ahead):
    the rows tests then point at processes of their choosing. (instance id, task id)"""
    with RunningEngine(EngineOptions(data)) as engine, _api(engine.url) as api:
        instance_id = _trigger(api, "later", {"t": "true"}, int(time.time() * 1000) + 3_600_000)
    (row,) = _rows(data)
    return instance_id, str(row["id"])


def _point(data: Path, task_id: str, pid: int, born: str) -> None:
    db = sqlite3.connect(data / STORE_FILE)
    with db:
        db.execute(
            "UPDATE task_instances SET status=2, pid=?, born=? WHERE id=?", (pid, born, task_id)
        )
    db.close()


def _restart(data: Path, instance_id: str) -> str:
    """Start an engine on ``data``; the task's log once it has recovered."""
    with RunningEngine(EngineOptions(data)) as engine, _api(engine.url) as api:
        inst = api.data("GET", "flowInstances", "get", flowInstId=instance_id)
        assert inst["statusDesc"] == "FAIL"  # type: ignore[index]
        log = _log(api, instance_id, "t")
    return log


def _sleep(reaper: _Reaper, env: dict[str, str] | None = None) -> tuple[int, str]:
    """A `sleep` in a session of its own: its pid and its true birth record."""
    before = leftovers.clock()
    proc = reaper.start(["sleep", "300"], env=env)
    return proc.pid, leftovers.birth(before)


def _shifted(born: str, ticks: int) -> str:
    boot, low, high = born.split()
    return f"{boot} {int(low) + ticks} {int(high) + ticks}"


@pytest.mark.parametrize(
    "record",
    ["true birth", "born a second later", "born a second earlier", "another boot", "no birth"],
)
def test_a_recorded_pid_is_killed_only_if_its_birth_matches(
    tmp_path: Path, reaper: _Reaper, record: str
) -> None:
    """A recycled pid: the row points at a live process that is not the task's leader."""
    data = tmp_path / "d"
    instance_id, task_id = _a_stopped_engine_with_a_waiting_task(data)
    pid, born = _sleep(reaper)
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    second = 1_000_000_000 // tick
    born = {
        "true birth": born,
        "born a second later": _shifted(born, second),
        "born a second earlier": _shifted(born, -second),
        "another boot": "0" + born[1:] if born[0] != "0" else "1" + born[1:],
        "no birth": "",
    }[record]
    _point(data, task_id, pid, born)
    log = _restart(data, instance_id)
    start = reaper.seen[pid]
    if record == "true birth":  # the control: the same row with the right birth kills
        _poll(lambda: not _live(pid, start), "the leader is killed")
        assert "[gitsync] killed 1 leftover process of this task on restart" in log
    else:
        assert _live(pid, start)
        assert "leftover" not in log
    assert "the engine stopped while this task ran" in log


@pytest.mark.parametrize("marks", ["the task's marks", "none", "another task's", "another dir's"])
def test_a_group_whose_leader_is_gone_is_killed_only_if_a_member_carries_the_tasks_marks(
    tmp_path: Path, reaper: _Reaper, marks: str
) -> None:
    """The leader exited (and was reaped); its child lives on in its group and session. Such
    a group id names no process and may have been reused: its environment must prove it."""
    data = tmp_path / "d"
    instance_id, task_id = _a_stopped_engine_with_a_waiting_task(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITSYNC_")}
    engine_dir, task = str(data.resolve()), task_id
    if marks == "another task's":
        task = task_id + "0"
    elif marks == "another dir's":
        engine_dir += "0"
    if marks != "none":
        env |= {ENGINE_VARIABLE: engine_dir, TASK_VARIABLE: task}
    before = leftovers.clock()
    leader = reaper.start(["sh", "-c", "sleep 300 & echo $!"], env=env, stdout=subprocess.PIPE)
    born = leftovers.birth(before)
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    assert leader.wait() == 0  # reaped: the group's id now names no process
    (start,) = _group(leader.pid).values()
    reaper.track({child: start})
    _point(data, task_id, leader.pid, born)
    log = _restart(data, instance_id)
    if marks == "the task's marks":
        _poll(lambda: not _live(child, start), "the child is killed")
        assert "[gitsync] killed 1 leftover process of this task on restart" in log
    else:
        assert _live(child, start)
        assert "leftover" not in log


def test_a_store_from_before_births_gains_the_column_and_its_tasks_are_left_alone(
    tmp_path: Path, reaper: _Reaper
) -> None:
    data = tmp_path / "d"
    instance_id, task_id = _a_stopped_engine_with_a_waiting_task(data)
    pid, _ = _sleep(reaper)
    db = sqlite3.connect(data / STORE_FILE)
    with db:
        db.execute("ALTER TABLE task_instances DROP COLUMN born")
        db.execute("UPDATE task_instances SET status=2, pid=? WHERE id=?", (pid, task_id))
    db.close()
    assert "born" not in _rows(data)[0]
    log = _restart(data, instance_id)
    assert _rows(data)[0]["born"] == ""
    assert _live(pid, reaper.seen[pid]) and "leftover" not in log


# -- the pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize("launch", ["posix_spawn", "Popen"])
def test_a_task_carries_its_marks_once_even_inside_another_engines_task(
    tmp_path: Path, launch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitsync.engine import spawn

    if launch == "Popen":
        monkeypatch.setattr(spawn, "libc_spawn_available", lambda: False)
    elif not spawn.libc_spawn_available():
        pytest.skip("libc's posix_spawn is used on glibc 2.34 or later only")
    monkeypatch.setenv(TASK_VARIABLE, "an-outer-task")  # this engine runs as some task
    monkeypatch.setenv(ENGINE_VARIABLE, "/an/outer/engine")
    data, seen = tmp_path / "d", tmp_path / "seen"
    with RunningEngine(EngineOptions(data)) as engine, _api(engine.url) as api:
        cmd = f"env | grep -e ^{TASK_VARIABLE}= -e ^{ENGINE_VARIABLE}= | sort >> {seen}"
        instance_id = _trigger(api, "marks", {"t": cmd, "u": cmd})
        assert engine.engine.runner.wait(instance_id, 30)
    rows = {str(r["task_name"]): str(r["id"]) for r in _rows(data)}
    lines = seen.read_text().splitlines()
    assert sorted(lines) == sorted(
        [f"{ENGINE_VARIABLE}={data.resolve()}"] * 2
        + [f"{TASK_VARIABLE}={t}" for t in rows.values()]
    )


def test_a_process_name_cannot_fool_the_stat_parser(tmp_path: Path, reaper: _Reaper) -> None:
    """The command name sits in parentheses and may hold anything: `) Z 1 1 1 1 1` too."""
    program = tmp_path / ") Z 1 1 1 1 1"
    sleep = shutil.which("sleep")
    assert sleep is not None
    shutil.copy(sleep, program)
    proc = reaper.start([str(program), "300"])
    comm = Path(f"/proc/{proc.pid}/comm")
    _poll(lambda: comm.read_text().startswith(") Z") and _stat(proc.pid)[0] == "S", "it sleeps")  # type: ignore[index]
    found = leftovers._proc(proc.pid)
    assert found is not None
    assert (found.state, found.group, found.session) == ("S", proc.pid, proc.pid)
    assert found.start == reaper.seen[proc.pid]
