"""Runs flow instances: a DAG of tasks as processes, with parallelism, timeouts, retries,
logs and cancel.

A task starts once all its upstream tasks succeeded; tasks downstream of a failure are not run
and end SKIP. Each attempt is a subprocess in its own process group (so a timeout or a cancel
kills everything it started), with stdout and stderr appended to the task's log file. At most
``parallelism`` tasks run at once across all instances; one instance of a workflow runs at a
time and later ones wait (SPEC §4.4).

``parallelism`` slot threads take ready tasks and each runs one process at a time: it starts
it, waits for it, and records how it ended. Starting (a vfork that waits for the child's exec)
and waiting both release the GIL, so one slot's bookkeeping overlaps the other slots' processes
and nothing hands a task from thread to thread. One timer thread keeps time-outs, retry
intervals, delayed triggers and kill graces in a heap. The run state is guarded by one lock,
held only for bookkeeping, never across a spawn or a wait (``benchmarks/engine.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import heapq
import itertools
import os
import shlex
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gitsync.engine import leftovers
from gitsync.engine.journal import Journal
from gitsync.engine.spawn import ENGINE_VARIABLE, Child, Launcher
from gitsync.engine.store import Store
from gitsync.engine.tasks import CannotRun, command_line
from gitsync.engine.variables import substitute, system_variables
from gitsync.model import Task, Workflow
from gitsync.protocol import Status

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
SETTLE_POLL = 0.02  # how often a process group being killed is checked for emptiness
SETTLE_LIMIT = 2.0  # after SIGKILL, stop waiting for a group that will not empty (zombies)
_RULE, _SHORT_RULE = "=" * 73 + "\n", "=" * 39 + "\n"  # around a log's attempt header
_SHELL = set("|&;<>()$`\\\"'*?[]#~=%{}!\n\t")
T = TypeVar("T")


_BUILTINS = frozenset(
    [
        "alias",
        "bg",
        "break",
        "cd",
        "command",
        "continue",
        "eval",
        "exec",
        "exit",
        "export",
        "fc",
        "fg",
        "getopts",
        "hash",
        "jobs",
        "read",
        "readonly",
        "return",
        "set",
        "shift",
        "source",
        "times",
        "trap",
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
        ".",
        ":",
    ]
)


@functools.lru_cache(maxsize=4096)
def argv(command: str) -> tuple[str, ...]:
    """Like make: a plain command of a program on PATH is executed directly (by its full path,
    so no PATH search per run); anything shell-like (metacharacters, builtins) goes to
    ``sh -c``."""
    shell = ("/bin/sh", "-c", command)
    if not command.strip() or any(c in _SHELL for c in command):
        return shell
    words = shlex.split(command)
    program = shutil.which(words[0]) if words[0] not in _BUILTINS else None
    return (program, *words[1:]) if program else shell


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def java_date(moment: dt.datetime) -> str:
    """``Date.toString()``: Tue Feb 02 17:35:00 UTC 2021."""
    return moment.strftime("%a %b %d %H:%M:%S UTC %Y")


class _Clock:
    """The time as the runner writes it, formatted once per second: a run of short tasks
    asks for it several times per task. Threads share it: one tuple, swapped whole."""

    def __init__(self) -> None:
        self._now: tuple[int, str, str] = (-1, "", "")

    def _tick(self) -> tuple[int, str, str]:
        second = int(time.time())
        now = self._now
        if second != now[0]:
            moment = dt.datetime.fromtimestamp(second, dt.UTC)
            now = self._now = (second, stamp(moment), java_date(moment))
        return now

    def stamp(self) -> str:
        return self._tick()[1]

    def java(self) -> str:
        return self._tick()[2]


def signal_group(pgid: int, signum: int) -> bool:
    """Send a signal to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@dataclass
