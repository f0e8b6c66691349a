"""Task logs: one file per task instance, beside the store, so a log survives a crash as far
as it was written. The task's output is appended to it, and the engine's own lines: a header
per attempt and ``[gitsync]`` notes on how it ended."""

from __future__ import annotations

from pathlib import Path

_RULE, _SHORT_RULE = "=" * 73 + "\n", "=" * 39 + "\n"  # around an attempt's header


def header(number: int, tid: str, command: str, submitter: str, now: str) -> bytes:
    """What the service writes at the top of each attempt."""
    return (
        f"{_RULE}run  num:\t{number}\ninstance:\t{tid}\ncmdline:\t{command}\n"
        f"submitter:\t{submitter}\ncurrent time:\t{now}\n{_SHORT_RULE}"
    ).encode()


class TaskLogs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, instance_id: str, task_instance_id: str) -> Path:
        return self.root / instance_id / f"{task_instance_id}.log"

    def append(self, instance_id: str, task_instance_id: str, text: str) -> None:
        path = self.path(instance_id, task_instance_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(text)
