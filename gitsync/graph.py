"""A workflow's DAG as a small picture model, and that model as Mermaid or Graphviz dot.

Names are untrusted text (up to 128 characters of almost anything: quotes, brackets, ``-->``,
backticks): node IDs are gitsync's own (``t0``, ``f0``, ``r0``), never a name, and every label
is escaped for its language, so no name can end a label and write diagram syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitsync.model import Dependency, Workflow
from gitsync.printable import printable

# What a node stands for: a task of the workflow, another workflow, a task of another workflow
TASK, FLOW, REF = "task", "flow", "ref"
# What a diagram of a plan marks: "" is unchanged
ADDED, REMOVED, CHANGED = "added", "removed", "changed"

Key = tuple[str, str, str]  # (kind, workflow, task): a node's identity across two versions


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    kind: str = TASK
    mark: str = ""


@dataclass(frozen=True)
class Edge:
    source: str  # the upstream's id: it runs first
    target: str
    mark: str = ""


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def key_of(dep: Dependency) -> Key:
    if dep.is_local:
        return (TASK, "", dep.task)
    return (REF, dep.flow, dep.task) if dep.task else (FLOW, dep.flow, "")


def label_of(key: Key) -> str:
    kind, flow, task = key
    return Dependency(task=task, flow=flow).label() if kind != TASK else task


def keyed(wf: Workflow) -> tuple[list[Key], dict[tuple[Key, Key], bool]]:
    """The workflow's nodes (tasks in file order, then what they reference) and its edges
    (upstream, downstream) -> rerun."""
    nodes = [(TASK, "", t.name) for t in wf.tasks]
    edges: dict[tuple[Key, Key], bool] = {}
    for task in wf.tasks:
        for dep in task.depends_on:
            up = key_of(dep)
            if up not in nodes:  # another workflow's, or a name no task has
                nodes.append(up)
            edges[(up, (TASK, "", task.name))] = dep.rerun
    return nodes, edges


def build(
    nodes: list[Key],
    edges: list[tuple[Key, Key]],
    marks: dict[Key, str] | None = None,
    edge_marks: dict[tuple[Key, Key], str] | None = None,
    labels: dict[Key, str] | None = None,
) -> Graph:
    """The picture model: ids by kind and position, marks and labels where given."""
    ids: dict[Key, str] = {}
    counts = {TASK: 0, FLOW: 0, REF: 0}
    for key in nodes:
        ids[key] = f"{key[0][0]}{counts[key[0]]}"
        counts[key[0]] += 1
    marks, edge_marks, labels = marks or {}, edge_marks or {}, labels or {}
    return Graph(
        nodes=tuple(
            Node(ids[k], labels.get(k, label_of(k)), k[0], marks.get(k, "")) for k in nodes
        ),
        edges=tuple(Edge(ids[a], ids[b], edge_marks.get((a, b), "")) for a, b in edges),
    )


def graph_of(wf: Workflow) -> Graph:
    nodes, edges = keyed(wf)
    return build(nodes, list(edges))


# -- Mermaid ---------------------------------------------------------------------------------

_SHAPES = {TASK: ('["', '"]'), FLOW: ('[["', '"]]'), REF: ('(["', '"])')}
_PLAIN = frozenset(" _.-")
STYLES = {
    ADDED: "fill:#dafbe1,stroke:#1a7f37,stroke-width:2px,color:#0d4a1f",
    REMOVED: "fill:#ffebe9,stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 5,color:#82071e",
    CHANGED: "fill:#fff8c5,stroke:#9a6700,stroke-width:2px,color:#4d2d00",
}
_LINKS = {
    ADDED: "stroke:#1a7f37,stroke-width:2px",
    REMOVED: "stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 5",
    CHANGED: "stroke:#9a6700,stroke-width:2px",
}
_ARROWS = {"": "-->", ADDED: "==>", CHANGED: "==>", REMOVED: "-.->"}


def mermaid_text(label: str) -> str:
    """A label for inside Mermaid's double quotes: letters, digits, space and ``_.-`` as they
    are; every other character as an entity code (``#34;``), which Mermaid shows as it."""
    return "".join(c if c.isalnum() or c in _PLAIN else f"#{ord(c)};" for c in printable(label))


def mermaid(graph: Graph, direction: str = "TD") -> str:
    lines = [f"flowchart {direction}"]
    for node in graph.nodes:
        opening, closing = _SHAPES[node.kind]
        lines.append(f"  {node.id}{opening}{mermaid_text(node.label)}{closing}")
    lines += [f"  {e.source} {_ARROWS[e.mark]} {e.target}" for e in graph.edges]
    refs = [n.id for n in graph.nodes if n.kind != TASK and not n.mark]
    if refs:
        lines += ["  classDef ref stroke-dasharray:3 3", f"  class {','.join(refs)} ref"]
    for mark, style in STYLES.items():
        marked = [n.id for n in graph.nodes if n.mark == mark]
        if marked:
            lines += [f"  classDef {mark} {style}", f"  class {','.join(marked)} {mark}"]
        links = [str(i) for i, e in enumerate(graph.edges) if e.mark == mark]
        if links:
            lines.append(f"  linkStyle {','.join(links)} {_LINKS[mark]}")
    return "\n".join(lines) + "\n"


# -- Graphviz dot ----------------------------------------------------------------------------


def dot_quoted(text: str) -> str:
    """A dot quoted string: backslashes and quotes escaped, so no escape sequence is read."""
    return '"' + printable(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


_DOT_STYLES = {
    TASK: "shape=box",
    FLOW: "shape=box, peripheries=2, style=dashed",
    REF: 'shape=box, style="rounded,dashed"',
}
_DOT_MARKS = {
    ADDED: 'color="#1a7f37", penwidth=2',
    REMOVED: 'color="#cf222e", penwidth=2, style=dashed',
    CHANGED: 'color="#9a6700", penwidth=2',
}


def dot(graph: Graph, name: str) -> str:
    lines = [f"digraph {dot_quoted(name)} {{", "  rankdir=TB;", '  node [fontname="sans-serif"];']
    for node in graph.nodes:
        attrs = [f"label={dot_quoted(node.label)}", _DOT_STYLES[node.kind]]
        if node.mark:
            attrs.append(_DOT_MARKS[node.mark])
        lines.append(f"  {dot_quoted(node.id)} [{', '.join(attrs)}];")
    for edge in graph.edges:
        extra = f" [{_DOT_MARKS[edge.mark]}]" if edge.mark else ""
        lines.append(f"  {dot_quoted(edge.source)} -> {dot_quoted(edge.target)}{extra};")
    lines.append("}")
    return "\n".join(lines) + "\n"