class Instance:
    """One flow instance to run, as the service hands it over."""

    id: str
    flow_id: int
    workflow: Workflow
    task_ids: dict[str, int]
    parameters: dict[str, str]
    trigger: dt.datetime
    trigger_ms: int
    do_as: str
    run_set: set[str] | None = None  # Trigger From Task: only these run

    def task_instance_id(self, name: str) -> str:
        return f"{self.task_ids[name]}-{self.id.split('-', 1)[1]}"


class _Timer:
    __slots__ = ("callback", "cancelled", "run", "when")

    def __init__(self, when: float, callback: Callable[[], None], run: _Run | None) -> None:
        self.when = when
        self.callback = callback
        self.run = run  # whose bookkeeping a failure in the callback breaks
        self.cancelled = False


@dataclass(eq=False, slots=True)
class _Attempt:
    """One process of one task, from before its spawn until its whole group is gone."""

    run: _Run
    name: str
    number: int
    proc: Child | None = None  # None while its slot is starting it
    deadline: _Timer | None = None  # the task's time-out
    kill_at: float = 0.0  # set when the group got SIGTERM: SIGKILL follows at this time
    timed_out: bool = False
    code: int | None = None  # the leader's exit code, once it exited
    settling: bool = False  # the leader exited; what it left in its group is being killed


@dataclass(eq=False)
class _Run:
    """An instance being run: its DAG bookkeeping, guarded by the runner's lock."""

    instance: Instance
    tasks: dict[str, Task]
    down: dict[str, list[str]]
    waiting: dict[str, int]  # upstream tasks each task still waits for
    status: dict[str, int] = field(default_factory=dict)  # finished tasks
    attempts: dict[str, _Attempt] = field(default_factory=dict)  # starting or running
    retries: dict[str, _Timer] = field(default_factory=dict)  # tasks waiting to retry
    queued: set[str] = field(default_factory=set)  # ready, waiting for a free slot
    tids: dict[str, str] = field(default_factory=dict)  # task name -> task instance id
    variables: dict[str, str] = field(default_factory=dict)
    log_dir: str = ""
    work_dir: str = ""
    cancelled: bool = False
    crashed: bool = False

    def busy(self) -> bool:
        return bool(self.attempts or self.retries or self.queued)


@dataclass(frozen=True, slots=True)
class _Job:
    """What a slot needs to start an attempt, worked out under the lock."""

    attempt: _Attempt
    tid: str
    command: str
    header: bytes
    log: str


