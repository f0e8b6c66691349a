"""How the instances a runner runs progress, decided under its one lock.

A task starts once all its upstream tasks succeeded; tasks downstream of a failure are not run
and end SKIP. A failed or timed-out attempt is retried after its interval while retries are
left. A time-out or a cancel SIGTERMs the attempt's process group and SIGKILLs it after a
grace. A bug in this bookkeeping ends its instance INTERNAL_ERROR, never a thread of the runner.
The lock is held only for bookkeeping, never across a spawn or a wait (``slots.py``;
``benchmarks/engine.py`` measures it).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitsync.engine.clock import Clock
from gitsync.engine.journal import Journal
from gitsync.engine.process_groups import KILL_GRACE, signal_group
from gitsync.engine.runstate import Attempt, Instance, Run
from gitsync.engine.tasklogs import TaskLogs
from gitsync.engine.timers import Timer, Timers
from gitsync.engine.variables import system_variables
from gitsync.statuses import Status


class Progress:
    def __init__(
        self,
        journal: Journal,
        clock: Clock,
        logs: TaskLogs,
        work_dir: Path,
        on_end: Callable[[int], None],  # a flow's instance ended: the flow is free
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.logs = logs
        self.work_dir = work_dir
        self._on_end = on_end
        self.lock = threading.Lock()
        self.has_work = threading.Condition(self.lock)  # a task became ready, or closing
        self.ended = threading.Condition(self.lock)  # an instance ended
        self.timers = Timers(self.lock)
        # the run state, under the lock
        self.runs: dict[int, Run] = {}  # flow id -> its running instance
        self._ready: deque[tuple[Run, str, int]] = deque()  # (run, task, attempt number)
        self.closed = False

    def after(self, delay: float, callback: Callable[[], None], run: Run | None = None) -> Timer:
        """A timer; a bug in the callback of a run's timer ends that run, not the thread."""
        if run is not None:
            callback = functools.partial(self.guard, run, callback)
        return self.timers.after(delay, callback)

    def guard(self, run: Run, function: Callable[..., None], *args: Any) -> None:
        """A bug must not stop a thread of the runner nor leave an instance RUNNING forever."""
        try:
            function(*args)
        except Exception as e:
            self.crashed(run, e)

    def crashed(self, run: Run, error: Exception) -> None:
        instance = run.instance
        with contextlib.suppress(OSError):
            self.logs.append(instance.id, "engine", f"[gitsync] internal error: {error!r}\n")
        if self.runs.get(instance.flow_id) is not run:
            return  # it ended already
        run.crashed = run.cancelled = True
        for attempt in list(run.attempts.values()):
            if attempt.proc is None:
                continue  # its slot is starting it: it sees the run cancelled
            if attempt.code is None:
                self.terminate(attempt)
            elif not attempt.settling:  # its own ending failed: the task ends with the bug
                del run.attempts[attempt.name]
                run.status[attempt.name] = Status.INTERNAL_ERROR
                self.journal.task(
                    run.tids[attempt.name],
                    status=Status.INTERNAL_ERROR,
                    end_time=self.clock.stamp(),
                )
        for timer in run.retries.values():
            self.timers.drop(timer)
        run.retries.clear()
        run.queued.clear()
        if not run.attempts:
            self._end(run, Status.INTERNAL_ERROR)

    # -- starting ------------------------------------------------------------------------------

    def start(self, instance: Instance) -> None:
        """Run an instance of a flow that runs none now."""
        tasks = {t.name: t for t in instance.workflow.tasks}
        run = Run(instance, tasks, {name: [] for name in tasks}, {})
        self.runs[instance.flow_id] = run
        try:
            self._begin(run)
        except Exception as e:
            self.crashed(run, e)

    def _begin(self, run: Run) -> None:
        instance = run.instance
        run.variables = system_variables(instance.trigger)
        log_dir, work_dir = self.logs.root / instance.id, self.work_dir / instance.id
        log_dir.mkdir(parents=True, exist_ok=True)
        work_dir.mkdir(parents=True, exist_ok=True)
        run.log_dir, run.work_dir = str(log_dir), str(work_dir)
        run.tids = {name: instance.task_instance_id(name) for name in run.tasks}
        self.journal.instance(instance.id, status=Status.RUNNING, start_time=self.clock.stamp())
        run.link()
        if instance.run_set is not None:
            outside = [name for name in run.tasks if name not in instance.run_set]
            for name in outside:
                run.status[name] = Status.SKIP
                self.journal.task(run.tids[name], status=Status.SKIP)
            for name in outside:
                run.release(name)  # the loop below queues what is ready, in task order
        for name in run.tasks:
            if name not in run.status and run.waiting[name] == 0:
                self._queue(run, name, 1)
        self._maybe_end(run)

    def _queue(self, run: Run, name: str, number: int) -> None:
        run.queued.add(name)
        self._ready.append((run, name, number))
        self.has_work.notify()

    def take(self) -> tuple[Run, str, int] | None:
        """The next ready task and its attempt number, once there is one; None once closed."""
        while True:
            while not self._ready:
                if self.closed:
                    return None
                self.has_work.wait()
            run, name, number = self._ready.popleft()
            run.queued.discard(name)
            if not run.cancelled:
                return run, name, number
            self._maybe_end(run)

    # -- attempts ------------------------------------------------------------------------------

    def time_out(self, attempt: Attempt) -> None:
        if attempt.code is None:
            attempt.timed_out = True
            self.terminate(attempt)

    def terminate(self, attempt: Attempt) -> None:
        """SIGTERM the attempt's group; SIGKILL it after the grace if it is still there."""
        if attempt.kill_at or attempt.proc is None:
            return
        attempt.kill_at = time.monotonic() + KILL_GRACE
        signal_group(attempt.proc.pid, signal.SIGTERM)
        self.after(KILL_GRACE, lambda: self._kill_leader(attempt), attempt.run)

    def _kill_leader(self, attempt: Attempt) -> None:
        if attempt.code is None and attempt.proc is not None:  # still running: still ours
            signal_group(attempt.proc.pid, signal.SIGKILL)

    def attempt_ended(self, run: Run, name: str, number: int, result: int) -> None:
        task = run.tasks[name]
        if result in (Status.FAIL, Status.TIMEOUT) and number <= task.retries and not run.cancelled:
            tid = run.tids[name]
            self.logs.append(
                run.instance.id,
                tid,
                f"[gitsync] retry {number} of {task.retries} in {task.retry_interval} s\n",
            )

            def retry() -> None:
                del run.retries[name]
                self._queue(run, name, number + 1)

            run.retries[name] = self.after(task.retry_interval, retry, run)
            return
        self._finish_task(run, name, result)

    # -- the DAG -------------------------------------------------------------------------------

    def _finish_task(self, run: Run, name: str, result: int) -> None:
        self.journal.task(
            run.tids[name],
            status=result,
            end_time=self.clock.stamp(),
            is_timeout=int(result == Status.TIMEOUT),
        )
        self.task_done(run, name, result)

    def task_done(self, run: Run, name: str, result: int) -> None:
        run.status[name] = result
        if result == Status.SUCCESS:
            if not run.cancelled:
                for child in run.release(name):
                    self._queue(run, child, 1)
        elif result != Status.CANCEL:  # cancelled: the rest ends CANCEL when the run ends
            for child in run.skip_downstream(name):
                self.journal.task(run.tids[child], status=Status.SKIP)
        self._maybe_end(run)

    def _maybe_end(self, run: Run) -> None:
        if run.busy() or self.runs.get(run.instance.flow_id) is not run:
            return
        self._end(run, run.outcome())

    def _end(self, run: Run, final: int) -> None:
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
        del self.runs[instance.flow_id]
        self._on_end(instance.flow_id)
        self.ended.notify_all()

    def cancel(self, run: Run) -> None:
        run.cancelled = True
        for attempt in list(run.attempts.values()):
            self.terminate(attempt)
        for name, timer in list(run.retries.items()):
            self.timers.drop(timer)
            del run.retries[name]
            self._finish_task(run, name, Status.CANCEL)
        run.queued.clear()
        self._maybe_end(run)
