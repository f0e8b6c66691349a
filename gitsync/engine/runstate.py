"""What the runner holds for an instance it runs, guarded by its lock: which tasks wait for
which (the DAG's bookkeeping) and the attempts in flight."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gitsync.engine.spawn import Child
from gitsync.engine.timers import Timer
from gitsync.model import Task, Workflow
from gitsync.statuses import Status


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


@dataclass(eq=False, slots=True)
class Attempt:
    """One process of one task, from before its spawn until its whole group is gone."""

    run: Run
    name: str
    number: int
    proc: Child | None = None  # None while its slot is starting it
    deadline: Timer | None = None  # the task's time-out
    kill_at: float = 0.0  # set when the group got SIGTERM: SIGKILL follows at this time
    timed_out: bool = False
    code: int | None = None  # the leader's exit code, once it exited
    settling: bool = False  # the leader exited; what it left in its group is being killed


@dataclass(eq=False)
class Run:
    """An instance being run."""

    instance: Instance
    tasks: dict[str, Task]
    down: dict[str, list[str]]
    waiting: dict[str, int]  # upstream tasks each task still waits for
    status: dict[str, int] = field(default_factory=dict)  # finished tasks
    attempts: dict[str, Attempt] = field(default_factory=dict)  # starting or running
    retries: dict[str, Timer] = field(default_factory=dict)  # tasks waiting to retry
    queued: set[str] = field(default_factory=set)  # ready, waiting for a free slot
    tids: dict[str, str] = field(default_factory=dict)  # task name -> task instance id
    variables: dict[str, str] = field(default_factory=dict)
    log_dir: str = ""
    work_dir: str = ""
    cancelled: bool = False
    crashed: bool = False

    def busy(self) -> bool:
        return bool(self.attempts or self.retries or self.queued)

    def link(self) -> None:
        """Count each task's upstream tasks in this flow, and list its downstream ones."""
        for task in self.instance.workflow.tasks:
            local = [d.task for d in task.depends_on if d.is_local and d.task in self.tasks]
            self.waiting[task.name] = len(local)
            for up in local:
                self.down[up].append(task.name)

    def release(self, name: str) -> list[str]:
        """``name`` holds its downstream tasks back no more (it succeeded, or is outside the
        run set): those now ready."""
        ready = []
        for child in self.down[name]:
            self.waiting[child] -= 1
            if self.waiting[child] == 0 and child not in self.status:
                ready.append(child)
        return ready

    def skip_downstream(self, name: str) -> list[str]:
        """Mark SKIP every unfinished task downstream of ``name``; those marked, in order."""
        skipped = []
        stack = list(self.down[name])
        while stack:
            child = stack.pop()
            if child in self.status:
                continue
            self.status[child] = Status.SKIP
            skipped.append(child)
            stack.extend(self.down[child])
        return skipped

    def outcome(self) -> Status:
        """The instance's status once no task of it is busy."""
        if self.crashed:
            return Status.INTERNAL_ERROR
        if self.cancelled:
            return Status.CANCEL
        if any(Status(s).failed for s in self.status.values()):
            return Status.FAIL
        return Status.SUCCESS