class Runner:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        parallelism: int | None = None,
    ) -> None:
        self.store = store
        self.data_dir = str(data_dir.resolve())  # in every task's environment: its engine
        self.logs = data_dir.absolute() / "logs"
        self.work = data_dir.absolute() / "work"
        self.clock = _Clock()
        self.parallelism = parallelism or os.cpu_count() or 2
        self.journal = Journal(store)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # a task became ready, or closing
        self._wakeup = threading.Condition(self._lock)  # a new earliest timer, or closing
        self._ended = threading.Condition(self._lock)  # an instance ended
        # the run state, under the lock
        self._runs: dict[int, _Run] = {}  # flow id -> its running instance
        self._waiting: dict[int, deque[Instance]] = {}  # flow id -> instances queued behind it
        self._delayed: dict[str, tuple[Instance, _Timer]] = {}  # future trigger times
        self._ready: deque[tuple[_Run, str, int]] = deque()  # (run, task, attempt number)
        self._timers: list[tuple[float, int, _Timer]] = []
        self._dead_timers = 0  # cancelled ones still in the heap
        self._sequence = itertools.count()
        self._closed = False
        self._stopped = False
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._threads = [
            threading.Thread(target=self._slot, name=f"gitsync-slot-{i}", daemon=True)
            for i in range(self.parallelism)
        ]
        self._threads.append(
            threading.Thread(target=self._keep_time, name="gitsync-timers", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    # -- lifecycle -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Instances a killed engine left unfinished are failed, with a line in their logs;
        what their running tasks left running is killed first (leftovers.py)."""
        now = self.clock.stamp()
        rows = [
            (r["id"], self.store.task_instances(r["id"])) for r in self.store.unfinished_instances()
        ]
        running = [t for _, tasks in rows for t in tasks if t["status"] == Status.RUNNING]
        killed = leftovers.kill(
            [leftovers.Task(t["id"], t["pid"], t["born"]) for t in running], self.data_dir
        )
        for instance_id, tasks in rows:
            updates = []
            for task in tasks:
                if task["status"] == Status.RUNNING:
                    self._append(
                        instance_id,
                        task["id"],
                        "\n[gitsync] the engine stopped while this task ran (crash or kill); "
                        "marked failed on restart\n" + leftovers.note(killed.get(task["id"], 0)),
                    )
                    updates.append((task["id"], {"status": Status.FAIL, "end_time": now}))
                elif not Status(task["status"]).finished:
                    updates.append((task["id"], {"status": Status.SKIP}))
            self.store.update_tasks(updates)
            self.store.update_instance(instance_id, status=Status.FAIL, end_time=now)

    def close(self) -> None:
        """Stop: running instances are cancelled (their processes killed), waiting ones stay
        as they are (the next start fails them, as after a crash)."""
        if self._stopped:
            return
        self._stopped = True
        with self._lock:
            self._closed = True
            for _, timer in self._delayed.values():
                self._drop(timer)
            self._delayed.clear()
            for run in list(self._runs.values()):
                self._cancel_run(run)
            self._work.notify_all()
            self._wakeup.notify_all()
            self._ended.notify_all()
        deadline = time.monotonic() + KILL_GRACE + SETTLE_LIMIT + 5
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.journal.close()
        os.close(self._devnull)

    # -- what other threads call ---------------------------------------------------------------

    def submit(self, instance: Instance) -> None:
        """Run now, or WAIT for the trigger time or for the flow's running instance. Returns
        once the instance's first status is in the journal."""
        with self._lock:
            delay = (instance.trigger_ms / 1000) - time.time()
            if delay > 0:
                self.journal.instance(instance.id, status=Status.WAIT)
                timer = self._after(delay, lambda: self._admit(instance))
                self._delayed[instance.id] = (instance, timer)
                return
            self._admit(instance)

    def cancel(self, instance_id: str) -> bool:
        """Cancel a waiting or running instance; False if the runner does not hold it."""
        with self._lock:
            held = self._cancel(instance_id)
        self.journal.flush()
        return held

    def wait(self, instance_id: str, timeout: float) -> bool:
        """Wait until the runner no longer holds an instance and its end is stored; False on
        time-out. For callers in the engine's process (a benchmark): it costs them nothing,
        where asking over HTTP costs both sides CPU and rounds the end up to the next ask."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._holds(instance_id):
                left = deadline - time.monotonic()
                if left <= 0 or not self._ended.wait(left):
                    return False
        self.journal.flush()
        return True

    def _holds(self, instance_id: str) -> bool:
        return (
            instance_id in self._delayed
            or any(r.instance.id == instance_id for r in self._runs.values())
            or any(i.id == instance_id for q in self._waiting.values() for i in q)
        )

    def mark_cancelled(self, instance_id: str) -> None:
        """Cancel an instance the runner does not hold (its row says it has not finished)."""
        self.journal.flush()
        now = self.clock.stamp()
        for task in self.store.task_instances(instance_id):
            if not Status(task["status"]).finished:
                self.journal.task(task["id"], status=Status.CANCEL)
        self.journal.instance(instance_id, status=Status.CANCEL, cancelled=1, end_time=now)
        self.journal.flush()

    def log_path(self, instance_id: str, task_instance_id: str) -> Path:
        return self.logs / instance_id / f"{task_instance_id}.log"

    # -- timers --------------------------------------------------------------------------------

    def _keep_time(self) -> None:
        """The timer thread: runs each timer's callback, under the lock, when it is due."""
        with self._lock:
            while not (self._closed and not self._runs):
                now = time.monotonic()
                while self._timers and (self._timers[0][2].cancelled or self._timers[0][0] <= now):
                    _, _, timer = heapq.heappop(self._timers)
                    if timer.cancelled:
                        self._dead_timers -= 1
                    elif timer.run is None:
                        timer.callback()
                    else:
                        self._guard(timer.run, timer.callback)
                timeout = 0.5  # and at least that often, to notice the end of a shutdown
                if self._timers:
                    timeout = min(timeout, max(0.0, self._timers[0][0] - time.monotonic()))
                self._wakeup.wait(timeout)

    def _after(self, delay: float, callback: Callable[[], None], run: _Run | None = None) -> _Timer:
        timer = _Timer(time.monotonic() + delay, callback, run)
        earliest = not self._timers or timer.when < self._timers[0][0]
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        if earliest:
            self._wakeup.notify()
        return timer

    def _drop(self, timer: _Timer) -> None:
        """Cancel a timer; the heap is rebuilt when mostly cancelled ones (every task's
        time-out is cancelled when it ends, long before it would fire)."""
        if timer.cancelled:
            return
        timer.cancelled = True
        self._dead_timers += 1
        if self._dead_timers > 1024 and self._dead_timers * 2 > len(self._timers):
            self._timers = [t for t in self._timers if not t[2].cancelled]
            heapq.heapify(self._timers)
            self._dead_timers = 0

    def _guard(self, run: _Run, function: Callable[..., None], *args: Any) -> None:
        """A bug must not stop a thread of the runner nor leave an instance RUNNING forever."""
        try:
            function(*args)
        except Exception as e:
            self._crashed(run, e)

    def _crashed(self, run: _Run, error: Exception) -> None:
        instance = run.instance
        with contextlib.suppress(OSError):
            self._append(instance.id, "engine", f"[gitsync] internal error: {error!r}\n")
        if self._runs.get(instance.flow_id) is not run:
            return  # it ended already
        run.crashed = run.cancelled = True
        for attempt in list(run.attempts.values()):
            if attempt.proc is None:
                continue  # its slot is starting it: it sees the run cancelled
            if attempt.code is None:
                self._terminate(attempt)
            elif not attempt.settling:  # its own ending failed: the task ends with the bug
                del run.attempts[attempt.name]
                run.status[attempt.name] = Status.INTERNAL_ERROR
                self.journal.task(
                    run.tids[attempt.name],
                    status=Status.INTERNAL_ERROR,
                    end_time=self.clock.stamp(),
                )
        for timer in run.retries.values():
            self._drop(timer)
        run.retries.clear()
        run.queued.clear()
        if not run.attempts:
            self._end(run, Status.INTERNAL_ERROR)

    # -- admitting instances -------------------------------------------------------------------

    def _admit(self, instance: Instance) -> None:
        self._delayed.pop(instance.id, None)
        if self._closed:
            return
        if instance.flow_id in self._runs:
            self._waiting.setdefault(instance.flow_id, deque()).append(instance)
            self.journal.instance(instance.id, status=Status.WAIT)
            return
        wf = instance.workflow
        tasks = {t.name: t for t in wf.tasks}
        run = _Run(instance, tasks, {name: [] for name in tasks}, {})
        self._runs[instance.flow_id] = run
        try:
            self._begin(run)
        except Exception as e:
            self._crashed(run, e)

    def _begin(self, run: _Run) -> None:
        instance = run.instance
        run.variables = system_variables(instance.trigger)
        log_dir, work_dir = self.logs / instance.id, self.work / instance.id
        log_dir.mkdir(parents=True, exist_ok=True)
        work_dir.mkdir(parents=True, exist_ok=True)
        run.log_dir, run.work_dir = str(log_dir), str(work_dir)
        run.tids = {name: instance.task_instance_id(name) for name in run.tasks}
        self.journal.instance(instance.id, status=Status.RUNNING, start_time=self.clock.stamp())
        for task in instance.workflow.tasks:
            local = [d.task for d in task.depends_on if d.is_local and d.task in run.tasks]
            run.waiting[task.name] = len(local)
            for up in local:
                run.down[up].append(task.name)
        if instance.run_set is not None:
            outside = [name for name in run.tasks if name not in instance.run_set]
            for name in outside:
                run.status[name] = Status.SKIP
                self.journal.task(run.tids[name], status=Status.SKIP)
            for name in outside:
                for child in run.down[name]:
                    run.waiting[child] -= 1
        for name in run.tasks:
            if name not in run.status and run.waiting[name] == 0:
                self._queue(run, name, 1)
        self._maybe_end(run)

    def _queue(self, run: _Run, name: str, number: int) -> None:
        run.queued.add(name)
        self._ready.append((run, name, number))
        self._work.notify()

    # -- a slot --------------------------------------------------------------------------------

    def _slot(self) -> None:
        """Take ready tasks and run them, one process at a time, until the runner closes."""
        launcher = Launcher({ENGINE_VARIABLE: self.data_dir})
        while True:
            with self._lock:
                job = self._next_job()
            if job is None:
                return
            attempt = job.attempt
            try:
                self._run_attempt(launcher, job)
            except Exception as e:  # a bug: the instance ends, the slot goes on
                proc = attempt.proc
                if proc is not None and attempt.code is None:  # never left running unwatched
                    signal_group(proc.pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        proc.wait()
                with self._lock:
                    attempt.run.attempts.pop(attempt.name, None)
                    self._crashed(attempt.run, e)

    def _next_job(self) -> _Job | None:
        while True:
            while not self._ready:
                if self._closed:
                    return None
                self._work.wait()
            run, name, number = self._ready.popleft()
            run.queued.discard(name)
            if run.cancelled:
                self._maybe_end(run)
                continue
            try:
                job = self._prepare(run, name, number)
            except Exception as e:
                self._crashed(run, e)
                continue
            if job is not None:
                return job

    def _command(self, run: _Run, task: Task) -> str:
        command = command_line(task)
        if "${" in command:
            instance = run.instance
            values = {
                **run.variables,
                **instance.parameters,
                "task_id": str(instance.task_ids[task.name]),
                "instance_id": run.tids[task.name],
            }
            command = substitute(command, values, instance.trigger)
        return command

    def _prepare(self, run: _Run, name: str, number: int) -> _Job | None:
        instance, task, tid = run.instance, run.tasks[name], run.tids[name]
        try:
            command = self._command(run, task)
        except CannotRun as e:
            self._append(instance.id, tid, f"[gitsync] {e}\n")
            at = self.clock.stamp()
            self.journal.task(tid, status=Status.FAIL, start_time=at, end_time=at, run_num=1)
            self._task_done(run, name, Status.FAIL)
            return None
        header = (
            f"{_RULE}run  num:\t{number}\ninstance:\t{tid}\ncmdline:\t{command}\n"
            f"submitter:\t{instance.do_as}\ncurrent time:\t{self.clock.java()}\n{_SHORT_RULE}"
        )
        attempt = _Attempt(run, name, number)
        run.attempts[name] = attempt  # the run is busy while its slot starts it
        return _Job(attempt, tid, command, header.encode(), f"{run.log_dir}/{tid}.log")

    def _run_attempt(self, launcher: Launcher, job: _Job) -> None:
        attempt = job.attempt
        run, name, number = attempt.run, attempt.name, attempt.number
        started = self.clock.stamp()
        fd = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, job.header)
            before = leftovers.clock()
            try:
                child = launcher.start(argv(job.command), run.work_dir, fd, self._devnull, job.tid)
            except OSError as e:
                os.write(fd, f"[gitsync] cannot start the command: {e.strerror or e}\n".encode())
                with self._lock:
                    run.attempts.pop(name, None)
                    self.journal.task(
                        job.tid, status=Status.RUNNING, run_num=number, start_time=started
                    )
                    self._guard(run, self._attempt_ended, run, name, number, Status.FAIL)
                return
            with self._lock:
                attempt.proc = child  # from here on a failure kills it
                self.journal.task(
                    job.tid,
                    status=Status.RUNNING,
                    run_num=number,
                    recall_num=number - 1,
                    start_time=started,
                    cmd=job.command,
                    pid=child.pid,
                    born=leftovers.birth(before),
                )
                task = run.tasks[name]
                if task.timeout:
                    attempt.deadline = self._after(
                        task.timeout, lambda: self._time_out(attempt), run
                    )
                if run.cancelled:
                    self._terminate(attempt)
            code = child.wait()
            stragglers = signal_group(child.pid, signal.SIGTERM)  # what it left in its group
            with self._lock:
                attempt.code = code
                if attempt.deadline is not None:
                    self._drop(attempt.deadline)
                if not stragglers:  # the usual case: the group went with its leader
                    self._guard(run, self._settled, attempt, fd)
                    return
                attempt.settling = True
                if not attempt.kill_at:
                    attempt.kill_at = time.monotonic() + KILL_GRACE
            self._empty_group(child.pid, attempt.kill_at)
            with self._lock:
                attempt.settling = False
                self._guard(run, self._settled, attempt, fd)
        finally:
            os.close(fd)

    def _time_out(self, attempt: _Attempt) -> None:
        if attempt.code is None:
            attempt.timed_out = True
            self._terminate(attempt)

    def _terminate(self, attempt: _Attempt) -> None:
        """SIGTERM the attempt's group; SIGKILL it after the grace if it is still there."""
        if attempt.kill_at or attempt.proc is None:
            return
        attempt.kill_at = time.monotonic() + KILL_GRACE
        signal_group(attempt.proc.pid, signal.SIGTERM)
        self._after(KILL_GRACE, lambda: self._kill_leader(attempt), attempt.run)

    def _kill_leader(self, attempt: _Attempt) -> None:
        if attempt.code is None and attempt.proc is not None:  # still running: still ours
            signal_group(attempt.proc.pid, signal.SIGKILL)

    def _empty_group(self, pgid: int, kill_at: float) -> None:
        """Wait, outside the lock, until what a leader left in its group (already sent SIGTERM)
        is gone; SIGKILL it at ``kill_at``."""
        killed = False
        while signal_group(pgid, 0):
            now = time.monotonic()
            if now >= kill_at and not killed:
                signal_group(pgid, signal.SIGKILL)
                killed = True
            elif killed and now >= kill_at + SETTLE_LIMIT:
                return  # zombies an init does not reap: stop waiting for them
            time.sleep(SETTLE_POLL)

    def _settled(self, attempt: _Attempt, fd: int) -> None:
        run, name = attempt.run, attempt.name
        run.attempts.pop(name, None)
        task = run.tasks[name]
        if run.cancelled:
            os.write(fd, b"\n[gitsync] cancelled; process group killed\n")
            result = Status.CANCEL
        elif attempt.timed_out:
            note = f"\n[gitsync] timed out after {task.timeout} s; process group killed\n"
            os.write(fd, note.encode())
            result = Status.TIMEOUT
        elif str(attempt.code) == task.success_code:
            result = Status.SUCCESS
        else:
            note = f"\n[gitsync] exit code {attempt.code}; success code is {task.success_code}\n"
            os.write(fd, note.encode())
            result = Status.FAIL
        self._attempt_ended(run, name, attempt.number, result)

    def _attempt_ended(self, run: _Run, name: str, number: int, result: int) -> None:
        task = run.tasks[name]
        if result in (Status.FAIL, Status.TIMEOUT) and number <= task.retries and not run.cancelled:
            tid = run.tids[name]
            self._append(
                run.instance.id,
                tid,
                f"[gitsync] retry {number} of {task.retries} in {task.retry_interval} s\n",
            )

            def retry() -> None:
                del run.retries[name]
                self._queue(run, name, number + 1)

            run.retries[name] = self._after(task.retry_interval, retry, run)
            return
        self._finish_task(run, name, result)

    # -- the DAG -------------------------------------------------------------------------------

    def _finish_task(self, run: _Run, name: str, result: int) -> None:
        self.journal.task(
            run.tids[name],
            status=result,
            end_time=self.clock.stamp(),
            is_timeout=int(result == Status.TIMEOUT),
        )
        self._task_done(run, name, result)

    def _task_done(self, run: _Run, name: str, result: int) -> None:
        run.status[name] = result
        if result == Status.SUCCESS:
            if not run.cancelled:
                for child in run.down[name]:
                    run.waiting[child] -= 1
                    if run.waiting[child] == 0 and child not in run.status:
                        self._queue(run, child, 1)
        elif result != Status.CANCEL:  # cancelled: the rest ends CANCEL when the run ends
            self._skip_downstream(run, name)
        self._maybe_end(run)

    def _skip_downstream(self, run: _Run, name: str) -> None:
        stack = list(run.down[name])
        while stack:
            child = stack.pop()
            if child in run.status:
                continue
            run.status[child] = Status.SKIP
            self.journal.task(run.tids[child], status=Status.SKIP)
            stack.extend(run.down[child])

    def _maybe_end(self, run: _Run) -> None:
        if run.busy() or self._runs.get(run.instance.flow_id) is not run:
            return
        if run.crashed:
            final = Status.INTERNAL_ERROR
        elif run.cancelled:
            final = Status.CANCEL
        elif any(Status(s).failed for s in run.status.values()):
            final = Status.FAIL
        else:
            final = Status.SUCCESS
        self._end(run, final)

    def _end(self, run: _Run, final: int) -> None:
        instance = run.instance
        for name in run.tasks:
            if name not in run.status:
                self.journal.task(
                    run.tids.get(name) or instance.task_instance_id(name),
                    status=Status.CANCEL
                    if run.cancelled and final == Status.CANCEL
                    else Status.SKIP,
                )
        self.journal.instance(
            instance.id,
            status=final,
            end_time=self.clock.stamp(),
            cancelled=int(final == Status.CANCEL),
        )
        self.journal.hurry()
        del self._runs[instance.flow_id]
        following = self._waiting.get(instance.flow_id)
        if following:
            self._admit(following.popleft())
        self._ended.notify_all()

    # -- cancel and shutdown -------------------------------------------------------------------

    def _cancel(self, instance_id: str) -> bool:
        delayed = self._delayed.pop(instance_id, None)
        if delayed is not None:
            self._drop(delayed[1])
            self._cancel_unstarted(delayed[0])
            return True
        for queue in self._waiting.values():
            waiting = next((i for i in queue if i.id == instance_id), None)
            if waiting is not None:
                queue.remove(waiting)
                self._cancel_unstarted(waiting)
                return True
        run = next((r for r in self._runs.values() if r.instance.id == instance_id), None)
        if run is None:
            return False
        self._cancel_run(run)
        return True

    def _cancel_unstarted(self, instance: Instance) -> None:
        for name in instance.task_ids:
            self.journal.task(instance.task_instance_id(name), status=Status.CANCEL)
        self.journal.instance(
            instance.id, status=Status.CANCEL, cancelled=1, end_time=self.clock.stamp()
        )
        self._ended.notify_all()

    def _cancel_run(self, run: _Run) -> None:
        run.cancelled = True
        for attempt in list(run.attempts.values()):
            self._terminate(attempt)
        for name, timer in list(run.retries.items()):
            self._drop(timer)
            del run.retries[name]
            self._finish_task(run, name, Status.CANCEL)
        run.queued.clear()
        self._maybe_end(run)

    # -- logs ----------------------------------------------------------------------------------

    def _append(self, instance_id: str, task_instance_id: str, text: str) -> None:
        path = self.log_path(instance_id, task_instance_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(text)
