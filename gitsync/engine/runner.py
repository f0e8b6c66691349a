"""Runs flow instances: a DAG of tasks as processes, with parallelism, timeouts, retries,
logs and cancel.

A task starts once all its upstream tasks succeeded; tasks downstream of a failure are not run
and end SKIP. Each attempt is a subprocess in its own process group (so a timeout or a cancel
kills everything it started), with stdout and stderr appended to the task's log file. At most
``parallelism`` tasks run at once across all instances; one instance of a workflow runs at a
time and later ones wait (SPEC §4.4).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gitsync.engine.journal import Journal
from gitsync.engine.store import Store
from gitsync.engine.tasks import CannotRun, command_line
from gitsync.engine.variables import substitute, system_variables
from gitsync.model import Task, Workflow

FAIL, INIT, SUCCESS, RUNNING, INTERNAL_ERROR, WAIT, READY, TIMEOUT, CANCEL, SKIP = (
    -1,
    0,
    1,
    2,
    4,
    5,
    6,
    7,
    8,
    10,
)
FINISHED = {FAIL, SUCCESS, INTERNAL_ERROR, TIMEOUT, CANCEL, SKIP}
KILL_GRACE = 2.0
_SHELL = set("|&;<>()$`\\\"'*?[]#~=%{}!\n\t")


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


def kill_group(pid: int) -> None:
    """SIGTERM the process group, then SIGKILL what is left after a short grace."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return


@dataclass
class Instance:
    """One flow instance being run, as the runner sees it."""

    id: str
    flow_id: int
    workflow: Workflow
    task_ids: dict[str, int]
    parameters: dict[str, str]
    trigger: dt.datetime
    trigger_ms: int
    do_as: str
    run_set: set[str] | None = None  # Trigger From Task: only these run
    cancelled: threading.Event = field(default_factory=threading.Event)
    pids: dict[str, int] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)  # filled once when it starts
    log_dir: Path | None = None
    work_dir: Path | None = None

    def task_instance_id(self, name: str) -> str:
        return f"{self.task_ids[name]}-{self.id.split('-', 1)[1]}"


