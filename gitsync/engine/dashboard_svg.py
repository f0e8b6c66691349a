"""A workflow's DAG for the dashboard: `gitsync graph --format svg`'s picture (graph_svg.py),
its task nodes given CSS classes (their states), inline in the page."""

from __future__ import annotations

from collections.abc import Mapping

from gitsync.model import Workflow


def dag_svg(workflow: Workflow, classes: Mapping[str, str] | None = None) -> str:
    """The DAG as an ``<svg>`` element; ``classes`` maps a task name to its node's class.
    graph_svg escapes every name and class: names are untrusted."""
    from gitsync.graph import TASK, graph_of  # the layout library, only once a page draws
    from gitsync.graph_svg import svg

    wanted = classes or {}
    graph = graph_of(workflow)
    by_id = {n.id: wanted[n.label] for n in graph.nodes if n.kind == TASK and n.label in wanted}
    document = svg(graph, title=workflow.name, classes=by_id)
    return document[document.index("<svg") :]  # inline in HTML: no XML declaration
