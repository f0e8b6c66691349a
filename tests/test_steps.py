"""steps.run, the executor under apply: waits, order of results, limits, failures, Ctrl-C.

No sleeps: steps block on events that other steps or the ``ended`` callback set, so every
interleaving the tests rely on is forced, not hoped for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from gitsync import steps

DEADLINE = 30.0  # seconds; only ever reached when something is broken


class Log:
    """What happened, in order, from every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, int]] = []

    def add(self, what: str, index: int) -> None:
        with self.lock:
            self.events.append((what, index))

    def step(self, index: int, body: Callable[[], None] = lambda: None) -> Callable[[], int]:
        def run() -> int:
            self.add("start", index)
            body()
            self.add("end", index)
            return index * 10

        return run

    def at(self, what: str, index: int) -> int:
        return self.events.index((what, index))


def test_each_step_starts_after_the_steps_it_waits_for_and_results_keep_their_order() -> None:
    log = Log()
    after = {0: (), 1: (0,), 2: (0,), 3: (1, 2), 4: (), 5: (3, 4), 6: (5,)}
    plan = [steps.Step(log.step(i), after[i]) for i in range(7)]
    ended: list[int] = []
    results = steps.run(plan, 3, lambda i, r: ended.append(i))
    assert results == [0, 10, 20, 30, 40, 50, 60]
    for i, waits in after.items():
        for w in waits:
            assert log.at("end", w) < log.at("start", i), (w, i)
    assert sorted(ended) == list(range(7))


def test_a_slow_step_holds_up_only_what_waits_for_it() -> None:
    """Step 0 blocks until step 3 has run: 3 does not wait for 0, so it must run meanwhile
    (with phases and a barrier, it never would, and this would time out)."""
    log = Log()
    release = threading.Event()

    def slow() -> None:
        assert release.wait(DEADLINE), "step 3 never ran while step 0 was slow"

    plan = [
        steps.Step(log.step(0, slow)),
        steps.Step(log.step(1), (0,)),
        steps.Step(log.step(2)),
        steps.Step(log.step(3, release.set), (2,)),
    ]
    assert steps.run(plan, 2) == [0, 10, 20, 30]
    assert log.at("end", 3) < log.at("end", 0) < log.at("start", 1)


def test_one_worker_runs_the_steps_in_their_order() -> None:
    log = Log()
    plan = [steps.Step(log.step(i), (i - 1,) if i % 3 else ()) for i in range(9)]
    steps.run(plan, 1)
    assert [i for what, i in log.events if what == "start"] == list(range(9))


def test_no_more_than_workers_steps_run_at_once() -> None:
    """The first three hold until all three run together; none may ever make a fourth."""
    lock = threading.Condition()
    running, peak, started = 0, 0, 0

    def body() -> int:
        nonlocal running, peak, started
        with lock:
            running += 1
            started += 1
            peak = max(peak, running)
            lock.notify_all()
            assert lock.wait_for(lambda: started >= 3, DEADLINE)
        with lock:
            running -= 1
        return 0

    steps.run([steps.Step(body) for _ in range(12)], 3)
    assert peak == 3


def test_an_exception_in_a_step_is_raised_once_the_running_steps_have_ended() -> None:
    """A step's exception (a bug: apply's steps catch the errors they expect) stops the run:
    what waits for the broken step never starts, and what runs beside it ends first."""
    log = Log()
    beside = threading.Barrier(2, timeout=DEADLINE)
    go = threading.Event()

    def broken() -> None:
        beside.wait()
        go.set()
        raise RuntimeError("a bug")

    def other() -> None:
        beside.wait()
        assert go.wait(DEADLINE)

    plan = [
        steps.Step(log.step(0, broken)),
        steps.Step(log.step(1, other)),
        steps.Step(log.step(2), (0,)),
        steps.Step(log.step(3), (0, 1)),
    ]
    with pytest.raises(RuntimeError, match="a bug"):
        steps.run(plan, 2)
    assert ("end", 1) in log.events
    assert not {("start", 2), ("start", 3)} & set(log.events)


def test_ctrl_c_while_waiting_starts_nothing_new_and_lets_the_running_steps_end() -> None:
    """Ctrl-C arrives on the calling thread (here: out of ``ended``, as step 0 ends) while
    steps 1 and 2 are in flight; they are let finish and reported, and 3..9 never start."""
    log = Log()
    go = threading.Event()
    in_flight = threading.Barrier(3, timeout=DEADLINE)  # steps 1 and 2, and step 0

    def first() -> None:
        in_flight.wait()

    def held() -> None:
        in_flight.wait()
        assert go.wait(DEADLINE)

    told: list[int] = []

    def ctrl_c(index: int, result: int) -> None:
        told.append(index)
        if index == 0:
            go.set()
            raise KeyboardInterrupt

    plan = [
        steps.Step(log.step(0, first)),
        steps.Step(log.step(1, held)),
        steps.Step(log.step(2, held)),
        *(steps.Step(log.step(i)) for i in range(3, 10)),
    ]
    with pytest.raises(KeyboardInterrupt):
        steps.run(plan, 3, ctrl_c)
    assert sorted(i for what, i in log.events if what == "start") == [0, 1, 2]
    assert sorted(i for what, i in log.events if what == "end") == [0, 1, 2]
    assert told == [0, 1, 2]  # the caller hears of the steps that were in flight


def test_waits_that_cannot_be_met_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be"):
        steps.run([steps.Step(lambda: 0, (1,))], 2)
    with pytest.raises(ValueError, match="cannot be"):
        steps.run([steps.Step(lambda: 0, (0,))], 2)
    ran: list[int] = []
    cycle = [
        steps.Step(lambda: ran.append(0) or 0),
        steps.Step(lambda: ran.append(1) or 1, (2,)),
        steps.Step(lambda: ran.append(2) or 2, (1,)),
    ]
    with pytest.raises(ValueError, match="cycle"):
        steps.run(cycle, 2)
    assert ran == [0]
    assert steps.run([], 4) == []