class Runner:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        parallelism: int | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.logs = data_dir / "logs"
        self.work = data_dir / "work"
        self.clock = clock
        self.parallelism = parallelism or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(
            max_workers=self.parallelism, thread_name_prefix="gitsync-task"
        )
        self.journal = Journal(store)
        self._lock = threading.Lock()
        self._running: dict[int, Instance] = {}  # flow id -> its running instance
        self._waiting: dict[int, deque[Instance]] = {}
        self._timers: dict[str, threading.Timer] = {}
        self._threads: list[threading.Thread] = []
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Instances a killed engine left unfinished are failed, with a line in their logs."""
        now = stamp(self.clock())
        for row in self.store.unfinished_instances():
            updates = []
            for task in self.store.task_instances(row["id"]):
                if task["status"] == RUNNING:
                    self._append(
                        row["id"],
                        task["id"],
                        "\n[gitsync] the engine stopped while "
                        "this task ran (crash or kill); marked failed on restart\n",
                    )
                    updates.append((task["id"], {"status": FAIL, "end_time": now}))
                elif task["status"] not in FINISHED:
                    updates.append((task["id"], {"status": SKIP}))
            self.store.update_tasks(updates)
            self.store.update_instance(row["id"], status=FAIL, end_time=now)

    def close(self) -> None:
        """Stop: running instances are cancelled (their processes killed)."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
            timers = list(self._timers.values())
        for timer in timers:
            timer.cancel()
        for instance in running:
            self._cancel_running(instance)
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.journal.close()

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, instance: Instance) -> None:
        """Run now, or WAIT for the trigger time or for the flow's running instance."""
        delay = (instance.trigger_ms / 1000) - self.clock().timestamp()
        if delay > 0:
            self.journal.instance(instance.id, status=WAIT)
            timer = threading.Timer(delay, self._admit, args=(instance,))
            timer.daemon = True
            with self._lock:
                self._timers[instance.id] = timer
            timer.start()
            return
        self._admit(instance)

    def _admit(self, instance: Instance) -> None:
        with self._lock:
            self._timers.pop(instance.id, None)
            if self._closed or instance.cancelled.is_set():
                return
            if instance.flow_id in self._running:
                self._waiting.setdefault(instance.flow_id, deque()).append(instance)
                wait_now = True
            else:
                self._running[instance.flow_id] = instance
                wait_now = False
        if wait_now:
            self.journal.instance(instance.id, status=WAIT)
            return
        thread = threading.Thread(
            target=self._run, args=(instance,), daemon=True, name=f"gitsync-instance-{instance.id}"
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _finished(self, instance: Instance) -> None:
        with self._lock:
            self._running.pop(instance.flow_id, None)
            queue = self._waiting.get(instance.flow_id)
            following = queue.popleft() if queue else None
        if following is not None:
            self._admit(following)

    # -- cancel --------------------------------------------------------------------------------

    def cancel(self, instance_id: str) -> bool:
        """Cancel a waiting or running instance; False if the runner does not hold it."""
        with self._lock:
            timer = self._timers.pop(instance_id, None)
            running = next((i for i in self._running.values() if i.id == instance_id), None)
            waiting = None
            for queue in self._waiting.values():
                waiting = next((i for i in queue if i.id == instance_id), None)
                if waiting is not None:
                    queue.remove(waiting)
                    break
        if timer is not None:
            timer.cancel()
        if running is not None:
            self._cancel_running(running)
            return True
        if timer is not None or waiting is not None:
            self._mark_cancelled(instance_id)
            return True
        return False

    def _cancel_running(self, instance: Instance) -> None:
        instance.cancelled.set()
        for pid in list(instance.pids.values()):
            kill_group(pid)

    def _mark_cancelled(self, instance_id: str) -> None:
        self.journal.flush()
        now = stamp(self.clock())
        for task in self.store.task_instances(instance_id):
            if task["status"] not in FINISHED:
                self.journal.task(task["id"], status=CANCEL)
        self.journal.instance(instance_id, status=CANCEL, cancelled=1, end_time=now)
        self.journal.flush()

    # -- running one instance ------------------------------------------------------------------

    def _run(self, instance: Instance) -> None:
        try:
            self._run_dag(instance)
        except Exception as e:  # a bug must not leave the instance RUNNING forever
            self.journal.instance(instance.id, status=INTERNAL_ERROR, end_time=stamp(self.clock()))
            self._append(instance.id, "engine", f"[gitsync] internal error: {e!r}\n")
        finally:
            self._finished(instance)

    def _run_dag(self, instance: Instance) -> None:
        wf = instance.workflow
        instance.variables = system_variables(instance.trigger)
        instance.log_dir = self.logs / instance.id
        instance.work_dir = self.work / instance.id
        instance.log_dir.mkdir(parents=True, exist_ok=True)
        instance.work_dir.mkdir(parents=True, exist_ok=True)
        self.journal.instance(instance.id, status=RUNNING, start_time=stamp(self.clock()))
        tasks = {t.name: t for t in wf.tasks}
        down: dict[str, list[str]] = {name: [] for name in tasks}
        waiting: dict[str, int] = {}
        for task in wf.tasks:
            local = [d.task for d in task.depends_on if d.is_local and d.task in tasks]
            waiting[task.name] = len(local)
            for up in local:
                down[up].append(task.name)
        status: dict[str, int] = {}
        for name in tasks:
            if instance.run_set is not None and name not in instance.run_set:
                status[name] = SKIP
                self.journal.task(instance.task_instance_id(name), status=SKIP)
        for name in list(status):
            for child in down[name]:
                waiting[child] -= 1
        done: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()

        def start(name: str) -> None:
            future = self._pool.submit(self._attempts, instance, tasks[name])
            future.add_done_callback(lambda f: done.put((name, _outcome(f))))

        pending = 0
        for name in tasks:
            if name not in status and waiting[name] == 0:
                start(name)
                pending += 1
        while pending:
            name, result = done.get()
            pending -= 1
            status[name] = result
            if result == SUCCESS:
                for child in down[name]:
                    waiting[child] -= 1
                    if waiting[child] == 0 and child not in status:
                        if instance.cancelled.is_set():
                            continue
                        start(child)
                        pending += 1
            elif result != CANCEL:  # cancelled: the rest ends CANCEL below
                self._skip_downstream(instance, name, down, status)
        cancelled = instance.cancelled.is_set()
        for name in tasks:
            if name not in status:
                self.journal.task(
                    instance.task_instance_id(name), status=CANCEL if cancelled else SKIP
                )
        if cancelled:
            final = CANCEL
        elif any(s in (FAIL, TIMEOUT, INTERNAL_ERROR) for s in status.values()):
            final = FAIL
        else:
            final = SUCCESS
        self.journal.instance(
            instance.id, status=final, end_time=stamp(self.clock()), cancelled=int(cancelled)
        )
        self.journal.flush()

    def _skip_downstream(
        self, instance: Instance, name: str, down: dict[str, list[str]], status: dict[str, int]
    ) -> None:
        stack, skipped = list(down[name]), []
        while stack:
            child = stack.pop()
            if child in status:
                continue
            status[child] = SKIP
            skipped.append(child)
            stack.extend(down[child])
        for child in skipped:
            self.journal.task(instance.task_instance_id(child), status=SKIP)

    def log_path(self, instance_id: str, task_instance_id: str) -> Path:
        return self.logs / instance_id / f"{task_instance_id}.log"

    def _append(self, instance_id: str, task_instance_id: str, text: str) -> None:
        path = self.log_path(instance_id, task_instance_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(text)

    def _attempts(self, instance: Instance, task: Task) -> int:
        """Run one task with its retries; returns its final status."""
        tid = instance.task_instance_id(task.name)
        if instance.cancelled.is_set():
            self.journal.task(tid, status=CANCEL)
            return CANCEL
        try:
            command = command_line(task)
        except CannotRun as e:
            self._append(instance.id, tid, f"[gitsync] {e}\n")
            now = stamp(self.clock())
            self.journal.task(tid, status=FAIL, start_time=now, end_time=now, run_num=1)
            return FAIL
        if "${" in command:
            values = {
                **instance.variables,
                **instance.parameters,
                "task_id": str(instance.task_ids[task.name]),
                "instance_id": tid,
            }
            command = substitute(command, values, instance.trigger)
        attempts = task.retries + 1
        result = FAIL
        for attempt in range(1, attempts + 1):
            if instance.cancelled.is_set():
                result = CANCEL
                break
            result = self._one_attempt(instance, task, tid, command, attempt)
            if result in (SUCCESS, CANCEL) or attempt == attempts:
                break
            self._append(
                instance.id,
                tid,
                f"[gitsync] retry {attempt} of {task.retries} in {task.retry_interval} s\n",
            )
            if instance.cancelled.wait(task.retry_interval):
                result = CANCEL
                break
        self.journal.task(
            tid, status=result, end_time=stamp(self.clock()), is_timeout=int(result == TIMEOUT)
        )
        return result

    def _one_attempt(
        self, instance: Instance, task: Task, tid: str, command: str, attempt: int
    ) -> int:
        assert instance.log_dir is not None
        path = instance.log_dir / f"{tid}.log"
        now = self.clock()
        header = (
            f"{'=' * 73}\nrun  num:\t{attempt}\ninstance:\t{tid}\ncmdline:\t{command}\n"
            f"submitter:\t{instance.do_as}\ncurrent time:\t{java_date(now)}\n"
            f"{'=' * 39}\n"
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, header.encode())
            try:
                proc = subprocess.Popen(
                    argv(command),
                    stdout=fd,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=instance.work_dir,
                    start_new_session=True,
                )
            except OSError as e:
                os.write(fd, f"[gitsync] cannot start the command: {e.strerror or e}\n".encode())
                return FAIL
            instance.pids[task.name] = proc.pid
            self.journal.task(
                tid,
                status=RUNNING,
                run_num=attempt,
                recall_num=attempt - 1,
                start_time=stamp(now),
                cmd=command,
                pid=proc.pid,
            )
            if instance.cancelled.is_set():
                kill_group(proc.pid)
            try:
                code = proc.wait(timeout=task.timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                proc.wait()
                note = f"\n[gitsync] timed out after {task.timeout} s; process group killed\n"
                os.write(fd, note.encode())
                return CANCEL if instance.cancelled.is_set() else TIMEOUT
            finally:
                instance.pids.pop(task.name, None)
            kill_group(proc.pid)  # anything it left running in its group
            if instance.cancelled.is_set():
                os.write(fd, b"\n[gitsync] cancelled; process group killed\n")
                return CANCEL
            if str(code) == task.success_code:
                return SUCCESS
            os.write(
                fd, f"\n[gitsync] exit code {code}; success code is {task.success_code}\n".encode()
            )
            return FAIL
        finally:
            os.close(fd)


def _outcome(future: Future[int]) -> int:
    """A task's status; a crash inside the runner is the platform's fault, not the task's."""
    try:
        return future.result()
    except Exception:
        return INTERNAL_ERROR
