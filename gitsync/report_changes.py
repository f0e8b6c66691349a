"""One change of a plan, in full: the body that the text and Markdown plans show under its
heading (a changed multi-line string as a unified diff, a new workflow whole, what a retire or
delete keeps and loses) and its JSON (format 2, schemas/plan.schema.json). No I/O; the lines
are not yet escaped (the caller escapes for its medium)."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from gitsync.changes import Kind

if TYPE_CHECKING:
    from gitsync.plan_types import Change, FieldChange

LONG = 60  # a string longer than this (or of several lines) is shown as a unified diff
CONTEXT = 2  # unchanged lines shown around each changed one
INDENT = "  "


def show(value: Any) -> str:
    """A short value as the plan's one-line changes show it (JSON: quotes make "" visible)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _long(value: Any) -> bool:
    return isinstance(value, str) and ("\n" in value or len(value) > LONG)


NO_NEWLINE = "\\ No newline at end of file"
SPACE, TAB = "·", "→"  # trailing spaces and tabs of a changed line, made visible


def unified(before: str | None, after: str | None) -> list[str]:
    """``before`` -> ``after`` as unified-diff lines (hunk headers, ``-old``, ``+new`` and
    context), without the file headers. A changed line's trailing spaces and tabs show as
    ``·`` and ``→``; where only one side ends with a line break, the other side's last line
    is followed by ``\\ No newline at end of file``, as diff writes it."""
    old, new = _lines(before), _lines(after)
    if not _ends(old) and not _ends(new):  # neither ends with a break: nothing to say
        old, new = _ended(old), _ended(new)
    out = []
    for i, line in enumerate(difflib.unified_diff(old, new, lineterm="", n=CONTEXT)):
        if i < 2:  # past "---" and "+++"
            continue
        if line.startswith("@@"):
            out.append(line.rstrip("\n"))
            continue
        text = line.removesuffix("\n")
        out.append(_visible(text) if line[:1] in "+-" else text)
        if not line.endswith("\n"):
            out.append(NO_NEWLINE)
    return out


def _lines(text: str | None) -> list[str]:
    """``text``'s lines, each with its line break (the last has none when the text ends
    without one)."""
    if not text:
        return []
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _ended(lines: list[str]) -> list[str]:
    return [*lines[:-1], lines[-1] + "\n"] if lines else lines


def _ends(lines: list[str]) -> bool:
    return not lines or lines[-1].endswith("\n")


def _visible(line: str) -> str:
    """A ``-``/``+`` line with its trailing spaces and tabs shown."""
    body = line.rstrip(" \t")
    tail = line[len(body) :]
    return body + tail.replace(" ", SPACE).replace("\t", TAB)


def has_body(change: Change) -> bool:
    """Whether ``body`` has lines for it, without making them."""
    whole = change.kind == Kind.CREATE_FLOW and change.desired is not None
    return bool(change.lines) or whole or change.kind in (Kind.RETIRE, Kind.DELETE_FLOW)


def body(change: Change) -> list[str]:
    """The lines under a change's heading in the text and Markdown plans."""
    created = change.created()
    if created is not None:
        return [*change.lines, *workflow_lines(created)]
    rich = {f.path: f for f in change.fields if _long(f.before) or _long(f.after)}
    tasks = {f.path: f for f in change.fields if isinstance(f.before or f.after, Mapping)}
    renamed = _renamed_tasks(tasks)
    out: list[str] = []
    for line in change.lines:
        if line in renamed:  # a task removed and one added with the same body: a rename
            out.extend([renamed[line]] if renamed[line] else [])
            continue
        field = _rich_field(line, rich)
        if field is not None:
            out.extend(_diff_block(field))
            continue
        out.append(line)
        if line.startswith(("task added: ", "task removed: ")):
            task = tasks.get(f"tasks[{line.partition(': ')[2]}]")
            document = task and (task.after or task.before)
            if isinstance(document, Mapping):
                out.extend(INDENT + t for t in _task_lines(document))
    return [*out, *_kept_and_lost(change)]


def _renamed_tasks(tasks: Mapping[str, FieldChange]) -> dict[str, str]:
    """The lines of each task removed and added again under another name with the same
    body: the first becomes ``task renamed: old -> new``, the other goes (an empty string)."""
    gone = {f.path[6:-1]: f.before for f in tasks.values() if f.after is None}
    new = {f.path[6:-1]: f.after for f in tasks.values() if f.before is None}
    out: dict[str, str] = {}
    for old, before in gone.items():
        body = _without_name(before)
        match = next((n for n, a in new.items() if _without_name(a) == body), None)
        if match is None:
            continue
        del new[match]
        out[f"task removed: {old}"] = f"task renamed: {old} -> {match}"
        out[f"task added: {match}"] = ""
    return out


