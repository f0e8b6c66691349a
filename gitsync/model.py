"""The one model of a workflow. Frozen values: both sides of a plan are built from these.

Enumerations use the file format's words (``day``, ``email``); only ``codec`` knows the
service's codes for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_START = "1970-01-01"


@dataclass(frozen=True)
class RunMode:
    """Container settings of a task (the service's RunMode struct)."""

    mode: str = "single"
    cpu: float = 0.5
    memory: float = 1.0
    max_parallel: int = 0
    key_type: str = "none"
    datasource_id: int = 0
    path: str = ""
    content: str = ""


@dataclass(frozen=True)
class Dependency:
    """One upstream of a task: a task of this flow, another workflow, or a task of another.

    ``flow`` empty: ``task`` is a task of the same workflow (a service Relation).
    ``flow`` set, ``task`` empty: the whole upstream workflow (a FlowLink).
    Both set: one task of the upstream workflow (a TaskLink).
    """

    task: str = ""
    flow: str = ""
    rerun: bool = True

    @property
    def is_local(self) -> bool:
        return not self.flow

    def label(self) -> str:
        if self.is_local:
            return self.task
        return f"{self.flow}.{self.task}" if self.task else f"{self.flow} (workflow)"


@dataclass(frozen=True)
class Task:
    name: str
    type: str = "COMMAND"
    command: str = ""
    resource: str = "default"
    depends_on: tuple[Dependency, ...] = ()
    timeout: int = 300
    retries: int = 3
    retry_interval: int = 0
    success_code: str = "0"
    priority: int = 0
    cron: str = ""
    allow_reference: bool = False
    file_package: str = ""
    sync_type: str = "data"
    wait_code: str = ""
    run_mode: RunMode = field(default_factory=RunMode)
    local: str | None = None


@dataclass(frozen=True)
class Schedule:
    type: str = "manual"
    cycle: str = "day"
    cron: str = ""
    start: str = DEFAULT_START
    enabled: bool = False


@dataclass(frozen=True)
class Workflow:
    name: str
    directory: tuple[str, ...] = ()
    description: str = ""
    owners: tuple[str, ...] = ()
    visitors: tuple[str, ...] = ()
    alert: str = "email"
    parameters: tuple[tuple[str, str], ...] = ()
    sync_type: str = "data"
    schedule: Schedule = field(default_factory=Schedule)
    tasks: tuple[Task, ...] = ()
    # the file's ``renamed_from``: what the workflow was called before; never sent, and not
    # part of the comparison with the remote
    renamed_from: str = field(default="", compare=False)

    @property
    def path(self) -> tuple[str, ...]:
        """Directory path plus name: the workflow's identity in a tree."""
        return (*self.directory, self.name)

    def task(self, name: str) -> Task | None:
        for t in self.tasks:  # a loop, not next() over a generator: plans call this a lot
            if t.name == name:
                return t
        return None


@dataclass(frozen=True)
class Tree:
    """A set of workflows and the directories that hold them, relative to a root."""

    workflows: tuple[Workflow, ...] = ()
    directories: frozenset[tuple[str, ...]] = frozenset()

    @staticmethod
    def of(workflows: list[Workflow], extra_dirs: set[tuple[str, ...]] | None = None) -> Tree:
        dirs: set[tuple[str, ...]] = set(extra_dirs or ())
        for w in workflows:
            for i in range(1, len(w.directory) + 1):
                dirs.add(w.directory[:i])
        ordered = tuple(sorted(workflows, key=lambda w: w.path))
        return Tree(workflows=ordered, directories=frozenset(dirs))
