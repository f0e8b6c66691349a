"""The runner's slot threads: each takes a ready task and runs its process, one at a time.

A slot starts the process, waits for it, and records how it ended. Starting (a vfork that
waits for the child's exec) and waiting both release the GIL, so one slot's bookkeeping
overlaps the other slots' processes and nothing hands a task from thread to thread. The
attempt's output and the engine's notes are appended to the task's log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

from gitsync.engine import leftovers
from gitsync.engine.process_groups import KILL_GRACE, empty_group, signal_group
from gitsync.engine.progress import Progress
from gitsync.engine.runstate import Attempt, Run
from gitsync.engine.spawn import ENGINE_VARIABLE, Launcher
from gitsync.engine.tasklogs import header
from gitsync.engine.tasks import CannotRun, argv, command_line
from gitsync.engine.variables import substitute
from gitsync.model import Task
from gitsync.statuses import Status


@dataclass(frozen=True, slots=True)
class _Job:
    """What a slot needs to start an attempt, worked out under the lock."""

    attempt: Attempt
    tid: str
    command: str
    header: bytes
    log: str


class Slots:
    def __init__(self, progress: Progress, data_dir: str) -> None:
        self.progress = progress
        self.data_dir = data_dir  # in every task's environment: its engine
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        """Once every slot thread has returned."""
        os.close(self._devnull)

    def serve(self) -> None:
        """A slot thread: take ready tasks and run them until the runner closes."""
        launcher = Launcher({ENGINE_VARIABLE: self.data_dir})
        while True:
            with self.progress.lock:
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
                with self.progress.lock:
                    attempt.run.attempts.pop(attempt.name, None)
                    self.progress.crashed(attempt.run, e)

    def _next_job(self) -> _Job | None:
        while True:
            taken = self.progress.take()
            if taken is None:
                return None
            run, name, number = taken
            try:
                job = self._prepare(run, name, number)
            except Exception as e:
                self.progress.crashed(run, e)
                continue
            if job is not None:
                return job

    def _command(self, run: Run, task: Task) -> str:
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

    def _prepare(self, run: Run, name: str, number: int) -> _Job | None:
        progress = self.progress
        instance, task, tid = run.instance, run.tasks[name], run.tids[name]
        try:
            command = self._command(run, task)
        except CannotRun as e:
            progress.logs.append(instance.id, tid, f"[gitsync] {e}\n")
            at = progress.clock.stamp()
            progress.journal.task(tid, status=Status.FAIL, start_time=at, end_time=at, run_num=1)
            progress.task_done(run, name, Status.FAIL)
            return None
        attempt = Attempt(run, name, number)
        run.attempts[name] = attempt  # the run is busy while its slot starts it
        top = header(number, tid, command, instance.do_as, progress.clock.java())
        return _Job(attempt, tid, command, top, f"{run.log_dir}/{tid}.log")

    def _run_attempt(self, launcher: Launcher, job: _Job) -> None:
        progress = self.progress
        attempt = job.attempt
        run, name, number = attempt.run, attempt.name, attempt.number
        started = progress.clock.stamp()
        fd = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, job.header)
            before = leftovers.clock()
            try:
                child = launcher.start(argv(job.command), run.work_dir, fd, self._devnull, job.tid)
            except OSError as e:
                os.write(fd, f"[gitsync] cannot start the command: {e.strerror or e}\n".encode())
                with progress.lock:
                    run.attempts.pop(name, None)
                    progress.journal.task(
                        job.tid, status=Status.RUNNING, run_num=number, start_time=started
                    )
                    progress.guard(run, progress.attempt_ended, run, name, number, Status.FAIL)
                return
            with progress.lock:
                attempt.proc = child  # from here on a failure kills it
                progress.journal.task(
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
                    attempt.deadline = progress.after(
                        task.timeout, lambda: progress.time_out(attempt), run
                    )
                if run.cancelled:
                    progress.terminate(attempt)
            code = child.wait()
            stragglers = signal_group(child.pid, signal.SIGTERM)  # what it left in its group
            with progress.lock:
                attempt.code = code
                if attempt.deadline is not None:
                    progress.timers.drop(attempt.deadline)
                if not stragglers:  # the usual case: the group went with its leader
                    progress.guard(run, self._settled, attempt, fd)
                    return
                attempt.settling = True
                if not attempt.kill_at:
                    attempt.kill_at = time.monotonic() + KILL_GRACE
            empty_group(child.pid, attempt.kill_at)
            with progress.lock:
                attempt.settling = False
                progress.guard(run, self._settled, attempt, fd)
        finally:
            os.close(fd)

    def _settled(self, attempt: Attempt, fd: int) -> None:
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
        self.progress.attempt_ended(run, name, attempt.number, result)