def _without_name(task: Any) -> Any:
    return {k: v for k, v in task.items() if k != "name"} if isinstance(task, Mapping) else task


def _rich_field(line: str, rich: Mapping[str, FieldChange]) -> FieldChange | None:
    for path, field in rich.items():
        if line.startswith(path + ": "):
            return field
    return None


def _diff_block(field: FieldChange) -> list[str]:
    before = field.before if isinstance(field.before, str) else None
    after = field.after if isinstance(field.after, str) else None
    lines = unified(before, after)
    if not lines:  # only line breaks (or an end-of-text one) differ: say it exactly
        return [f"{field.path}: {show(field.before)} -> {show(field.after)}"]
    word = "added" if field.before is None else "removed" if field.after is None else "changed"
    return [f"{field.path}: {word}", *(INDENT + line for line in lines)]


def _kept_and_lost(change: Change) -> list[str]:
    """What a retire keeps and a delete loses: a reviewer approves these knowing it."""
    tasks = ", ".join(t.name for t in change.current.tasks) if change.current else ""
    if change.kind == Kind.RETIRE:
        return [
            f"kept, paused, in the retired copy: its tasks ({tasks or 'none'}) and its run "
            "history, until the retention ends"
        ]
    if change.kind == Kind.DELETE_FLOW:
        what = f" (tasks {tasks})" if tasks else ""
        return [f"lost: the retired copy{what}, its runs and their logs"]
    return []


# -- a whole workflow, as its file writes it ---------------------------------------------


def workflow_lines(document: Mapping[str, Any]) -> list[str]:
    """A new workflow whole: its settings, schedule, each task with its command and
    settings, then its edges."""
    out: list[str] = []
    for key, value in document.items():
        if key == "tasks" and isinstance(value, list):
            for task in value:
                out.extend(_task_lines(task) if isinstance(task, Mapping) else [show(task)])
        else:
            out.extend(_entry(str(key), value))
    edges = list(_edges(document.get("tasks")))
    out.append("edges: " + (", ".join(edges) if edges else "none"))
    return out


def _task_lines(task: Mapping[str, Any]) -> list[str]:
    out = [f"task {task.get('name', '')}:"]
    for key, value in task.items():
        if key != "name":
            out.extend(INDENT + line for line in _entry(str(key), value))
    return out


def _entry(key: str, value: Any) -> list[str]:
    if isinstance(value, str) and "\n" in value:  # a block, as YAML's "|" (one final break)
        text = str(value)
        block = "|" if text.endswith("\n") else "|-"
        lines = text.removesuffix("\n").split("\n")
        return [f"{key}: {block}", *(INDENT + line for line in lines)]
    if isinstance(value, Mapping):
        return [f"{key}:", *(INDENT + e for k, v in value.items() for e in _entry(str(k), v))]
    if isinstance(value, list):
        return [f"{key}: {', '.join(_dependency(v) for v in value)}"]
    plain = isinstance(value, str) and value and value.strip() == value
    return [f"{key}: {value if plain else show(value)}"]  # quoted where it would not show


def _dependency(item: Any) -> str:
    """One depends_on item (or an owner) as written: a task, or a reference to a workflow."""
    if not isinstance(item, Mapping):
        return str(item)
    flow, task = item.get("flow"), item.get("task")
    where = f"{flow}.{task}" if flow and task else f"workflow {flow}" if flow else str(task)
    return where + (f" (rerun: {str(item['rerun']).lower()})" if "rerun" in item else "")


def _edges(tasks: Any) -> Iterator[str]:
    if not isinstance(tasks, list):
        return
    for task in tasks:
        if isinstance(task, Mapping):
            for up in task.get("depends_on", ()):
                yield f"{_dependency(up)} -> {task.get('name', '')}"


# -- JSON (format 2) ---------------------------------------------------------------------


def change_json(change: Change) -> dict[str, Any]:
    """One change for machines: schemas/plan.schema.json, documented in
    docs/plan-format.md."""
    is_dir = change.kind == Kind.CREATE_DIR
    out: dict[str, Any] = {
        "action": str(change.kind),
        "workflow": None if is_dir else change.path[-1],
        "directory": list(change.path if is_dir else change.path[:-1]),
        "fields": [
            {"path": f.path, "before": _safe(f.before), "after": _safe(f.after)}
            for f in change.fields
        ],
        "lines": list(change.lines),
        "note": change.note,
    }
    if change.reason:
        out["reason"] = change.reason
    created = change.created()
    if created is not None:
        out["details"] = _safe(created)
    if change.renamed_from:
        out["renamed_from"] = change.renamed_from
    if change.blocked:
        out["blocked"] = change.blocked
    return out


def _safe(value: Any) -> Any:
    """``value`` as strict JSON holds it: a float that is not finite (``.nan`` in a file)
    as its text, since JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value
