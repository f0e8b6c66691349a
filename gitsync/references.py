"""References between workflows (``depends_on: [{flow: X}]`` or ``[{flow: X, task: t}]``) that
point nowhere. The service refuses them only at apply (62102, part-way through); found here,
they are problems with the reference's place in its file, before anything is sent.

Two callers know enough to decide: validate, from the files alone (a task of a workflow that
is in the files but has no such task), and plan, from the files and what the target holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from gitsync.files import WORKFLOW_SUFFIXES, ReadError, read_document
from gitsync.model import Dependency, Workflow
from gitsync.schema_check import hint


@dataclass(frozen=True)
class Dangling:
    """One reference that points nowhere: the ``dependency``-th upstream of the workflow's
    ``task``-th task (indexes into the model, which keeps the file's order)."""

    workflow: Workflow
    task: int
    dependency: int
    message: str

    @property
    def upstream(self) -> Dependency:
        return self.workflow.tasks[self.task].depends_on[self.dependency]


def _references(workflows: Iterable[Workflow]) -> Iterator[tuple[Workflow, int, int, Dependency]]:
    for wf in workflows:
        for i, task in enumerate(wf.tasks):
            for j, dep in enumerate(task.depends_on):
                if dep.flow:
                    yield wf, i, j, dep


def find(
    workflows: Iterable[Workflow], tasks_of: Mapping[str, frozenset[str] | None]
) -> list[Dangling]:
    """References to a workflow missing from ``tasks_of`` (every workflow known, by name, with
    its task names, or None where they were not read), or to a task it does not have."""
    found = []
    for wf, i, j, dep in _references(workflows):
        task = wf.tasks[i].name
        if dep.flow not in tasks_of:
            message = (
                f"task '{task}' depends on workflow '{dep.flow}', which is neither in the "
                f"files nor on the target{hint(dep.flow, tasks_of)}"
            )
        else:
            names = tasks_of[dep.flow]
            if not dep.task or names is None or dep.task in names:
                continue
            message = (
                f"task '{task}' depends on task '{dep.task}' of workflow '{dep.flow}', "
                f"which has no such task{hint(dep.task, names)}"
            )
        found.append(Dangling(wf, i, j, message))
    return found


def in_files(workflows: Iterable[Workflow]) -> list[Dangling]:
    """What the files alone decide: task references to a workflow of the files that lacks the
    task (a workflow that is not in the files may be on the target)."""
    listed = list(workflows)
    tasks_of = {w.name: frozenset(t.name for t in w.tasks) for w in listed}
    return [d for d in find(listed, tasks_of) if d.upstream.flow in tasks_of]


def file_of(flows: Path, wf: Workflow) -> Path:
    """The file that defines ``wf`` under the flows folder (``.yaml`` unless a ``.yml`` is
    there instead)."""
    base = flows.joinpath(*wf.directory)
    for suffix in WORKFLOW_SUFFIXES:
        candidate = base / f"{wf.name}{suffix}"
        if candidate.is_file():
            return candidate
    return base / f"{wf.name}{WORKFLOW_SUFFIXES[0]}"


def position(path: Path, dangling: Dangling) -> tuple[int, int]:
    """Line and column of the reference in its file, read again (only when there is a problem
    to show). The model sorts a task's upstreams, so the entry is found by what it says."""
    try:
        doc, _ = read_document(path)
    except (ReadError, OSError):
        return (1, 1)
    where: tuple[str | int, ...] = ("tasks", dangling.task, "depends_on")
    up = dangling.upstream
    tasks = doc.data.get("tasks") if isinstance(doc.data, dict) else None
    task = tasks[dangling.task] if isinstance(tasks, list) and dangling.task < len(tasks) else {}
    entries = task.get("depends_on") if isinstance(task, dict) else None
    for j, entry in enumerate(entries if isinstance(entries, list) else []):
        if isinstance(entry, dict) and (entry.get("flow"), entry.get("task") or "") == (
            up.flow,
            up.task,
        ):
            return doc.locate((*where, j))
    return doc.locate(where)
