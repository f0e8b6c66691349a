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
from gitsync.model import Dependency, Task, Workflow

if TYPE_CHECKING:
    from gitsync.plan_types import Change

# Mermaid's defaults (maxTextSize, maxEdges), which GitHub keeps: past them it draws an error
MERMAID_TEXT, MERMAID_EDGES = 50_000, 500
_LEGEND = {
    ADDED: "green = added (edges: thick)",
    REMOVED: "red dashed = removed (edges: dotted)",
    CHANGED: "amber = changed",
}


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
    """Both versions in one graph, the differences marked; None when tasks and edges agree.

    ``current`` is the remote as the plan compared it: its renamed tasks already carry their
    new names (plan_history.renamed). A remote still under the old names is mapped here too.
    """
    current = _under_new_names(current, renames)
    was = {v: k for k, v in renames.items()}
    old_nodes, old_edges = keyed(current)
    new_nodes, new_edges = keyed(desired)
    kept = set(new_nodes)
    marks: dict[Key, str] = {k: ADDED for k in new_nodes if k not in set(old_nodes)}
    marks |= {k: REMOVED for k in old_nodes if k not in kept}
    labels: dict[Key, str] = {}
    for key in set(old_nodes) & kept:
        if key[0] == TASK and key[2] in was:
            labels[key] = f"{key[2]} (was {was[key[2]]})"
            marks[key] = CHANGED
        elif key[0] == TASK and _changed(current, desired, key[2]):
            marks[key] = CHANGED
    edge_marks = {e: ADDED for e in new_edges if e not in old_edges}
    edge_marks |= {e: REMOVED for e in old_edges if e not in new_edges}
    edge_marks |= {e: CHANGED for e, r in new_edges.items() if old_edges.get(e, r) != r}
    if not marks and not edge_marks:
        return None
    nodes = new_nodes + [k for k in old_nodes if k not in kept]
    edges = list(new_edges) + [e for e in old_edges if e not in new_edges]
    return build(nodes, edges, marks, edge_marks, labels)


def _under_new_names(current: Workflow, renames: dict[str, str]) -> Workflow:
    names = {t.name for t in current.tasks}
    mapping = {o: n for o, n in renames.items() if o in names and n not in names}
    if not mapping:
        return current

    def dep(d: Dependency) -> Dependency:
        return replace(d, task=mapping.get(d.task, d.task)) if d.is_local else d

    tasks = tuple(
        replace(t, name=mapping.get(t.name, t.name), depends_on=tuple(map(dep, t.depends_on)))
        for t in current.tasks
    )
    return replace(current, tasks=tasks)


def _changed(current: Workflow, desired: Workflow, name: str) -> bool:
    old, new = current.task(name), desired.task(name)
    return old is not None and new is not None and _settings(old) != _settings(new)


def _settings(task: Task) -> Task:
    """A task without its upstreams: the edges show those."""
    return replace(task, depends_on=())


def markdown(change: Change, room: int) -> str:
    """The change's picture as a Mermaid block for a pull-request comment, if it fits in
    ``room`` characters; a line saying it is left out when not; "" when it has none."""
    graph = picture(change)
    if graph is None:
        return ""
    text = mermaid(graph)
    legend = f"\n<sub>Legend: {legend_of(graph)}</sub>\n" if legend_of(graph) else ""
    block = f"\n```mermaid\n{text}```\n{legend}"
    if len(text) > MERMAID_TEXT or len(graph.edges) > MERMAID_EDGES:
        why = "larger than Mermaid draws in a comment"
    elif len(block) > room:
        why = "the comment would be longer than it can hold"
    else:
        return block
    return (
        f"\n_The DAG picture ({len(graph.nodes)} nodes, {len(graph.edges)} edges) is left "
        f"out: {why}. `gitsync graph FILE` draws it._\n"
    )


def legend_of(graph: Graph) -> str:
    """The marks this picture uses, in words; "" when nothing is marked."""
    used = {n.mark for n in graph.nodes} | {e.mark for e in graph.edges}
    words = [words for mark, words in _LEGEND.items() if mark in used]
    if words and any(n.kind != TASK for n in graph.nodes):
        words.append("dashed outline = another workflow")
    return "; ".join(words)
