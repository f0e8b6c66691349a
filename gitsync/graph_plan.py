"""The DAG pictures of a Markdown plan: what a change does to a workflow's tasks and edges.

A change on an existing flow is drawn as the union of the remote workflow (``current``) and
the file's (``desired``), with added, removed and changed tasks and edges marked; a task the
plan renames is one node, marked changed. A create is drawn whole. A change that leaves the
tasks and edges as they were (a schedule, an owner) has no picture.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from gitsync.changes import Kind
from gitsync.graph import ADDED, CHANGED, REMOVED, TASK, Graph, Key, build, keyed, mermaid
from gitsync.model import Task, Workflow

if TYPE_CHECKING:
    from gitsync.plan_types import Change

LEGEND = "Legend: green = added, red dashed = removed, amber = changed; dashed = another workflow"


def picture(change: Change) -> Graph | None:
    """The change's picture, or None when it has none."""
    if change.desired is None:
        return None
    if change.current is None:
        return build(*_whole(change.desired)) if change.kind == Kind.CREATE_FLOW else None
    return difference(change.current, change.desired, dict(change.task_renames))


def _whole(wf: Workflow) -> tuple[list[Key], list[tuple[Key, Key]]]:
    nodes, edges = keyed(wf)
    return nodes, list(edges)


def difference(current: Workflow, desired: Workflow, renames: dict[str, str]) -> Graph | None:
    """Both versions in one graph, the differences marked; None when tasks and edges agree."""

    def renamed(key: Key) -> Key:
        return (TASK, "", renames.get(key[2], key[2])) if key[0] == TASK else key

    old_nodes, old_edges = keyed(current)
    new_nodes, new_edges = keyed(desired)
    before = {renamed(k): k for k in old_nodes}
    was = {(renamed(a), renamed(b)): rerun for (a, b), rerun in old_edges.items()}
    marks: dict[Key, str] = {k: ADDED for k in new_nodes if k not in before}
    marks |= {k: REMOVED for k in before if k not in set(new_nodes)}
    labels: dict[Key, str] = {}
    for key in new_nodes:
        if key in before and key[0] == TASK:
            old = current.task(before[key][2])
            new = desired.task(key[2])
            if before[key] != key:
                labels[key] = f"{key[2]} (was {before[key][2]})"
            if before[key] != key or (old and new and _settings(old) != _settings(new)):
                marks[key] = CHANGED
    edge_marks = {e: ADDED for e in new_edges if e not in was}
    edge_marks |= {e: REMOVED for e in was if e not in new_edges}
    edge_marks |= {e: CHANGED for e, r in new_edges.items() if e in was and was[e] != r}
    if not marks and not edge_marks:
        return None
    nodes = new_nodes + [k for k in before if k not in set(new_nodes)]
    edges = list(new_edges) + [e for e in was if e not in new_edges]
    return build(nodes, edges, marks, edge_marks, labels)


def _settings(task: Task) -> Task:
    """A task without its upstreams (the edges show those) or its name (a rename shows it)."""
    return replace(task, name="", depends_on=())


def markdown(change: Change, room: int) -> str:
    """The change's picture as a Mermaid block for a pull-request comment, if it fits in
    ``room`` characters; a line saying it is left out when not; "" when it has none."""
    graph = picture(change)
    if graph is None:
        return ""
    legend = f"\n<sub>{LEGEND}</sub>\n" if any(n.mark for n in graph.nodes) else ""
    block = f"\n```mermaid\n{mermaid(graph)}```\n{legend}"
    if len(block) <= room:
        return block
    return (
        f"\n_The DAG picture ({len(graph.nodes)} nodes) is left out: the comment would be "
        "longer than it can hold. `gitsync graph FILE` draws it._\n"
    )
