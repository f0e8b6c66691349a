"""Task kinds behind one small protocol: what command line runs a task on this machine.

COMMAND tasks run their command. Other kinds need EnOS (data sources, uploaded resources);
they run only when the file gives them a ``local:`` stand-in, and otherwise fail with a log
line that says so: a task never "succeeds" without running.
"""

from __future__ import annotations

from collections.abc import Callable

from gitsync.model import Task


class CannotRun(Exception):
    """This task cannot run on the bundled engine; the message says why and what to do."""


def _command(task: Task) -> str:
    return task.local if task.local is not None else task.command


def _needs_enos(task: Task) -> str:
    if task.local is not None:
        return task.local
    raise CannotRun(
        f"task type {task.type} needs EnOS (data sources, resources) and cannot run "
        "on the bundled engine; give the task a `local:` command to stand in for it "
        "in local runs"
    )


KINDS: dict[str, Callable[[Task], str]] = {"COMMAND": _command}


def command_line(task: Task) -> str:
    """The command to run for ``task``, or CannotRun."""
    return KINDS.get(task.type, _needs_enos)(task)
