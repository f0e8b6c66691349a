"""A workflow's DAG as SVG for the dashboard, task nodes given CSS classes (their states).

A stand-in until `gitsync graph --format svg` (graph_svg.py) lands: tasks in columns by
their depth, in file order within a column. Every name is escaped: names are untrusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from gitsync.model import Workflow

_CHAR, _HEIGHT, _GAP_X, _GAP_Y, _PAD = 7.2, 32, 48, 16, 12


def _depths(workflow: Workflow) -> dict[str, int]:
    """Each task's column: one more than its deepest local upstream (a cycle stops growing
    after as many rounds as there are tasks, so a bad graph still draws)."""
    names = {t.name for t in workflow.tasks}
    ups = {
        t.name: [d.task for d in t.depends_on if d.is_local and d.task in names]
        for t in workflow.tasks
    }
    depth = dict.fromkeys(names, 0)
    for _ in range(len(names)):
        changed = False
        for name, parents in ups.items():
            want = max((depth[p] + 1 for p in parents), default=0)
            if want > depth[name] and want < len(names):
                depth[name], changed = want, True
        if not changed:
            break
    return depth


def dag_svg(workflow: Workflow, classes: Mapping[str, str] | None = None) -> str:
    """The DAG as an ``<svg>`` element; ``classes`` maps a task name to its node's class."""
    classes = classes or {}
    depth = _depths(workflow)
    columns: dict[int, list[str]] = {}
    for task in workflow.tasks:
        columns.setdefault(depth[task.name], []).append(task.name)
    width = {c: max(len(n) for n in names) * _CHAR + 2 * _PAD for c, names in columns.items()}
    where: dict[str, tuple[float, float, float]] = {}  # name -> x, y, box width
    x: float = _PAD
    for column in sorted(columns):
        for row, name in enumerate(columns[column]):
            where[name] = (x, _PAD + row * (_HEIGHT + _GAP_Y), width[column])
        x += width[column] + _GAP_X
    rows = max((len(names) for names in columns.values()), default=0)
    total_h = _PAD * 2 + rows * (_HEIGHT + _GAP_Y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{x:.0f}" '
        f'height="{total_h:.0f}" viewBox="0 0 {x:.0f} {total_h:.0f}">'
    ]
    for task in workflow.tasks:
        tx, ty, _ = where[task.name]
        for dep in task.depends_on:
            if dep.is_local and dep.task in where:
                sx, sy, sw = where[dep.task]
                parts.append(
                    f'<line class="edge" x1="{sx + sw:.0f}" y1="{sy + _HEIGHT / 2:.0f}" '
                    f'x2="{tx:.0f}" y2="{ty + _HEIGHT / 2:.0f}"/>'
                )
    for task in workflow.tasks:
        tx, ty, tw = where[task.name]
        css = escape(f"node {classes.get(task.name, '')}".strip())
        name = escape(task.name)
        parts.append(
            f'<g class="{css}" data-task="{name}"><rect x="{tx:.0f}" y="{ty:.0f}" '
            f'width="{tw:.0f}" height="{_HEIGHT}" rx="6"/><text x="{tx + _PAD:.0f}" '
            f'y="{ty + _HEIGHT / 2 + 5:.0f}">{name}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
