"""forked.py: a call run in a forked child, its result or its failure brought back."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitsync import config
from gitsync.config import Settings
from gitsync.errors import InvalidFilesError, TransportError
from gitsync.forked import ChildFailed, Forked
from gitsync.sync import FilesBeingChecked
from tests.conftest import CASES, EXAMPLES, eventually


@pytest.fixture(autouse=True)
def _single_threaded() -> Iterator[None]:
    """Forking is only safe with one thread: every test here starts (and ends) with one, so a
    thread another test left running shows up here as a failure."""
    assert threading.active_count() == 1, threading.enumerate()
    yield
    assert threading.active_count() == 1, threading.enumerate()


def _gone(pid: int) -> bool:
    """Whether no process (not even a zombie) has this pid: it ended and was reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_result_comes_back_from_another_process() -> None:
    with Forked(lambda: (os.getpid(), {"a": [1, 2], "b": None})) as child:
        pid, value = child.result()
        assert child.result() == (pid, value)  # asked twice, read once
    assert pid != os.getpid()
    assert value == {"a": [1, 2], "b": None}
    assert _gone(pid)


def test_the_child_works_while_this_process_goes_on(tmp_path: Path) -> None:
    go = tmp_path / "go"

    def wait_for_go() -> str:
        deadline = time.monotonic() + 30
        while not go.exists():
            assert time.monotonic() < deadline, "no go within 30 s"
            time.sleep(0.01)
        return "went"

    with Forked(wait_for_go) as child:
        assert not child.ready()  # it waits for this process: both run at once
        go.write_text("")
        assert child.result() == "went"
        assert child.ready()


def test_a_result_larger_than_a_pipe_holds_comes_back_whole() -> None:
    big = bytes(range(256)) * (1 << 15)  # 8 MiB: the child writes while this process reads
    with Forked(lambda: big) as child:
        assert child.result() == big


def test_an_exception_in_the_child_comes_back_with_its_traceback() -> None:
    def fail() -> None:
        raise ValueError("the files are somewhere else")

    with Forked(fail) as child, pytest.raises(ChildFailed) as raised:
        child.result()
    assert "ValueError: the files are somewhere else" in str(raised.value)
    assert "Traceback" in str(raised.value)


def test_a_child_killed_by_a_signal_is_a_failure_not_a_hang() -> None:
    with (
        Forked(lambda: os.kill(os.getpid(), signal.SIGKILL)) as child,
        pytest.raises(ChildFailed, match="ended without a result"),
    ):
        child.result()


def test_a_result_that_cannot_be_pickled_is_a_failure() -> None:
    with Forked(lambda: threading.Lock()) as child, pytest.raises(ChildFailed, match="pickle"):
        child.result()


def test_close_kills_a_child_that_still_runs_and_reaps_it(tmp_path: Path) -> None:
    pid_file, woke = tmp_path / "pid", tmp_path / "woke"

    def sleep_long() -> None:
        pid_file.write_text(str(os.getpid()))
        time.sleep(30)
        woke.write_text("")  # only if close() waited for it instead of killing it

    child = Forked(sleep_long)
    eventually(lambda: pid_file.exists() and pid_file.read_text(), "the child wrote its pid")
    pid = int(pid_file.read_text())
    assert not _gone(pid)
    child.close()
    assert _gone(pid)
    assert not woke.exists()
    child.close()  # twice is harmless


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks only on Linux")
def test_forking_is_possible_only_while_this_process_has_one_thread() -> None:
    assert Forked.possible()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not Forked.possible()
    finally:
        stop.set()
        other.join()
    assert Forked.possible()


# -- plan's use of it: the files checked in a child while the service is read -------------------


def _settings(tmp_path: Path, *extra: Path) -> Settings:
    shutil.copytree(EXAMPLES, tmp_path / "flows")
    for path in extra:
        shutil.copy(path, tmp_path / "flows" / path.name)
    return config.load(tmp_path, {"GITSYNC_NO_CACHE": "1"})


def test_the_files_problems_replace_an_error_that_came_while_they_were_checked(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, CASES / "invalid" / "cycle.yaml")
    with pytest.raises(InvalidFilesError) as raised, FilesBeingChecked(settings) as files:
        assert files.forked
        raise TransportError("List Workflow Directories: the request failed")
    assert str(raised.value) == "1 problem in the workflow files; no plan was made"
    assert [p.message for p in raised.value.problems] == ["dependency cycle: a -> b -> c -> a"]


def test_an_error_that_came_while_valid_files_were_checked_is_kept(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(TransportError, match="the request failed"), FilesBeingChecked(settings):
        raise TransportError("List Workflow Directories: the request failed")
    with FilesBeingChecked(settings) as files:
        assert files.forked
        assert {w.name for w in files.tree().workflows} >= {"sales_etl", "health_check"}
