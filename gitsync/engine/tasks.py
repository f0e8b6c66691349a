"""Task kinds behind one small protocol: what command line runs a task on this machine.

COMMAND tasks run their command. Other kinds need EnOS (data sources, uploaded resources);
they run only when the file gives them a ``local:`` stand-in, and otherwise fail with a log
line that says so: a task never "succeeds" without running. A command line runs without a
shell when it needs none (``argv``).
"""

from __future__ import annotations

import functools
import shlex
import shutil
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
