"""Runs flow instances: a DAG of tasks as processes, with parallelism, timeouts, retries,
logs and cancel.

Each attempt is a subprocess in its own process group, with stdout and stderr appended to the
task's log file. At most ``parallelism`` tasks run at once across all instances; one instance
of a workflow runs at a time and later ones wait (SPEC §4.4).

The parts: ``parallelism`` slot threads start and wait for the processes (``slots.py``); one
timer thread keeps time-outs, retry intervals, delayed triggers and kill graces
(``timers.py``); what happens next is decided under one lock (``progress.py``) on the state in
``runstate.py``. This module holds what other threads call, which instance runs when, and
crash recovery.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path

from gitsync.engine import leftovers
from gitsync.engine.clock import Clock
from gitsync.engine.journal import Journal
from gitsync.engine.process_groups import KILL_GRACE, SETTLE_LIMIT
from gitsync.engine.progress import Progress
from gitsync.engine.runstate import Instance
from gitsync.engine.slots import Slots
from gitsync.engine.store import Store
from gitsync.engine.tasklogs import TaskLogs
from gitsync.engine.timers import Timer
from gitsync.statuses import Status


class Runner:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        parallelism: int | None = None,
    ) -> None:
        self.store = store
        self.data_dir = str(data_dir.resolve())  # in every task's environment: its engine
        self.clock = Clock()
        self.parallelism = parallelism or os.cpu_count() or 2
        self.journal = Journal(store)
        self.logs = TaskLogs(data_dir.absolute() / "logs")
        self._progress = progress = Progress(
            self.journal, self.clock, self.logs, data_dir.absolute() / "work", self._next_of
        )
        # which instance runs when, under the progress lock
        self._waiting: dict[int, deque[Instance]] = {}  # flow id -> instances queued behind it
        self._delayed: dict[str, tuple[Instance, Timer]] = {}  # future trigger times
        self._stopped = False
        self._slots = Slots(progress, self.data_dir)
        self._threads = [
            threading.Thread(target=self._slots.serve, name=f"gitsync-slot-{i}", daemon=True)
            for i in range(self.parallelism)
        ]
        self._threads.append(
            threading.Thread(
                target=progress.timers.keep,
                args=(lambda: progress.closed and not progress.runs,),
                name="gitsync-timers",
                daemon=True,
            )
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
                    self.logs.append(
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
        progress = self._progress
        with progress.lock:
            progress.closed = True
            for _, timer in self._delayed.values():
                progress.timers.drop(timer)
            self._delayed.clear()
            for run in list(progress.runs.values()):
                progress.cancel(run)
            progress.has_work.notify_all()
            progress.timers.wake()
            progress.ended.notify_all()
        deadline = time.monotonic() + KILL_GRACE + SETTLE_LIMIT + 5
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.journal.close()
        self._slots.close()

    # -- what other threads call ---------------------------------------------------------------

    def submit(self, instance: Instance) -> None:
        """Run now, or WAIT for the trigger time or for the flow's running instance. Returns
        once the instance's first status is in the journal."""
        with self._progress.lock:
            delay = (instance.trigger_ms / 1000) - time.time()
            if delay > 0:
                self.journal.instance(instance.id, status=Status.WAIT)
                timer = self._progress.after(delay, lambda: self._admit(instance))
                self._delayed[instance.id] = (instance, timer)
                return
            self._admit(instance)

    def cancel(self, instance_id: str) -> bool:
        """Cancel a waiting or running instance; False if the runner does not hold it."""
        with self._progress.lock:
            held = self._cancel(instance_id)
        self.journal.flush()
        return held

    def wait(self, instance_id: str, timeout: float) -> bool:
        """Wait until the runner no longer holds an instance and its end is stored; False on
        time-out. For callers in the engine's process (a benchmark): it costs them nothing,
        where asking over HTTP costs both sides CPU and rounds the end up to the next ask."""
        deadline = time.monotonic() + timeout
        with self._progress.lock:
            while self._holds(instance_id):
                left = deadline - time.monotonic()
                if left <= 0 or not self._progress.ended.wait(left):
                    return False
        self.journal.flush()
        return True

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
        return self.logs.path(instance_id, task_instance_id)

    # -- which instance runs when (under the lock) ---------------------------------------------

    def _holds(self, instance_id: str) -> bool:
        return (
            instance_id in self._delayed
            or any(r.instance.id == instance_id for r in self._progress.runs.values())
            or any(i.id == instance_id for q in self._waiting.values() for i in q)
        )

    def _admit(self, instance: Instance) -> None:
        self._delayed.pop(instance.id, None)
        if self._progress.closed:
            return
        if instance.flow_id in self._progress.runs:
            self._waiting.setdefault(instance.flow_id, deque()).append(instance)
            self.journal.instance(instance.id, status=Status.WAIT)
            return
        self._progress.start(instance)

    def _next_of(self, flow_id: int) -> None:
        """The flow's instance ended: the next one waiting for it starts."""
        following = self._waiting.get(flow_id)
        if following:
            self._admit(following.popleft())

    def _cancel(self, instance_id: str) -> bool:
        delayed = self._delayed.pop(instance_id, None)
        if delayed is not None:
            self._progress.timers.drop(delayed[1])
            self._cancel_unstarted(delayed[0])
            return True
        for queue in self._waiting.values():
            waiting = next((i for i in queue if i.id == instance_id), None)
            if waiting is not None:
                queue.remove(waiting)
                self._cancel_unstarted(waiting)
                return True
        progress = self._progress
        run = next((r for r in progress.runs.values() if r.instance.id == instance_id), None)
        if run is None:
            return False
        progress.cancel(run)
        return True

    def _cancel_unstarted(self, instance: Instance) -> None:
        for name in instance.task_ids:
            self.journal.task(instance.task_instance_id(name), status=Status.CANCEL)
        self.journal.instance(
            instance.id, status=Status.CANCEL, cancelled=1, end_time=self.clock.stamp()
        )
        self._progress.ended.notify_all()
